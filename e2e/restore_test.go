package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/shared"
)

// TestRestoreRetriesAHungServer: a session restored while WhatsApp hangs
// fails the attempt (bounded by the connect timeout, never holding the
// token) and comes back by itself once WhatsApp answers again.
func TestRestoreRetriesAHungServer(t *testing.T) {
	emu := startEmulator(t)
	wa := startHangProxy(t, emu.Addr())
	dir := t.TempDir()
	first, store := openManager(t, dir, emu, wa.Addr(), nil)
	e := contractEnv{conn: first, store: store, emu: emu, wa: wa}
	const token = "restore-token"
	if err := store.Create(context.Background(), &shared.Session{Name: "restore", Token: token, Os: "linux"}); err != nil {
		t.Fatal(err)
	}
	jid := e.link(t, token)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Close(cctx) // as at shutdown: the row keeps AutoConnect
	cancel()
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })

	wa.Freeze()
	second, _ := openManager(t, dir, emu, wa.Addr(), func(c *connector.Config) {
		c.ConnectTimeout, c.RestoreRetry = 2*time.Second, 500*time.Millisecond
	})
	e.conn = second
	start := time.Now()
	restored, failed := second.Restore(context.Background(), nil)
	if restored != 0 || failed != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("restore while WhatsApp hangs: %d restored, %d failed, after %v", restored, failed, time.Since(start))
	}
	e.eventually(t, token, "failed", func(s shared.Status) bool { return s.State == shared.StateFailed })
	wa.Thaw()
	e.eventually(t, token, "restored by itself", func(s shared.Status) bool { return s.Connected && s.LoggedIn && s.JID == jid.String() })
	if n := emu.SocketsFor(jid); n != 1 {
		t.Fatalf("%d sockets after the retried restore", n)
	}
}
