package waemu

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

func inboxHas(s *Server, match func(InboxMessage) bool) bool {
	for _, m := range s.ContactInbox() {
		if match(m) {
			return true
		}
	}
	return false
}

func TestTextWithContact(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "text"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Device -> contact, with a delivery receipt back.
	resp, err := cli.SendMessage(ctx, s.Contact(), &waE2E.Message{Conversation: proto.String("hello contact")})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	waitFor(t, "contact got the text", func() bool {
		return inboxHas(s, func(m InboxMessage) bool {
			return m.Kind == InboxText && m.ID == resp.ID && m.Text == "hello contact" && m.From.User == jid.User
		})
	})
	evts.waitEvent(t, "delivery receipt", func(e any) bool {
		r, ok := e.(*events.Receipt)
		return ok && r.Type == types.ReceiptTypeDelivered && len(r.MessageIDs) == 1 && r.MessageIDs[0] == resp.ID && r.Sender.User == s.Contact().User
	})

	// Contact -> device, with receipts back.
	id, err := s.SendTextFromContact(ctx, jid.ToNonAD(), "hello device")
	if err != nil {
		t.Fatalf("SendTextFromContact: %v", err)
	}
	msg := evts.waitEvent(t, "message from contact", func(e any) bool {
		m, ok := e.(*events.Message)
		return ok && m.Info.ID == id
	}).(*events.Message)
	if msg.Info.PushName != contactPushName {
		t.Errorf("push name = %q, want %q", msg.Info.PushName, contactPushName)
	}
	if msg.Message.GetConversation() != "hello device" || msg.Info.Sender.ToNonAD() != s.Contact() || msg.Info.Chat != s.Contact() {
		t.Errorf("message = %q from %s in %s", msg.Message.GetConversation(), msg.Info.Sender, msg.Info.Chat)
	}
	waitFor(t, "contact got the delivery receipt", func() bool {
		return inboxHas(s, func(m InboxMessage) bool { return m.Kind == InboxReceipt && m.ID == id && m.ReceiptType == "" })
	})
	if err := cli.MarkRead(ctx, []types.MessageID{id}, time.Now(), s.Contact(), msg.Info.Sender); err != nil {
		t.Fatalf("MarkRead: %v", err)
	}
	waitFor(t, "contact got the read receipt", func() bool {
		return inboxHas(s, func(m InboxMessage) bool { return m.Kind == InboxReceipt && m.ID == id && m.ReceiptType == "read" })
	})

	// A second round uses the established sessions (msg instead of pkmsg).
	resp2, err := cli.SendMessage(ctx, s.Contact(), &waE2E.Message{Conversation: proto.String("again")})
	if err != nil {
		t.Fatalf("SendMessage again: %v", err)
	}
	waitFor(t, "contact got the second text", func() bool {
		return inboxHas(s, func(m InboxMessage) bool { return m.ID == resp2.ID && m.Text == "again" })
	})
	if n := s.Sockets(); n != 1 {
		t.Errorf("Sockets() = %d, want 1 (the contact is not counted)", n)
	}
	for _, d := range s.Devices() {
		if d.JID.User == s.Contact().User {
			t.Errorf("Devices() lists the contact: %+v", d)
		}
	}
}

func TestContactAfterRestart(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "contactrestart"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.SendTextFromContact(ctx, jid, "before"); err != nil {
		t.Fatalf("SendTextFromContact: %v", err)
	}
	s.Stop()
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitFor(t, "client reconnected", func() bool { return evts.count(isType[*events.Connected]) >= 2 })
	resp, err := cli.SendMessage(ctx, s.Contact(), &waE2E.Message{Conversation: proto.String("after restart")})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	waitFor(t, "contact got the text after restart", func() bool {
		return inboxHas(s, func(m InboxMessage) bool { return m.ID == resp.ID && m.Text == "after restart" })
	})
	id, err := s.SendTextFromContact(ctx, jid, "after")
	if err != nil {
		t.Fatalf("SendTextFromContact after restart: %v", err)
	}
	evts.waitEvent(t, "message after restart", func(e any) bool {
		m, ok := e.(*events.Message)
		return ok && m.Info.ID == id && m.Message.GetConversation() == "after"
	})
}

func TestOfflineDelivery(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	path := dbPath(t, "offline")
	cli, _, jid := pairedClient(t, s, path)
	cli.Disconnect()
	waitFor(t, "device offline", func() bool { return s.SocketsFor(jid) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := s.SendTextFromContact(ctx, jid.ToNonAD(), "while you were away")
	if err != nil {
		t.Fatalf("SendTextFromContact: %v", err)
	}
	dev, err := mustOpenStore(t, path).GetDevice(ctx, jid)
	if err != nil || dev == nil {
		t.Fatalf("GetDevice = %v, %v", dev, err)
	}
	cli2, evts2 := newClient(t, s, dev)
	if err := cli2.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	evts2.waitEvent(t, "queued message", func(e any) bool {
		m, ok := e.(*events.Message)
		return ok && m.Info.ID == id && m.Message.GetConversation() == "while you were away"
	})
	evt := evts2.waitEvent(t, "offline sync completed", isType[*events.OfflineSyncCompleted]).(*events.OfflineSyncCompleted)
	if evt.Count != 1 {
		t.Errorf("OfflineSyncCompleted.Count = %d, want 1", evt.Count)
	}
}
