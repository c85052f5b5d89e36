package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
)

// The bad days of the Connector contract, run on both implementations: a
// WhatsApp server that accepts connections and never answers, and a delete
// racing connects. After any interleaving, the sockets at the emulator
// equal what status says, and a deleted token has none.

// timedErr runs f and fails the test if it takes longer than within.
func timedErr(t *testing.T, what string, within time.Duration, f func() error) error {
	t.Helper()
	start := time.Now()
	err := f()
	if d := time.Since(start); d > within {
		t.Fatalf("%s took %v, want at most %v (err %v)", what, d, within, err)
	}
	return err
}

// noSocketsLeft waits until the emulator has no socket, then checks that
// none comes back for a second.
func noSocketsLeft(t *testing.T, e contractEnv, what string) {
	t.Helper()
	waitFor(t, 10*time.Second, what+": every socket closed", func() bool { return e.emu.Sockets() == 0 })
	time.Sleep(time.Second)
	if n := e.emu.Sockets(); n != 0 {
		t.Fatalf("%s: %d sockets came back", what, n)
	}
}

func runHungServer(t *testing.T, e contractEnv) {
	ctx := context.Background()
	const token = "hung-token"
	if err := e.store.Create(ctx, &shared.Session{Name: "hung", Token: token, Os: "linux"}); err != nil {
		t.Fatal(err)
	}
	e.link(t, token)
	if err := e.do(shared.OpDisconnect, token); err != nil {
		t.Fatal(err)
	}
	e.eventually(t, token, "disconnected", func(s shared.Status) bool { return s.State == shared.StateDisconnected })

	e.wa.Freeze()
	defer e.wa.Thaw()

	// A connect answers 503 within the connect timeout, naming the cause.
	err := timedErr(t, "connect to a hung server", contractConnectTimeout+2*time.Second, func() error {
		_, err := e.connect(token, shared.ConnectOptions{Immediate: true})
		return err
	})
	wantErr(t, "connect to a hung server", err, shared.Errorf(shared.EUNAVAILABLE, "could not connect to WhatsApp: timed out"))
	failed := e.eventually(t, token, "failed", func(s shared.Status) bool { return s.State == shared.StateFailed })
	if !strings.Contains(failed.LastError, "timed out") || failed.Connected {
		t.Fatalf("status after a timed-out connect: %+v", failed)
	}
	// Disconnect after a failed connect changes nothing.
	wantErr(t, "disconnect after a failed connect", e.do(shared.OpDisconnect, token), shared.ErrNoSession)
	if st, _ := e.conn.Status(ctx, token); st.State != shared.StateFailed || st.LastError != failed.LastError {
		t.Fatalf("disconnect after a failed connect changed the status to %+v", st)
	}

	// While a connect hangs, status, logout and disconnect answer at once,
	// and the disconnect ends the connect.
	pending := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := e.connect(token, shared.ConnectOptions{Immediate: true})
			done <- err
		}()
		e.eventually(t, token, "connecting", func(s shared.Status) bool { return s.State == shared.StateConnecting })
		return done
	}
	done := pending()
	timedErr(t, "status while a connect hangs", time.Second, func() error { _, err := e.conn.Status(ctx, token); return err })
	wantErr(t, "logout while a connect hangs", timedErr(t, "logout while a connect hangs", 2500*time.Millisecond, func() error {
		return e.do(shared.OpLogout, token)
	}), shared.ErrNotLoggedIn)
	if err := timedErr(t, "disconnect while a connect hangs", 2500*time.Millisecond, func() error { return e.do(shared.OpDisconnect, token) }); err != nil {
		t.Fatalf("disconnect while a connect hangs: %v", err)
	}
	select {
	case err := <-done:
		if shared.ErrorCode(err) != shared.ECONFLICT {
			t.Fatalf("the interrupted connect answered %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the connect did not answer after a disconnect")
	}
	e.eventually(t, token, "disconnected", func(s shared.Status) bool { return s.State == shared.StateDisconnected })

	// A delete while a connect hangs completes: the row is gone, and so is
	// every socket once the server is back.
	done = pending()
	if err := timedErr(t, "delete while a connect hangs", contractUnlinkTimeout+5*time.Second, func() error {
		return e.do(shared.OpDelete, token)
	}); err != nil {
		t.Fatalf("delete while a connect hangs: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the interrupted connect answered success")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the connect did not answer after a delete")
	}
	if _, err := e.store.Get(ctx, token); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("row after delete: %v", err)
	}
	e.wa.Thaw()
	noSocketsLeft(t, e, "delete while a connect hung")
	if st, _ := e.conn.Status(ctx, token); st.State != shared.StateDisconnected || st.Connected {
		t.Fatalf("status after delete: %+v", st)
	}
}

func runDeleteRace(t *testing.T, e contractEnv) {
	ctx := context.Background()
	for round := range 6 {
		frozen := round == 5
		token := fmt.Sprintf("race-%d", round)
		if err := e.store.Create(ctx, &shared.Session{Name: token, Token: token, Os: "linux"}); err != nil {
			t.Fatal(err)
		}
		if res, err := e.connect(token, shared.ConnectOptions{}); err != nil || res.Status.State != shared.StateQR {
			t.Fatalf("round %d: connect: %+v %v", round, res, err)
		}
		if frozen {
			e.wa.Freeze()
		}
		var (
			wg        sync.WaitGroup
			deleteErr error
			mu        sync.Mutex
			answers   = map[string]int{}
		)
		wg.Go(func() { deleteErr = e.do(shared.OpDelete, token) })
		for range 20 {
			wg.Go(func() {
				_, err := e.connect(token, shared.ConnectOptions{Immediate: true})
				mu.Lock()
				answers[shared.ErrorMessage(err)]++
				mu.Unlock()
			})
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: delete and connects did not all answer", round)
		}
		e.wa.Thaw()
		if deleteErr != nil {
			t.Fatalf("round %d: delete: %v", round, deleteErr)
		}
		for msg := range answers {
			if msg != "" && msg != shared.MsgInvalidToken && !strings.HasPrefix(msg, "connect interrupted") {
				t.Fatalf("round %d: a racing connect answered %q (all: %v)", round, msg, answers)
			}
		}
		if _, err := e.store.Get(ctx, token); shared.ErrorCode(err) != shared.ENOTFOUND {
			t.Fatalf("round %d: row after delete: %v", round, err)
		}
		noSocketsLeft(t, e, fmt.Sprintf("round %d (frozen %v)", round, frozen))
		if st, _ := e.conn.Status(ctx, token); st.State != shared.StateDisconnected || st.Connected || st.HasQR {
			t.Fatalf("round %d: status of the deleted token: %+v", round, st)
		}
	}
}
