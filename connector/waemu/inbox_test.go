package waemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// waitInbox waits for the contact's inbox entry with the given kind and id.
func waitInbox(tb testing.TB, s *Server, kind InboxKind, id string) InboxMessage {
	tb.Helper()
	var found InboxMessage
	waitFor(tb, string(kind)+" "+id+" in the inbox", func() bool {
		for _, m := range s.ContactInbox() {
			if m.Kind == kind && m.ID == id {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestContactMessaging pairs one device and the contact (pairing dominates the cost)
// and runs the messaging checks both ways.
func TestContactMessaging(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "messaging"))
	t.Run("inbox", func(t *testing.T) { testContactInbox(t, s, cli, jid) })
	t.Run("contact sends media", func(t *testing.T) { testContactSendsMedia(t, s, cli, evts, jid) })
}

// testContactInbox sends every message kind from a real whatsmeow device to the
// contact and checks what the contact's whatsmeow received, media included (uploaded
// by the device, downloaded and decrypted by the contact through the media host).
func testContactInbox(t *testing.T, s *Server, cli *whatsmeow.Client, jid types.JID) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	contact := s.Contact()
	send := func(msg *waE2E.Message) string {
		t.Helper()
		resp, err := cli.SendMessage(ctx, contact, msg)
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		return resp.ID
	}
	checkFrom := func(m InboxMessage) {
		t.Helper()
		if m.From.User != jid.User || m.Time.IsZero() {
			t.Errorf("%s %s: from %s at %v, want from %s", m.Kind, m.ID, m.From, m.Time, jid)
		}
	}

	// Texts: plain, then a reply with a mention.
	textID := send(&waE2E.Message{Conversation: proto.String("plain text")})
	m := waitInbox(t, s, InboxText, textID)
	checkFrom(m)
	if m.Text != "plain text" || m.Extended {
		t.Errorf("text entry = %+v", m)
	}
	theirID, err := s.SendTextFromContact(ctx, jid.ToNonAD(), "quote me")
	if err != nil {
		t.Fatalf("SendTextFromContact: %v", err)
	}
	replyID := send(&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
		Text: proto.String("a reply @" + contact.User),
		ContextInfo: &waE2E.ContextInfo{
			StanzaID:      proto.String(theirID),
			Participant:   proto.String(contact.String()),
			QuotedMessage: &waE2E.Message{Conversation: proto.String("quote me")},
			MentionedJID:  []string{contact.String()},
		},
	}})
	m = waitInbox(t, s, InboxText, replyID)
	if !m.Extended || m.QuotedID != theirID || m.QuotedParticipant != contact.String() || !slices.Equal(m.Mentions, []string{contact.String()}) {
		t.Errorf("reply entry = %+v", m)
	}

	// Media, each uploaded by the device.
	upload := func(data []byte, typ whatsmeow.MediaType) whatsmeow.UploadResponse {
		t.Helper()
		up, err := cli.Upload(ctx, data, typ)
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		return up
	}
	type mediaCase struct {
		kind  InboxKind
		data  []byte
		build func(up whatsmeow.UploadResponse) *waE2E.Message
		check func(m InboxMessage) bool
	}
	cases := []mediaCase{
		{InboxImage, randomBytes(t, 3000), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Mimetype: proto.String("image/jpeg"), Caption: proto.String("a picture")}}
		}, func(m InboxMessage) bool { return m.Caption == "a picture" && m.Media.Mimetype == "image/jpeg" }},
		{InboxVideo, randomBytes(t, 5000), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Mimetype: proto.String("video/mp4"), Caption: proto.String("a film")}}
		}, func(m InboxMessage) bool { return m.Caption == "a film" && m.Media.Mimetype == "video/mp4" }},
		{InboxAudio, randomBytes(t, 1500), func(up whatsmeow.UploadResponse) *waE2E.Message {
			// Only the direct path: the contact downloads through media_conn's host.
			return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Mimetype: proto.String("audio/ogg; codecs=opus"), PTT: proto.Bool(true)}}
		}, func(m InboxMessage) bool { return m.Media.PTT && m.Media.Mimetype == "audio/ogg; codecs=opus" }},
		{InboxDocument, randomBytes(t, 7000), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Mimetype: proto.String("application/pdf"),
				FileName: proto.String("report.pdf"), Caption: proto.String("the report")}}
		}, func(m InboxMessage) bool {
			return m.Media.FileName == "report.pdf" && m.Media.Mimetype == "application/pdf" && m.Caption == "the report"
		}},
		{InboxSticker, randomBytes(t, 900), func(up whatsmeow.UploadResponse) *waE2E.Message {
			return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength), Mimetype: proto.String("image/webp")}}
		}, func(m InboxMessage) bool { return m.Media.Mimetype == "image/webp" }},
	}
	mediaTypes := map[InboxKind]whatsmeow.MediaType{InboxImage: whatsmeow.MediaImage, InboxVideo: whatsmeow.MediaVideo,
		InboxAudio: whatsmeow.MediaAudio, InboxDocument: whatsmeow.MediaDocument, InboxSticker: whatsmeow.MediaImage}
	var imageID string
	for _, tc := range cases {
		id := send(tc.build(upload(tc.data, mediaTypes[tc.kind])))
		if tc.kind == InboxImage {
			imageID = id
		}
		m := waitInbox(t, s, tc.kind, id)
		checkFrom(m)
		if m.Media == nil || m.Media.DownloadError != "" || m.Media.SHA256 != sha256Hex(tc.data) || m.Media.Length != len(tc.data) || !tc.check(m) {
			t.Errorf("%s entry = %+v, media %+v", tc.kind, m, m.Media)
		}
	}

	// Location, contact card, poll.
	locID := send(&waE2E.Message{LocationMessage: &waE2E.LocationMessage{DegreesLatitude: proto.Float64(48.8584), DegreesLongitude: proto.Float64(2.2945), Name: proto.String("Tour Eiffel")}})
	if m := waitInbox(t, s, InboxLocation, locID); m.Latitude != 48.8584 || m.Longitude != 2.2945 || m.LocationName != "Tour Eiffel" {
		t.Errorf("location entry = %+v", m)
	}
	vcard := "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL;type=CELL;waid=15551112222:+1 555 111 2222\nEND:VCARD"
	cardID := send(&waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: proto.String("Ada"), Vcard: proto.String(vcard)}})
	if m := waitInbox(t, s, InboxContact, cardID); m.DisplayName != "Ada" || m.VCard != vcard {
		t.Errorf("contact entry = %+v", m)
	}
	pollID := send(cli.BuildPollCreation("Lunch?", []string{"pizza", "sushi", "salad"}, 1))
	if m := waitInbox(t, s, InboxPoll, pollID); m.PollQuestion != "Lunch?" || !slices.Equal(m.PollOptions, []string{"pizza", "sushi", "salad"}) || m.PollSelectable != 1 {
		t.Errorf("poll entry = %+v", m)
	}

	// Reaction (to the contact's message), its removal, an edit and a revoke.
	reactID := send(cli.BuildReaction(contact, contact, theirID, "👍"))
	if m := waitInbox(t, s, InboxReaction, reactID); m.TargetID != theirID || m.Reaction != "👍" {
		t.Errorf("reaction entry = %+v", m)
	}
	unreactID := send(cli.BuildReaction(contact, contact, theirID, ""))
	if m := waitInbox(t, s, InboxReaction, unreactID); m.TargetID != theirID || m.Reaction != "" {
		t.Errorf("reaction removal entry = %+v", m)
	}
	editID := send(cli.BuildEdit(contact, textID, &waE2E.Message{Conversation: proto.String("edited text")}))
	if m := waitInbox(t, s, InboxEdit, editID); m.TargetID != textID || m.Text != "edited text" {
		t.Errorf("edit entry = %+v", m)
	}
	revokeID := send(cli.BuildRevoke(contact, types.EmptyJID, imageID))
	if m := waitInbox(t, s, InboxRevoke, revokeID); m.TargetID != imageID {
		t.Errorf("revoke entry = %+v", m)
	}

	// Read receipt and chat presence.
	if err := cli.MarkRead(ctx, []types.MessageID{theirID}, time.Now(), contact, contact); err != nil {
		t.Fatalf("MarkRead: %v", err)
	}
	waitFor(t, "read receipt in the inbox", func() bool {
		return inboxHas(s, func(m InboxMessage) bool { return m.Kind == InboxReceipt && m.ID == theirID && m.ReceiptType == "read" })
	})
	for _, p := range []struct {
		state types.ChatPresence
		media types.ChatPresenceMedia
	}{{types.ChatPresenceComposing, types.ChatPresenceMediaText}, {types.ChatPresenceComposing, types.ChatPresenceMediaAudio}, {types.ChatPresencePaused, ""}} {
		if err := cli.SendChatPresence(ctx, contact, p.state, p.media); err != nil {
			t.Fatalf("SendChatPresence: %v", err)
		}
		waitFor(t, "chat presence "+string(p.state)+" "+string(p.media), func() bool {
			return inboxHas(s, func(m InboxMessage) bool {
				return m.Kind == InboxChatPresence && m.From.User == jid.User && m.State == string(p.state) && m.PresenceMedia == string(p.media)
			})
		})
	}
}

