package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
)

// Bad days through the real binary and its HTTP API (embedded mode): a
// WhatsApp server that accepts connections and never answers (the emulator
// behind a frozen proxy, as after SIGSTOP), and a delete racing connects.

// badDayConnectTimeout is the connect timeout of these tests' wago.
const badDayConnectTimeout = 5 * time.Second

// startBadDay runs an all-in-one wago that dials the emulator through a
// proxy that can freeze.
func startBadDay(t *testing.T) (*proc, *hangProxy, *waemu.Server) {
	t.Helper()
	emu := startEmulator(t)
	wa := startHangProxy(t, emu.Addr())
	env := embeddedEnv(emu, t.TempDir())
	env = append(env, "WAGO_WHATSAPP_ADDR="+wa.Addr(), fmt.Sprintf("WAGO_CONNECT_TIMEOUT=%s", badDayConnectTimeout))
	return startWago(t, env), wa, emu
}

// within calls the API in the background and fails the test unless it
// answers within d; it returns the answer.
func within(t *testing.T, p *proc, d time.Duration, what, method, path, body string, headers ...string) answer {
	t.Helper()
	type result struct {
		a   answer
		err error
	}
	ch := make(chan result, 1)
	go func() {
		a, _, err := httpCall(p.base, method, path, body, headers...)
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r.a
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
	}
	return answer{}
}

// TestHungWhatsAppNeverLocksAToken: with WhatsApp hung, a connect answers
// 503 within the connect timeout, and status, disconnect and delete of the
// token answer within seconds; the delete completes and leaves no socket.
func TestHungWhatsAppNeverLocksAToken(t *testing.T) {
	p, wa, emu := startBadDay(t)
	const token = "hung-token"
	initToken(p, "hung", token)
	link(t, p, emu, token)
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	wa.Freeze()
	defer wa.Thaw()

	a := within(t, p, badDayConnectTimeout+3*time.Second, "connect to a hung server", "POST", "/session/connect", `{"Immediate":true}`, "token", token)
	if a.Status != 503 || a.Error != "could not connect to WhatsApp: timed out" {
		t.Fatalf("connect to a hung server: %d %q", a.Status, a.Error)
	}
	if st := p.status(token); st.State != "failed" || !strings.Contains(st.LastError, "timed out") {
		t.Fatalf("status after the timed-out connect: %+v", st)
	}
	// A disconnect after the failed connect changes nothing.
	before := p.status(token)
	if a := p.call("POST", "/session/disconnect", "", "token", token); a.Status != 409 || a.Error != "No session" {
		t.Fatalf("disconnect after a failed connect: %d %q", a.Status, a.Error)
	}
	if after := p.status(token); after.State != before.State || after.LastError != before.LastError {
		t.Fatalf("disconnect after a failed connect changed the status from %+v to %+v", before, after)
	}

	// Another connect hangs; meanwhile the token answers.
	go httpCall(p.base, "POST", "/session/connect", `{"Immediate":true}`, "token", token)
	p.waitStatus(token, 5*time.Second, "connecting", func(s status) bool { return s.State == "connecting" })
	within(t, p, time.Second, "status while a connect hangs", "GET", "/session/status", "", "token", token)
	if a := within(t, p, 3*time.Second, "disconnect while a connect hangs", "POST", "/session/disconnect", "", "token", token); a.Status != 200 {
		t.Fatalf("disconnect while a connect hangs: %d %q", a.Status, a.Error)
	}

	// And a delete while a connect hangs completes.
	go httpCall(p.base, "POST", "/session/connect", `{"Immediate":true}`, "token", token)
	p.waitStatus(token, 5*time.Second, "connecting", func(s status) bool { return s.State == "connecting" })
	if a := within(t, p, 10*time.Second, "delete while a connect hangs", "POST", "/session/delete", "", "admintoken", adminToken, "token", token); a.Status != 200 {
		t.Fatalf("delete while a connect hangs: %d %q", a.Status, a.Error)
	}
	if a := p.call("GET", "/session/status", "", "token", token); a.Status != 401 {
		t.Fatalf("status of the deleted token: %d %q", a.Status, a.Error)
	}
	wa.Thaw()
	waitFor(t, 10*time.Second, "every socket closed", func() bool { return emu.Sockets() == 0 })
	time.Sleep(time.Second)
	if n := emu.Sockets(); n != 0 {
		t.Fatalf("%d sockets came back after the delete", n)
	}
}

