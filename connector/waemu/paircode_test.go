package waemu

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

func TestPairCode(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts := newClient(t, s, mustOpenStore(t, dbPath(t, "code")).NewDevice())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qrCh, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatalf("GetQRChannel: %v", err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	<-qrCh
	const phone = "+1 555 123 4567"
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	if _, err := s.EnterPairCode(ctx, "15557654321", code); err != ErrNoPendingCode {
		t.Errorf("EnterPairCode for another phone = %v, want ErrNoPendingCode", err)
	}
	jid, err := s.EnterPairCode(ctx, phone, code)
	if err != nil {
		t.Fatalf("EnterPairCode: %v", err)
	}
	if got, want := jid.String(), "15551234567:1@s.whatsapp.net"; got != want {
		t.Errorf("device JID = %s, want %s", got, want)
	}
	evts.waitEvent(t, "Connected", isType[*events.Connected])
	if cli.Store.GetJID() != jid {
		t.Errorf("client JID = %s, want %s", cli.Store.GetJID(), jid)
	}
}

func TestPairCodeWrongCode(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, _ := newClient(t, s, mustOpenStore(t, dbPath(t, "wrongcode")).NewDevice())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qrCh, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatalf("GetQRChannel: %v", err)
	}
	if err := cli.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	<-qrCh
	if _, err := cli.PairPhone(ctx, "15551112222", true, whatsmeow.PairClientChrome, "Chrome (Linux)"); err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	if _, err := s.EnterPairCode(ctx, "15551112222", "AAAA-AAAA"); err != ErrWrongCode {
		t.Errorf("EnterPairCode with a wrong code = %v, want ErrWrongCode", err)
	}
}