// testContactSendsMedia has the contact upload and send media; the device's whatsmeow
// downloads it from the media host, gets the contact's read receipt and chat states.
func testContactSendsMedia(t *testing.T, s *Server, cli *whatsmeow.Client, evts *eventLog, jid types.JID) {
	before := len(s.MediaObjects())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	img := randomBytes(t, 12345)
	id, err := s.SendImageFromContact(ctx, jid.ToNonAD(), img, "image/png", "look")
	if err != nil {
		t.Fatalf("SendImageFromContact: %v", err)
	}
	msg := evts.waitEvent(t, "image from the contact", func(e any) bool {
		m, ok := e.(*events.Message)
		return ok && m.Info.ID == id
	}).(*events.Message)
	im := msg.Message.GetImageMessage()
	if im.GetCaption() != "look" || im.GetMimetype() != "image/png" || msg.Info.MediaType != "image" {
		t.Errorf("image message = %v (media type %q)", im, msg.Info.MediaType)
	}
	got, err := cli.Download(ctx, im)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("Download = %d bytes, %v", len(got), err)
	}

	doc := randomBytes(t, 2222)
	docID, err := s.SendMediaFromContact(ctx, jid, ContactMedia{Kind: InboxDocument, Data: doc, Mimetype: "text/plain", FileName: "notes.txt"})
	if err != nil {
		t.Fatalf("SendMediaFromContact: %v", err)
	}
	msg = evts.waitEvent(t, "document from the contact", func(e any) bool {
		m, ok := e.(*events.Message)
		return ok && m.Info.ID == docID
	}).(*events.Message)
	if got, err := cli.DownloadAny(ctx, msg.Message); err != nil || !bytes.Equal(got, doc) || msg.Message.GetDocumentMessage().GetFileName() != "notes.txt" {
		t.Fatalf("DownloadAny(document) = %d bytes, %v", len(got), err)
	}

	resp, err := cli.SendMessage(ctx, s.Contact(), &waE2E.Message{Conversation: proto.String("read me")})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	waitInbox(t, s, InboxText, resp.ID)
	if err := s.MarkReadFromContact(ctx, jid, resp.ID); err != nil {
		t.Fatalf("MarkReadFromContact: %v", err)
	}
	evts.waitEvent(t, "read receipt from the contact", func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && r.Type == types.ReceiptTypeRead && slices.Contains(r.MessageIDs, resp.ID) && r.Sender.User == s.Contact().User
	})
	if err := s.SendChatPresenceFromContact(ctx, jid, true, true); err != nil {
		t.Fatalf("SendChatPresenceFromContact: %v", err)
	}
	evts.waitEvent(t, "recording from the contact", func(e any) bool {
		p, ok := e.(*events.ChatPresence)
		return ok && p.Sender.User == s.Contact().User && p.State == types.ChatPresenceComposing && p.Media == types.ChatPresenceMediaAudio
	})
	if n := len(s.MediaObjects()) - before; n != 2 {
		t.Errorf("the contact's media added %d objects, want 2", n)
	}
}
