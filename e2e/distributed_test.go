package e2e

// The distributed mode end to end: the API (the Lambda bootstrap through the
// Runtime API harness, or `wago api` listening) and a separate `wago
// connector` process on Redis and DynamoDB Local, against the emulator.
// Helpers are in distributed_helpers_test.go.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/redisbus"
)

// Redis databases of the tests that share WAGO_TEST_REDIS_URL's server (the
// binary's key prefix is fixed): one each, flushed at start.
const (
	redisDBDistributedLifecycle = 13
	redisDBConnectorKilled      = 14
	redisDBConnectorHungStop    = 12
	redisDBSendConnectorKilled  = 11
	redisDBSendBench            = 10
	redisDBWebhookBench         = 10 // benchmarks run one at a time
)

// TestDistributedLifecycle drives the documented lifecycle through the real
// Lambda bootstrap, with the sockets in a `wago connector` process.
func TestDistributedLifecycle(t *testing.T) {
	e := newDistEnv(t, redisDBDistributedLifecycle)
	emu := startEmulator(t)
	conn := startConnector(t, e, emu, t.TempDir())
	fn := startLambda(t, newLambdaRuntime(t), e.lambdaEnv)
	const token = "dist-lifecycle-token"
	distInit(fn, "dist-lifecycle", token)
	if st := distStatus(fn, token); st.Connected || st.LoggedIn || st.State != "disconnected" {
		t.Fatalf("status of a new session: %+v", st)
	}

	// init -> connect -> qr -> scan -> Connected and LoggedIn.
	jid := distLink(t, fn, emu, token)
	scanned := distSessions(fn, "POST", "/session/scanned")
	if r := scanned[token]; len(scanned) != 1 || r["jid"] != jid.String() || r["loggedIn"] != true {
		t.Fatalf("scanned = %v", scanned)
	}
	all := distSessions(fn, "GET", "/session/all")
	if r := all[token]; len(all) != 1 || r["loggedIn"] != true || r["connected"] != true || r["state"] != "connected" {
		t.Fatalf("all while logged in = %v", all)
	}
	if a := fn.call("GET", "/session/qr", "", "token", token); a.Status != 409 || a.Error != "already logged in" {
		t.Fatalf("qr when logged in: %d %q", a.Status, a.Error)
	}
	var c map[string]any
	fn.ok(fn.call("POST", "/session/connect", `{}`, "token", token), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() || c["events"] != "All" {
		t.Fatalf("second connect answered %v", c)
	}
	if n := emu.SocketsFor(jid); n != 1 {
		t.Fatalf("%d sockets for the device after a second connect", n)
	}

	// disconnect -> status disconnected, also in /session/all (from Redis).
	fn.ok(fn.call("POST", "/session/disconnect", "", "token", token), nil)
	st := distWaitStatus(t, fn, token, 5*time.Second, "disconnected", func(s status) bool { return s.State == "disconnected" })
	if st.Connected || st.LoggedIn || st.Jid != jid.String() {
		t.Fatalf("status after disconnect: %+v", st)
	}
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })
	all = distSessions(fn, "GET", "/session/all")
	if r := all[token]; r["loggedIn"] != false || r["connected"] != false || r["state"] != "disconnected" || r["jid"] != jid.String() {
		t.Fatalf("all after disconnect = %v", all)
	}
	if a := fn.call("POST", "/session/disconnect", "", "token", token); a.Status != 409 || a.Error != "No session" {
		t.Fatalf("second disconnect: %d %q", a.Status, a.Error)
	}

	// connect restores without a QR code.
	before := logins(emu, jid)
	fn.ok(fn.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() || c["state"] != "connected" {
		t.Fatalf("restore after disconnect answered %v", c)
	}
	if after := logins(emu, jid); after != before+1 {
		t.Fatalf("logins %d -> %d, want one more", before, after)
	}
	distWaitStatus(t, fn, token, 5*time.Second, "logged in again", func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jid.String() })

	// logout -> LoggedIn false, and the emulator forgot the device.
	fn.ok(fn.call("POST", "/session/logout", "", "token", token), nil)
	st = distWaitStatus(t, fn, token, 5*time.Second, "logged out", func(s status) bool { return s.State == "logged_out" })
	if st.LoggedIn || st.Connected || st.Jid != "" {
		t.Fatalf("status after logout: %+v", st)
	}
	if _, ok := device(emu, jid); ok {
		t.Fatal("the emulator still has the device after logout")
	}
	if scanned = distSessions(fn, "POST", "/session/scanned"); len(scanned) != 0 {
		t.Fatalf("scanned after logout: %v", scanned)
	}
	if a := fn.call("POST", "/session/logout", "", "token", token); a.Status != 409 || a.Error != "not logged in" {
		t.Fatalf("second logout: %d %q", a.Status, a.Error)
	}

	// connect offers a new QR code.
	fn.ok(fn.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
	if c["state"] != "qr" || c["loggedIn"] != false || c["jid"] != "" {
		t.Fatalf("connect after logout answered %v", c)
	}
	distScanQR(t, fn, token)

	// delete removes the row, stops the client and its published keys.
	fn.ok(fn.call("POST", "/session/delete", "", "admintoken", lambdaAdminToken, "token", token), nil)
	if a := fn.call("GET", "/session/status", "", "token", token); a.Status != 401 {
		t.Fatalf("status after delete: %d %q", a.Status, a.Error)
	}
	if all = distSessions(fn, "GET", "/session/all"); len(all) != 0 {
		t.Fatalf("rows after delete: %v", all)
	}
	waitFor(t, 5*time.Second, "the QR socket to close after delete", func() bool { return emu.Sockets() == 0 })
	waitFor(t, 5*time.Second, "the status and QR keys to be deleted", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := e.rdb.Exists(ctx, "wago:status:"+token, "wago:qr:"+token).Result()
		return err == nil && n == 0
	})
	select {
	case <-conn.done:
		t.Fatalf("the connector exited: %v", conn.err)
	default:
	}
}

