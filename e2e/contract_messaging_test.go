package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
	"github.com/wago-gw/wago/shared"
)

// The messaging part of the Connector contract, on both implementations:
// every message op, checked by what the emulator's contact received (media
// by the SHA-256 of what it downloaded and decrypted), and the users and
// calls ops by what the emulator saw.

// mediaSample is a file of a kind, with bytes that sniff as its type.
type mediaSample struct {
	kind, mimetype, fileName string
	ptt                      bool
	data                     []byte
}

// randomBytes returns n random bytes after prefix.
func randomBytes(prefix string, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return append([]byte(prefix), b...)
}

// mediaSamples returns one sample per media kind.
func mediaSamples() []mediaSample {
	return []mediaSample{
		{kind: shared.KindImage, mimetype: "image/png", data: randomBytes("\x89PNG\r\n\x1a\n", 120<<10)},
		{kind: shared.KindVideo, mimetype: "video/mp4", data: randomBytes("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", 200<<10)},
		{kind: shared.KindAudio, mimetype: "audio/ogg; codecs=opus", ptt: true, data: randomBytes("OggS\x00", 40<<10)},
		{kind: shared.KindDocument, mimetype: "application/pdf", fileName: "report.pdf", data: randomBytes("%PDF-1.7\n", 300<<10)},
		{kind: shared.KindSticker, mimetype: "image/webp", data: append([]byte("RIFF\x00\x10\x00\x00WEBPVP8 "), randomBytes("", 20<<10)...)},
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// received waits until the contact got an entry of kind with id.
func received(t *testing.T, emu *waemu.Server, kind waemu.InboxKind, match func(waemu.InboxMessage) bool) waemu.InboxMessage {
	t.Helper()
	var got waemu.InboxMessage
	waitFor(t, 15*time.Second, "the contact to receive a "+string(kind), func() bool {
		for _, m := range emu.ContactInbox() {
			if m.Kind == kind && match(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

func byID(id string) func(waemu.InboxMessage) bool {
	return func(m waemu.InboxMessage) bool { return m.ID == id }
}

func byTarget(id string) func(waemu.InboxMessage) bool {
	return func(m waemu.InboxMessage) bool { return m.TargetID == id }
}

func runMessaging(t *testing.T, e contractEnv) {
	ctx := context.Background()
	const token = "msg-token"
	if err := e.store.Create(ctx, &shared.Session{Name: "msg", Token: token, Os: "linux"}); err != nil {
		t.Fatal(err)
	}
	contact := e.emu.Contact()

	_, err := shared.Call(ctx, e.conn, shared.OpSend, token, shared.SendRequest{To: contact.String(), ID: shared.NewMessageID(), Kind: shared.KindText, Text: "x"})
	wantErr(t, "send without a session", err, shared.ErrNoSession)

	jid := e.link(t, token)
	send := func(req shared.SendRequest) shared.SendResult {
		t.Helper()
		req.To = contact.String()
		if req.ID == "" {
			req.ID = shared.NewMessageID()
		}
		res, err := shared.Call(ctx, e.conn, shared.OpSend, token, req)
		if err != nil {
			t.Fatalf("send %s: %v", req.Kind, err)
		}
		if res.ID != req.ID || res.Timestamp == 0 {
			t.Fatalf("send %s answered %+v for ID %s", req.Kind, res, req.ID)
		}
		return res
	}

	// Text, a reply and a mention.
	first := send(shared.SendRequest{Kind: shared.KindText, Text: "hello contact"})
	if m := received(t, e.emu, waemu.InboxText, byID(first.ID)); m.Text != "hello contact" || m.From.User != jid.User {
		t.Fatalf("text received as %+v", m)
	}
	reply := send(shared.SendRequest{Kind: shared.KindText, Text: "a reply",
		Reply: &shared.Reply{ID: first.ID, Participant: jid.ToNonAD().String()}, Mentions: []string{contact.String()}})
	if m := received(t, e.emu, waemu.InboxText, byID(reply.ID)); m.QuotedID != first.ID || !slices.Contains(m.Mentions, contact.String()) {
		t.Fatalf("reply received as %+v", m)
	}

	// A retried ID answers the first result and sends nothing more.
	once := send(shared.SendRequest{ID: "CONTRACT0001", IDFromClient: true, Kind: shared.KindText, Text: "exactly once"})
	if again := send(shared.SendRequest{ID: "CONTRACT0001", IDFromClient: true, Kind: shared.KindText, Text: "exactly once"}); again != once {
		t.Fatalf("a retried ID answered %+v, first %+v", again, once)
	}
	received(t, e.emu, waemu.InboxText, byID("CONTRACT0001"))
	time.Sleep(300 * time.Millisecond)
	if n := inboxCount(e.emu, "CONTRACT0001"); n != 1 {
		t.Fatalf("a retried ID reached the contact %d times", n)
	}

	// Every media kind, byte for byte; an image by URL too.
	for _, s := range mediaSamples() {
		res := send(shared.SendRequest{Kind: s.kind, Text: "caption of " + s.kind,
			Media: &shared.Media{Blob: shared.Blob{Data: s.data}, Mimetype: s.mimetype, FileName: s.fileName, PTT: s.ptt}})
		m := received(t, e.emu, waemu.InboxKind(s.kind), byID(res.ID))
		if m.Media == nil || m.Media.SHA256 != sha256Hex(s.data) || m.Media.Length != len(s.data) || m.Media.Mimetype != s.mimetype {
			t.Fatalf("%s received as %+v (media %+v)", s.kind, m, m.Media)
		}
		if (s.kind == shared.KindImage || s.kind == shared.KindDocument) && m.Caption != "caption of "+s.kind {
			t.Fatalf("%s caption received as %q", s.kind, m.Caption)
		}
		if m.Media.PTT != s.ptt || m.Media.FileName != s.fileName {
			t.Fatalf("%s received with PTT %v, file name %q", s.kind, m.Media.PTT, m.Media.FileName)
		}
	}
	png := mediaSamples()[0].data
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	}))
	defer files.Close()
	res := send(shared.SendRequest{Kind: shared.KindImage, Media: &shared.Media{URL: files.URL + "/picture.png"}})
	if m := received(t, e.emu, waemu.InboxImage, byID(res.ID)); m.Media == nil || m.Media.SHA256 != sha256Hex(png) {
		t.Fatalf("image by URL received as %+v", m)
	}

	// Location, contact card, poll.
	res = send(shared.SendRequest{Kind: shared.KindLocation, Location: &shared.Location{Latitude: -23.5505, Longitude: -46.6333, Name: "São Paulo"}})
	if m := received(t, e.emu, waemu.InboxLocation, byID(res.ID)); m.Latitude != -23.5505 || m.Longitude != -46.6333 || m.LocationName != "São Paulo" {
		t.Fatalf("location received as %+v", m)
	}
	const vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL;type=CELL:+5511999999999\nEND:VCARD"
	res = send(shared.SendRequest{Kind: shared.KindContact, Contact: &shared.ContactCard{Name: "Ada", Vcard: vcard}})
	if m := received(t, e.emu, waemu.InboxContact, byID(res.ID)); m.DisplayName != "Ada" || m.VCard != vcard {
		t.Fatalf("contact received as %+v", m)
	}
	res = send(shared.SendRequest{Kind: shared.KindPoll, Poll: &shared.Poll{Question: "Lunch?", Options: []string{"yes", "no", "later"}, MaxAnswer: 1}})
	if m := received(t, e.emu, waemu.InboxPoll, byID(res.ID)); m.PollQuestion != "Lunch?" || !slices.Equal(m.PollOptions, []string{"yes", "no", "later"}) || m.PollSelectable != 1 {
		t.Fatalf("poll received as %+v", m)
	}

	// React, remove the reaction, edit, revoke.
	target := shared.MessageRef{Chat: contact.String(), ID: first.ID, FromMe: true}
	if _, err := shared.Call(ctx, e.conn, shared.OpReact, token, shared.ReactRequest{Target: target, Emoji: "👍"}); err != nil {
		t.Fatal(err)
	}
	received(t, e.emu, waemu.InboxReaction, func(m waemu.InboxMessage) bool { return m.TargetID == first.ID && m.Reaction == "👍" })
	if _, err := shared.Call(ctx, e.conn, shared.OpReact, token, shared.ReactRequest{Target: target}); err != nil {
		t.Fatal(err)
	}
	received(t, e.emu, waemu.InboxReaction, func(m waemu.InboxMessage) bool { return m.TargetID == first.ID && m.Reaction == "" })
	if _, err := shared.Call(ctx, e.conn, shared.OpEdit, token, shared.EditRequest{Target: target, Text: "hello, edited"}); err != nil {
		t.Fatal(err)
	}
	if m := received(t, e.emu, waemu.InboxEdit, byTarget(first.ID)); m.Text != "hello, edited" {
		t.Fatalf("edit received as %+v", m)
	}
	if _, err := shared.Call(ctx, e.conn, shared.OpRevoke, token, shared.MessageRef{Chat: contact.String(), ID: reply.ID, FromMe: true}); err != nil {
		t.Fatal(err)
	}
	received(t, e.emu, waemu.InboxRevoke, byTarget(reply.ID))

	// Mark read what the contact sent; typing and recording.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	theirs, err := e.emu.SendTextFromContact(sctx, jid.ToNonAD(), "please read this")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Call(ctx, e.conn, shared.OpMarkRead, token, shared.MarkReadRequest{Chat: contact.String(), IDs: []string{theirs}}); err != nil {
		t.Fatal(err)
	}
	received(t, e.emu, waemu.InboxReceipt, func(m waemu.InboxMessage) bool { return m.ID == theirs && m.ReceiptType == "read" })
	for _, state := range []string{shared.PresenceComposing, shared.PresenceRecording} {
		if _, err := shared.Call(ctx, e.conn, shared.OpChatPresence, token, shared.ChatPresenceRequest{Chat: contact.String(), State: state}); err != nil {
			t.Fatal(err)
		}
	}
	received(t, e.emu, waemu.InboxChatPresence, func(m waemu.InboxMessage) bool { return m.State == "composing" && m.PresenceMedia == "" })
	received(t, e.emu, waemu.InboxChatPresence, func(m waemu.InboxMessage) bool { return m.State == "composing" && m.PresenceMedia == "audio" })

	// Download what the contact sent.
	photo := randomBytes("\xff\xd8\xff\xe0", 80<<10)
	photoID, err := e.emu.SendImageFromContact(sctx, jid.ToNonAD(), photo, "image/jpeg", "from the contact")
	if err != nil {
		t.Fatal(err)
	}
	im := e.emu.ContactSent(photoID).GetImageMessage()
	dl, err := shared.Call(ctx, e.conn, shared.OpDownload, token, shared.DownloadRequest{
		Kind: shared.KindImage, DirectPath: im.GetDirectPath(), MediaKey: im.GetMediaKey(),
		FileEncSHA256: im.GetFileEncSHA256(), FileSHA256: im.GetFileSHA256(), FileLength: int64(im.GetFileLength()), Mimetype: "image/jpeg",
	})
	if err != nil || !bytes.Equal(dl.Data, photo) || dl.Mimetype != "image/jpeg" {
		t.Fatalf("download: %d bytes (want %d), %q, %v", len(dl.Data), len(photo), dl.Mimetype, err)
	}
	bad := shared.DownloadRequest{Kind: shared.KindImage, DirectPath: im.GetDirectPath(), MediaKey: make([]byte, 32),
		FileEncSHA256: im.GetFileEncSHA256(), FileSHA256: im.GetFileSHA256(), FileLength: int64(im.GetFileLength())}
	if _, err := shared.Call(ctx, e.conn, shared.OpDownload, token, bad); shared.ErrorCode(err) != shared.EINVALID {
		t.Fatalf("download with a wrong key: %v", err)
	}

	// Users.
	checks, err := shared.Call(ctx, e.conn, shared.OpUserCheck, token, []string{contact.User, "15559990000"})
	if err != nil || len(checks) != 2 || !checks[0].IsInWhatsapp || checks[0].JID != contact.String() || checks[1].IsInWhatsapp {
		t.Fatalf("user check: %+v %v", checks, err)
	}
	infos, err := shared.Call(ctx, e.conn, shared.OpUserInfo, token, []string{contact.String()})
	if err != nil || len(infos) != 1 || infos[0].JID != contact.String() {
		t.Fatalf("user info: %+v %v", infos, err)
	}
	avatar, err := shared.Call(ctx, e.conn, shared.OpUserAvatar, token, shared.AvatarRequest{JID: contact.String()})
	if err != nil || avatar.URL == "" || avatar.ID == "" {
		t.Fatalf("avatar: %+v %v", avatar, err)
	}
	_, err = shared.Call(ctx, e.conn, shared.OpUserAvatar, token, shared.AvatarRequest{JID: "15559990000@s.whatsapp.net"})
	if shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("avatar of a user without one: %v", err)
	}

	// Reject the contact's call.
	if err := e.emu.PushCallOffer(jid, contact, "CALLTEST0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Call(ctx, e.conn, shared.OpCallReject, token, shared.CallRejectRequest{From: contact.String(), CallID: "CALLTEST0001"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the emulator to see the reject", func() bool {
		return slices.ContainsFunc(e.emu.CallRejects(), func(c waemu.CallReject) bool { return c.CallID == "CALLTEST0001" })
	})

	// A session that cannot send.
	if err := e.do(shared.OpDisconnect, token); err != nil {
		t.Fatal(err)
	}
	_, err = shared.Call(ctx, e.conn, shared.OpSend, token, shared.SendRequest{To: contact.String(), ID: shared.NewMessageID(), Kind: shared.KindText, Text: "x"})
	wantErr(t, "send after disconnect", err, shared.ErrNoSession)
}
