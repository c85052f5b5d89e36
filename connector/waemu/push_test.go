package waemu

import (
	"context"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

func TestPushes(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "push"))
	from := types.NewJID("15559990000", types.DefaultUserServer)

	if err := s.PushPresence(jid, from, true); err != nil {
		t.Fatalf("PushPresence: %v", err)
	}
	evts.waitEvent(t, "available presence", func(e any) bool {
		p, ok := e.(*events.Presence)
		return ok && p.From == from && !p.Unavailable
	})
	if err := s.PushPresence(jid.ToNonAD(), from, false); err != nil {
		t.Fatalf("PushPresence to the user: %v", err)
	}
	evts.waitEvent(t, "unavailable presence", func(e any) bool {
		p, ok := e.(*events.Presence)
		return ok && p.From == from && p.Unavailable && !p.LastSeen.IsZero()
	})

	if err := s.PushChatPresence(jid, from, true); err != nil {
		t.Fatalf("PushChatPresence: %v", err)
	}
	evts.waitEvent(t, "composing", func(e any) bool {
		p, ok := e.(*events.ChatPresence)
		return ok && p.Chat == from && p.State == types.ChatPresenceComposing
	})
	if err := s.PushChatPresence(jid, from, false); err != nil {
		t.Fatalf("PushChatPresence: %v", err)
	}
	evts.waitEvent(t, "paused", func(e any) bool {
		p, ok := e.(*events.ChatPresence)
		return ok && p.Chat == from && p.State == types.ChatPresencePaused
	})

	if err := s.PushCallOffer(jid, from, "CALL1"); err != nil {
		t.Fatalf("PushCallOffer: %v", err)
	}
	evts.waitEvent(t, "call offer", func(e any) bool {
		c, ok := e.(*events.CallOffer)
		return ok && c.CallID == "CALL1" && c.From == from && c.CallCreator == from
	})
	if err := cli.RejectCall(context.Background(), from, "CALL1"); err != nil {
		t.Fatalf("RejectCall: %v", err)
	}
	waitFor(t, "call reject recorded", func() bool { return len(s.CallRejects()) == 1 })
	if r := s.CallRejects()[0]; r.CallID != "CALL1" || r.From != jid || r.To != from || r.CallCreator != from || r.Time.IsZero() {
		t.Errorf("CallRejects() = %+v", r)
	}

	resp, err := cli.IsOnWhatsApp(context.Background(), []string{"+" + jid.User, "+15550009999"})
	if err != nil {
		t.Fatalf("IsOnWhatsApp: %v", err)
	}
	if len(resp) != 2 || !resp[0].IsIn || resp[0].JID != jid.ToNonAD() || resp[1].IsIn {
		t.Errorf("IsOnWhatsApp = %+v", resp)
	}
	if ps, err := cli.TryFetchPrivacySettings(context.Background(), true); err != nil || ps.LastSeen != types.PrivacySettingAll {
		t.Errorf("TryFetchPrivacySettings = %+v, %v", ps, err)
	}
	if bl, err := cli.GetBlocklist(context.Background()); err != nil || len(bl.JIDs) != 0 {
		t.Errorf("GetBlocklist = %+v, %v", bl, err)
	}

	if err := s.PushPresence(types.NewJID("15550009999", types.DefaultUserServer), from, true); err != ErrNotOnline {
		t.Errorf("PushPresence to an unknown user = %v, want ErrNotOnline", err)
	}
}
