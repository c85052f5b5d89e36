package e2e

import (
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