// TestConnectorKilled: when the connector dies (SIGKILL), its sessions stop
// reading as connected within 10 s, commands answer 503 in
// bounded time and are never run later, and a new connector on the same
// key store brings the logged-in sessions back by itself.
func TestConnectorKilled(t *testing.T) {
	e := newDistEnv(t, redisDBConnectorKilled)
	emu := startEmulator(t)
	dir := t.TempDir()
	api := startDistAPI(t, e)
	conn := startConnector(t, e, emu, dir)

	tokens := []string{"killed-a", "killed-b", "killed-c"}
	jids := map[string]types.JID{}
	for _, token := range tokens {
		distInit(api, token, token)
		jids[token] = distLink(t, api, emu, token)
	}
	a, b, c := tokens[0], tokens[1], tokens[2]
	// c is linked but disconnected: nothing restores it, so a connect of c
	// run late would show as a new login.
	api.ok(api.call("POST", "/session/disconnect", "", "token", c), nil)
	distWaitStatus(t, api, c, 5*time.Second, "c disconnected", func(s status) bool { return s.State == "disconnected" })
	loginsBefore := map[string]int{}
	for _, token := range tokens {
		want := 1
		if token == c {
			want = 0
		}
		waitFor(t, 5*time.Second, "the sockets to settle", func() bool { return emu.SocketsFor(jids[token]) == want })
		loginsBefore[token] = logins(emu, jids[token])
	}

	conn.cmd.Process.Kill()
	<-conn.done
	killed := time.Now()

	// Commands sent while no connector runs: a 503 envelope after the
	// client's wait, never a hang.
	type outcome struct {
		token string
		a     answer
		took  time.Duration
		err   error
	}
	outcomes := make(chan outcome, 2)
	for _, token := range []string{a, c} {
		go func() {
			ans, took, err := httpCall(api.base, "POST", "/session/connect", `{"Immediate":false}`, "token", token)
			outcomes <- outcome{token, ans, took, err}
		}()
	}

	// The sessions stop reading connected within 10 s: their statuses were
	// written under leases that are no longer renewed.
	for _, token := range []string{a, b} {
		distWaitStatus(t, api, token, time.Until(killed.Add(10*time.Second)), token+" to stop reading connected",
			func(s status) bool { return !s.Connected && !s.LoggedIn && s.State == "disconnected" })
	}
	expired := time.Since(killed)

	var slowest time.Duration
	for range 2 {
		o := <-outcomes
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.a.Status != 503 || o.a.Error != redisbus.MsgNoReply || o.took > 15*time.Second {
			t.Fatalf("connect %s without a connector: %d %q after %s", o.token, o.a.Status, o.a.Error, o.took)
		}
		slowest = max(slowest, o.took)
	}

	// A new connector on the same key store takes the shards over (the
	// dead one's leases have expired by now) and restores a and b alone.
	restart := time.Now()
	conn2 := startConnector(t, e, emu, dir)
	for _, token := range []string{a, b} {
		distWaitStatus(t, api, token, 40*time.Second, token+" restored by the new connector",
			func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jids[token].String() })
	}
	takeover := time.Since(restart)
	for _, token := range []string{a, b} {
		if got, want := logins(emu, jids[token]), loginsBefore[token]+1; got != want {
			t.Errorf("%s: %d logins, want %d (one restore; the connect sent during the outage must not run)", token, got, want)
		}
	}

	// The two connects sent during the outage reached the new connector
	// past their deadline and were dropped, not run.
	waitFor(t, 10*time.Second, "the new connector to drop the expired connects", func() bool {
		return strings.Count(conn2.logBuf.String(), "dropping a command past its deadline") >= 2
	})
	time.Sleep(200 * time.Millisecond) // a late run of c's connect would show by now
	jidC := jids[c]
	if got := logins(emu, jidC); got != loginsBefore[c] {
		t.Fatalf("c: %d logins, want %d: the connect sent during the outage ran", got, loginsBefore[c])
	}
	if n := emu.SocketsFor(jidC); n != 0 {
		t.Fatalf("c has %d sockets: the connect sent during the outage ran", n)
	}
	if st := distStatus(api, c); st.Connected || st.State != "disconnected" || st.Jid != jidC.String() {
		t.Fatalf("c after the takeover: %+v", st)
	}

	all := distSessions(api, "GET", "/session/all")
	if len(all) != 3 || all[a]["loggedIn"] != true || all[b]["loggedIn"] != true || all[c]["loggedIn"] != false {
		t.Fatalf("all after the takeover: %v", all)
	}
	sinceKill := time.Since(killed)

	// A standby connector started at once takes over when the dead one's
	// leases expire (LeaseTTL), not only after its status keys expire.
	conn2.cmd.Process.Kill()
	<-conn2.done
	killed = time.Now()
	startConnector(t, e, emu, dir)
	waitFor(t, redisbus.DefaultLeaseTTL+25*time.Second, "the standby connector to restore a and b", func() bool {
		return logins(emu, jids[a]) == loginsBefore[a]+2 && logins(emu, jids[b]) == loginsBefore[b]+2
	})
	standby := time.Since(killed)
	for _, token := range []string{a, b} {
		distWaitStatus(t, api, token, 5*time.Second, token+" restored by the standby connector",
			func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jids[token].String() })
	}
	if n, m := emu.SocketsFor(jids[a]), emu.SocketsFor(jids[b]); n != 1 || m != 1 {
		t.Fatalf("after the standby takeover: %d and %d sockets, want 1 each", n, m)
	}
	if got := logins(emu, jidC); got != loginsBefore[c] {
		t.Fatalf("c: %d logins after the standby takeover, want %d", got, loginsBefore[c])
	}
	if all = distSessions(api, "GET", "/session/all"); len(all) != 3 {
		t.Fatalf("all after the standby takeover: %v", all)
	}

	t.Logf("connector killed: status stopped reading connected %.1f s after the kill (lease TTL %s); outage connects answered 503 in at most %.1f s; "+
		"a new connector restored both sessions %.1f s after its start (%.1f s after the kill); "+
		"a standby connector started at a second kill restored them %.1f s after it (lease TTL %s)",
		expired.Seconds(), redisbus.DefaultLeaseTTL, slowest.Seconds(), takeover.Seconds(), sinceKill.Seconds(),
		standby.Seconds(), redisbus.DefaultLeaseTTL)
}

