package connector

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wago-gw/wago/shared"
)

func TestDescribeEvent(t *testing.T) {
	contact := types.NewJID("15550000000", types.DefaultUserServer)
	msg := &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: contact, Sender: contact}, ID: "3EB0AA"}}
	channel := &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: types.NewJID("123", types.NewsletterServer)}, ID: "9"}}
	read := &events.Receipt{MessageSource: types.MessageSource{Chat: contact, Sender: contact}, MessageIDs: []string{"3EB0AA"}, Type: types.ReceiptTypeRead, Timestamp: time.Unix(1, 0)}
	tests := []struct {
		evt               any
		class, typ, state string
	}{
		{msg, shared.EventMessage, "Message", ""},
		{channel, shared.EventNewsletter, "Message", ""},
		{read, shared.EventReadReceipt, "ReadReceipt", "Read"},
		{&events.Receipt{Type: types.ReceiptTypeDelivered}, shared.EventReadReceipt, "ReadReceipt", "Delivered"},
		{&events.Receipt{Type: types.ReceiptTypeReadSelf}, shared.EventReadReceipt, "ReadReceipt", "ReadSelf"},
		{&events.Presence{From: contact, Unavailable: true}, shared.EventPresence, "Presence", "offline"},
		{&events.Presence{From: contact}, shared.EventPresence, "Presence", "online"},
		{&events.ChatPresence{}, shared.EventChatPresence, "ChatPresence", ""},
		{&events.CallOffer{}, shared.EventCall, "CallOffer", ""},
		{&events.CallTerminate{}, shared.EventCall, "CallTerminate", ""},
		{&events.LoggedOut{}, shared.EventLoggedOut, "LoggedOut", ""},
		{&events.Connected{}, shared.EventConnected, "Connected", ""},
		{&events.QR{Codes: []string{"x"}}, shared.EventQR, "QR", ""},
		{&events.GroupInfo{}, "", "GroupInfo", ""},
	}
	for _, tt := range tests {
		ev, ok := describeEvent("tok", tt.evt)
		if !ok {
			t.Errorf("%T: not carried", tt.evt)
			continue
		}
		if ev.Class != tt.class || ev.Type != tt.typ || ev.State != tt.state || ev.Token != "tok" || len(ev.ID) < 20 {
			t.Errorf("%T: got %+v, want class %q type %q state %q", tt.evt, ev, tt.class, tt.typ, tt.state)
		}
	}
	if _, ok := describeEvent("tok", &events.KeepAliveTimeout{}); !ok {
		t.Error("KeepAliveTimeout is a type Subscribe accepts: it is carried")
	}
	if _, ok := describeEvent("tok", &events.AppState{}); ok {
		t.Error("AppState is carried, but Subscribe cannot select it")
	}

	// A message WhatsApp delivers twice is one event; another token's is not.
	a, _ := describeEvent("tok", msg)
	b, _ := describeEvent("tok", msg)
	c, _ := describeEvent("other", msg)
	if a.ID != b.ID || a.ID == c.ID {
		t.Errorf("message IDs: %s, %s (same message), %s (other token)", a.ID, b.ID, c.ID)
	}
	x, _ := describeEvent("tok", &events.Connected{})
	y, _ := describeEvent("tok", &events.Connected{})
	if x.ID == y.ID {
		t.Error("two Connected events share an ID")
	}
}

func TestEmitFollowsTheSubscription(t *testing.T) {
	var got []*shared.Event
	m := &Manager{cfg: Config{Outbox: outboxFunc(func(ev *shared.Event) { got = append(got, ev) })}}
	m.ctx = t.Context()
	s := newSession("tok", nil)
	msg := &events.Message{Info: types.MessageInfo{ID: "1"}}
	m.emit(s, msg) // no settings yet
	s.setWebhook(shared.WebhookSettings{Events: []string{"All"}})
	m.emit(s, msg) // no URL
	s.setWebhook(shared.WebhookSettings{Webhook: "http://r/", Events: []string{"Message", "CallOffer"}})
	m.emit(s, msg)
	m.emit(s, &events.ChatPresence{})
	m.emit(s, &events.CallOffer{})
	m.emit(s, &events.CallTerminate{})
	if len(got) != 2 || got[0].Type != "Message" || got[1].Type != "CallOffer" || len(got[0].Data) == 0 {
		t.Fatalf("emitted %d events: %+v", len(got), got)
	}
}

func TestEmitRefusesTheAckWhenTheOutboxFails(t *testing.T) {
	m := &Manager{cfg: Config{Outbox: failingOutbox{}}, log: discardLog()}
	m.ctx = t.Context()
	s := newSession("tok", nil)
	s.setWebhook(shared.WebhookSettings{Webhook: "http://r/", Events: []string{"All"}})
	if m.emit(s, &events.Message{Info: types.MessageInfo{ID: "1"}}) {
		t.Error("emit answered true (acknowledge) though the outbox refused the event")
	}
	s.setWebhook(shared.WebhookSettings{Webhook: "http://r/", Events: []string{"Presence"}})
	if !m.emit(s, &events.Message{Info: types.MessageInfo{ID: "2"}}) {
		t.Error("an unsubscribed event must be acknowledged")
	}
}