// TestDeleteRacingConnectsLeavesNoSocket: a delete and 20 connects of one
// token, with WhatsApp frozen and not: every request answers, and the
// deleted token has no socket at the emulator.
func TestDeleteRacingConnectsLeavesNoSocket(t *testing.T) {
	p, wa, emu := startBadDay(t)
	for round := range 6 {
		frozen := round == 0
		token := fmt.Sprintf("race-%d", round)
		initToken(p, token, token)
		var c map[string]any
		p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
		if c["state"] != "qr" {
			t.Fatalf("round %d: connect answered %v", round, c)
		}
		if frozen {
			wa.Freeze()
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
		)
		record := func(what string, a answer, err error, ok func(answer) bool) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !ok(a) {
				failures = append(failures, fmt.Sprintf("%s: %d %q %v", what, a.Status, a.Error, err))
			}
		}
		wg.Go(func() {
			a, _, err := httpCall(p.base, "POST", "/session/delete", "", "admintoken", adminToken, "token", token)
			record("delete", a, err, func(a answer) bool { return a.Status == 200 })
		})
		for range 20 {
			wg.Go(func() {
				a, _, err := httpCall(p.base, "POST", "/session/connect", `{"Immediate":true}`, "token", token)
				record("connect", a, err, func(a answer) bool {
					return a.Status == 200 || a.Status == 401 || a.Status == 409 && strings.HasPrefix(a.Error, "connect interrupted")
				})
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the delete and connects did not all answer", round)
		}
		wa.Thaw()
		if len(failures) > 0 {
			t.Fatalf("round %d: %v", round, failures)
		}
		if a := p.call("GET", "/session/status", "", "token", token); a.Status != 401 {
			t.Fatalf("round %d: status of the deleted token: %d %q", round, a.Status, a.Error)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: every socket closed", round), func() bool { return emu.Sockets() == 0 })
		time.Sleep(500 * time.Millisecond)
		if n := emu.Sockets(); n != 0 {
			t.Fatalf("round %d: %d sockets left for a deleted token", round, n)
		}
	}
}

// TestConnectorStopsWithAHungDial: SIGTERM stops `wago connector` in
// bounded time while a connect it runs hangs on WhatsApp (the release of
// each shard drains for at most DrainTimeout, then cancels).
func TestConnectorStopsWithAHungDial(t *testing.T) {
	e := newDistEnv(t, redisDBConnectorHungStop)
	emu := startEmulator(t)
	wa := startHangProxy(t, emu.Addr())
	conn := startConnectorVia(t, e, emu, wa.Addr(), t.TempDir())
	api := startDistAPI(t, e)
	const token = "hung-stop-token"
	distInit(api, "hung-stop", token)
	distLink(t, api, emu, token)
	api.ok(api.call("POST", "/session/disconnect", "", "token", token), nil)
	wa.Freeze()
	defer wa.Thaw()

	answered := make(chan answer, 1)
	go func() {
		a, _, _ := httpCall(api.base, "POST", "/session/connect", `{"Immediate":true}`, "token", token)
		answered <- a
	}()
	waitFor(t, 5*time.Second, "the connector to dial", func() bool {
		return strings.Contains(conn.logBuf.String(), `"session.connect"`) || distStatus(api, token).State == "connecting"
	})
	if took := conn.stop(); took > 14*time.Second {
		t.Fatalf("the connector took %v to stop with a hung dial", took)
	}
	select {
	case a := <-answered:
		if a.Status != 503 {
			t.Fatalf("the connect cut by the shutdown answered %d %q", a.Status, a.Error)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the connect did not answer")
	}
}
