package waemu

import (
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

func TestQRPairing(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "qr"))

	if got, want := jid.String(), "15550000001:1@s.whatsapp.net"; got != want {
		t.Errorf("device JID = %s, want %s", got, want)
	}
	if got := cli.Store.GetJID(); got != jid {
		t.Errorf("client store JID = %s, want %s", got, jid)
	}
	if cli.Store.GetLID().Server != types.HiddenUserServer {
		t.Errorf("client LID = %s, want an @lid JID", cli.Store.GetLID())
	}
	if evts.find(isType[*events.PairSuccess]) == nil {
		t.Error("no PairSuccess event")
	}
	devs := s.Devices()
	if len(devs) != 1 || devs[0].JID != jid || !devs[0].Online || devs[0].Logins != 1 || devs[0].Phone != "15550000001" {
		t.Errorf("Devices() = %+v", devs)
	}
	if n := s.SocketsFor(jid); n != 1 {
		t.Errorf("SocketsFor = %d, want 1", n)
	}
	waitFor(t, "one socket", func() bool { return s.Sockets() == 1 })
}
