package e2e

import (
	"testing"
	"time"
)

const redisDBStatusCache = 5

// TestStatusCacheAcrossAPIs: two `wago api` processes, each with its status
// cache (the default), in front of one connector. Each answers status polls
// from its cache (its /metrics counts the hits), and each sees at once
// what changes a session: a link through the other, a disconnect and a
// connect through the other, and the phone removing the device, which no
// API process commanded.
func TestStatusCacheAcrossAPIs(t *testing.T) {
	e := newDistEnv(t, redisDBStatusCache)
	emu := startEmulator(t)
	startConnector(t, e, emu, t.TempDir())
	a, b := startDistAPI(t, e), startDistAPI(t, e)
	const token = "status-cache-token"
	distInit(a, "status-cache", token)
	for _, api := range []*proc{a, b} {
		if st := distStatus(api, token); st.State != "disconnected" {
			t.Fatalf("status of a new session: %+v", st)
		}
	}

	// Linked through A: B, which read it disconnected, sees it connected.
	jid := distLink(t, a, emu, token)
	linked := func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jid.String() }
	distWaitStatus(t, b, token, 2*time.Second, "B to see the link made through A", linked)

	// Polls are answered from the cache.
	hits := func(p *proc) float64 {
		code, body := httpGet(t, p.base+"/metrics", "admintoken", lambdaAdminToken)
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		if up := metricValue(body, "wago_status_cache_up"); up != 1 {
			t.Fatalf("wago_status_cache_up = %v, want 1", up)
		}
		return metricValue(body, "wago_status_cache_hits_total")
	}
	before := hits(a)
	for range 200 {
		if st := distStatus(a, token); !linked(st) {
			t.Fatalf("status while linked: %+v", st)
		}
	}
	if n := hits(a) - before; n < 150 {
		t.Fatalf("%v of 200 status polls were answered by the cache", n)
	}

	// A disconnect through B, a connect through A: each process sees the
	// other's.
	b.ok(b.call("POST", "/session/disconnect", "", "token", token), nil)
	distWaitStatus(t, a, token, 2*time.Second, "A to see the disconnect made through B",
		func(s status) bool { return s.State == "disconnected" && !s.Connected })
	a.ok(a.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), nil)
	distWaitStatus(t, b, token, 2*time.Second, "B to see the connect made through A", linked)
	distWaitStatus(t, a, token, 2*time.Second, "A to see its own connect", linked)

	// The phone removes the device.
	if err := emu.RemoveDevice(jid); err != nil {
		t.Fatal(err)
	}
	for _, api := range []*proc{a, b} {
		distWaitStatus(t, api, token, 3*time.Second, "the removal to be seen",
			func(s status) bool { return s.State == "logged_out" && !s.LoggedIn })
	}
}
