package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
)

// sendAnswer is the data of a send.
type sendAnswer struct {
	Details   string `json:"details"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
}

// inboxWith waits until the contact received a message with id, and
// returns it.
func inboxWith(t *testing.T, emu *waemu.Server, id string) waemu.InboxMessage {
	t.Helper()
	var got waemu.InboxMessage
	waitFor(t, 10*time.Second, "the contact to receive "+id, func() bool {
		for _, m := range emu.ContactInbox() {
			if m.ID == id && m.Kind != waemu.InboxReceipt {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// inboxCount counts the messages (not receipts) with id the contact received.
func inboxCount(emu *waemu.Server, id string) int {
	n := 0
	for _, m := range emu.ContactInbox() {
		if m.ID == id && m.Kind != waemu.InboxReceipt {
			n++
		}
	}
	return n
}

// TestSendText sends texts through the HTTP API and checks what the
// emulator's contact received: the text, the ID the API answered, once per
// Id, in order; and the errors of bad input and of a session that cannot send.
func TestSendText(t *testing.T) {
	emu := startEmulator(t)
	p := startWago(t, embeddedEnv(emu, t.TempDir()))
	const token = "send-token"
	initToken(p, "send", token)
	jid := link(t, p, emu, token)
	to := "+" + emu.Contact().User

	var res sendAnswer
	p.ok(p.call("POST", "/send/text", fmt.Sprintf(`{"Phone":%q,"Body":"hello from wago"}`, to), "token", token), &res)
	if res.Details != "Sent" || res.ID == "" || time.Since(time.Unix(res.Timestamp, 0)) > time.Minute {
		t.Fatalf("send answered %+v", res)
	}
	got := inboxWith(t, emu, res.ID)
	if got.Text != "hello from wago" || got.From.User != jid.User {
		t.Fatalf("the contact received %+v", got)
	}

	// A retry with the same Id answers the same and sends nothing more.
	body := fmt.Sprintf(`{"Phone":"%s@s.whatsapp.net","Body":"exactly once","Id":"WAGOTEST0001"}`, emu.Contact().User)
	var first, again sendAnswer
	p.ok(p.call("POST", "/send/text", body, "token", token), &first)
	p.ok(p.call("POST", "/chat/send/text", body, "token", token), &again)
	if first.ID != "WAGOTEST0001" || again != first {
		t.Fatalf("send with an Id answered %+v, then %+v", first, again)
	}
	inboxWith(t, emu, "WAGOTEST0001")
	time.Sleep(500 * time.Millisecond)
	if n := inboxCount(emu, "WAGOTEST0001"); n != 1 {
		t.Fatalf("the contact received the message with one Id %d times", n)
	}

	// Sends of one token arrive in the order they were accepted.
	var ids []string
	for i := range 5 {
		p.ok(p.call("POST", "/send/text", fmt.Sprintf(`{"Phone":%q,"Body":"in order %d"}`, to, i), "token", token), &res)
		ids = append(ids, res.ID)
	}
	inboxWith(t, emu, ids[4])
	var order []string
	for _, m := range emu.ContactInbox() {
		if slices.Contains(ids, m.ID) && m.Kind != waemu.InboxReceipt {
			order = append(order, m.ID)
		}
	}
	if !slices.Equal(order, ids) {
		t.Fatalf("received in the order %v, sent %v", order, ids)
	}

	// Bad input: a 400 naming the field, and nothing sent.
	before := len(emu.ContactInbox())
	for body, want := range map[string]string{
		`{"Body":"x"}`:                                          "missing Phone: a phone number in international format or a JID",
		`{"Phone":"12ab","Body":"x"}`:                           "invalid Phone: use a phone number in international format (digits only after an optional +) or a JID such as 5511999999999@s.whatsapp.net or 120363000000000000@g.us",
		`{"Phone":"5511999999999"}`:                             "missing Body",
		`{"Phone":"5511999999999","Body":1}`:                    "invalid JSON body: field Body must be a string",
		`{"Phone":"5511999999999","Body":"x","Id":"has space"}`: "invalid Id: 1 to 64 letters, digits, '.', '_' or '-'",
	} {
		if a := p.call("POST", "/send/text", body, "token", token); a.Status != 400 || a.Error != want {
			t.Errorf("%s: %d %q, want 400 %q", body, a.Status, a.Error, want)
		}
	}
	if a := p.call("POST", "/send/text", `{"Phone":"5511999999999","Body":"x"}`, "token", "nope"); a.Status != 401 {
		t.Errorf("wrong token: %d %q", a.Status, a.Error)
	}
	// A session that cannot send.
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	if a := p.call("POST", "/send/text", fmt.Sprintf(`{"Phone":%q,"Body":"x"}`, to), "token", token); a.Status != 409 || a.Error != "No session" {
		t.Errorf("send while disconnected: %d %q", a.Status, a.Error)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(emu.ContactInbox()); n != before {
		t.Fatalf("refused sends reached the contact: %d entries, had %d", n, before)
	}
}

// dataURL encodes data as a data URL of mimetype.
func dataURL(mimetype string, data []byte) string {
	return "data:" + mimetype + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// TestSendMediaThroughTheAPI sends every media kind as a data URL through
// the HTTP API and checks the bytes the contact downloaded; downloads what
// the contact sent; and refuses bad media with a clear 400 or 413, sending
// nothing.
func TestSendMediaThroughTheAPI(t *testing.T) {
	emu := startEmulator(t)
	p := startWago(t, embeddedEnv(emu, t.TempDir()))
	const token = "media-token"
	initToken(p, "media", token)
	jid := link(t, p, emu, token)
	to := emu.Contact().User

	fields := map[string]string{
		"image": "Image", "video": "Video", "audio": "Audio", "document": "Document", "sticker": "Sticker",
	}
	for _, s := range mediaSamples() {
		body, _ := json.Marshal(map[string]any{
			"Phone": to, fields[s.kind]: dataURL(s.mimetype, s.data), "Caption": "c", "FileName": s.fileName, "PTT": s.ptt,
		})
		var res sendAnswer
		p.ok(p.call("POST", "/send/"+s.kind, string(body), "token", token), &res)
		m := received(t, emu, waemu.InboxKind(s.kind), byID(res.ID))
		if m.Media == nil || m.Media.SHA256 != sha256Hex(s.data) || m.Media.Mimetype != s.mimetype {
			t.Fatalf("%s received as %+v", s.kind, m.Media)
		}
	}

	// Download, through the API, an image the contact sent.
	photo := randomBytes("\xff\xd8\xff\xe0", 50<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := emu.SendImageFromContact(ctx, jid.ToNonAD(), photo, "image/jpeg", "")
	if err != nil {
		t.Fatal(err)
	}
	im := emu.ContactSent(id).GetImageMessage()
	body, _ := json.Marshal(map[string]any{
		"URL": im.GetURL(), "DirectPath": im.GetDirectPath(), "MediaKey": im.GetMediaKey(), "Mimetype": "image/jpeg",
		"FileEncSHA256": im.GetFileEncSHA256(), "FileSHA256": im.GetFileSHA256(), "FileLength": im.GetFileLength(),
	})
	var dl struct{ Data, Mimetype string }
	p.ok(p.call("POST", "/message/download/image", string(body), "token", token), &dl)
	if dl.Data != dataURL("image/jpeg", photo) {
		t.Fatalf("downloaded %d characters of data URL, %q", len(dl.Data), dl.Mimetype)
	}

	// Bad media: a clear error, and nothing sent.
	png := mediaSamples()[0].data
	before := len(emu.ContactInbox())
	for _, c := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/send/image", `{"Phone":"` + to + `","Image":"` + dataURL("image/jpeg", png) + `"}`, 400, "invalid Mimetype: the bytes are image/png, not image/jpeg"},
		{"/send/image", `{"Phone":"` + to + `","Image":"data:image/png;base64,"}`, 400, "invalid Image: the data URL is empty"},
		{"/send/image", `{"Phone":"` + to + `","Image":"data:image/png;base64,@@@"}`, 400, "invalid Image: the data URL is not valid base64"},
		{"/send/image", `{"Phone":"` + to + `"}`, 400, "missing Image: a data URL (data:<type>;base64,...) or an http(s) URL"},
		{"/send/sticker", `{"Phone":"` + to + `","Sticker":"` + dataURL("image/png", png) + `"}`, 400, "invalid Mimetype: the sticker route takes image/webp"},
		{"/send/video", `{"Phone":"` + to + `","Video":"` + dataURL("video/mp4", png) + `"}`, 400, "invalid Mimetype: the bytes are image/png, not video/mp4"},
		{"/send/sticker", `{"Phone":"` + to + `","Sticker":"` + dataURL("image/webp", append([]byte("RIFF\x00\x10\x00\x00WEBPVP8 "), make([]byte, 1<<20)...)) + `"}`, 413, "media too large: a sticker is at most 1048576 bytes"},
		{"/send/image", `{"Phone":"` + to + `","Image":"ftp://example.com/a.png"}`, 400, "invalid Image: a data URL (data:<type>;base64,...) or an http(s) URL"},
	} {
		if a := p.call("POST", c.path, c.body, "token", token); a.Status != c.status || a.Error != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.path, a.Status, a.Error, c.status, c.want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, m := range emu.ContactInbox()[before:] {
		if m.Kind != waemu.InboxReceipt {
			t.Fatalf("refused media reached the contact: %+v", m)
		}
	}
}