// statusCacheGrace is how long after Redis stops answering the API's
// status cache may still answer (redisbus' cacheLiveFor and cachePing,
// and some slack).
const statusCacheGrace = 1500 * time.Millisecond

// TestRedisRestart: while Redis is down the API answers 503 envelopes
// quickly (the status cache may answer the status of before for up to
// statusCacheGrace), and once it is back the API, the connector and the
// session recover by themselves.
func TestRedisRestart(t *testing.T) {
	rs := startRedisServer(t)
	e := distEnv{lambdaEnv: newLambdaEnv(t)}
	e.redisURL = rs.url(0)
	emu := startEmulator(t)
	api := startDistAPI(t, e)
	conn := startConnector(t, e, emu, t.TempDir())
	const token = "redis-restart-token"
	distInit(api, "redis-restart", token)
	jid := distLink(t, api, emu, token)

	// Down for longer than a lease renewal can be missed (LeaseTTL 15 s,
	// renewed every 5 s): the connector gives its shards up meanwhile.
	const downFor = 10 * time.Second
	rs.kill()
	down := time.Now()
	calls := []struct{ method, path, body string }{
		{"GET", "/session/status", ""},
		{"POST", "/session/connect", `{"Immediate":false}`},
		{"GET", "/session/qr", ""},
	}
	worst := map[string]time.Duration{}
	var cached time.Duration // the last status the status cache answered
	for rounds := 0; rounds == 0 || time.Since(down) < downFor; rounds++ {
		for _, c := range calls {
			var a answer
			took := timed(func() { a = api.call(c.method, c.path, c.body, "token", token) })
			if since := time.Since(down); c.path == "/session/status" && a.Status == 200 && since < statusCacheGrace {
				// The status cache answers until it sees its connection
				// gone, or silent for a second; only with the status of
				// before.
				var st status
				if err := json.Unmarshal(a.Data, &st); err != nil || !st.Connected || !st.LoggedIn || st.Jid != jid.String() {
					t.Fatalf("status answered while Redis is down: %s, want the status of before", a.Data)
				}
				cached = since
				continue
			}
			if a.Status != 503 || a.Error != redisbus.MsgUnavailable || took > 5*time.Second {
				t.Fatalf("%s %s while Redis is down: %d %q after %s", c.method, c.path, a.Status, a.Error, took)
			}
			worst[c.path] = max(worst[c.path], took)
		}
		time.Sleep(250 * time.Millisecond)
	}
	select {
	case <-conn.done:
		t.Fatalf("the connector exited while Redis was down: %v", conn.err)
	default:
	}
	t.Logf("the status cache answered until %v after Redis died", cached.Round(time.Millisecond))

	rs.start()
	up := time.Now()
	// The API recovers by itself.
	deadline := up.Add(10 * time.Second)
	for {
		a := api.call("GET", "/session/status", "", "token", token)
		if a.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status 10 s after Redis came back: %d %q", a.Status, a.Error)
		}
		time.Sleep(25 * time.Millisecond)
	}
	apiBack := time.Since(up)
	// The connector takes its shards again and republishes the session.
	distWaitStatus(t, api, token, 15*time.Second, "logged in again after the Redis restart",
		func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jid.String() })
	sessionBack := time.Since(up)

	// A disconnect/connect round trip works.
	api.ok(api.call("POST", "/session/disconnect", "", "token", token), nil)
	distWaitStatus(t, api, token, 5*time.Second, "disconnected", func(s status) bool { return s.State == "disconnected" && !s.Connected })
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })
	before := logins(emu, jid)
	var c map[string]any
	api.ok(api.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() {
		t.Fatalf("connect after the Redis restart answered %v", c)
	}
	if after := logins(emu, jid); after != before+1 {
		t.Fatalf("logins %d -> %d, want one more", before, after)
	}
	distWaitStatus(t, api, token, 5*time.Second, "logged in", func(s status) bool { return s.Connected && s.LoggedIn })

	t.Logf("Redis down %.1f s: 503 in at most status %.0f ms, connect %.0f ms, qr %.0f ms; after the restart the API answered in %.2f s and the session read logged in again after %.1f s",
		downFor.Seconds(), lambdaMillis(worst["/session/status"]), lambdaMillis(worst["/session/connect"]), lambdaMillis(worst["/session/qr"]),
		apiBack.Seconds(), sessionBack.Seconds())
}
