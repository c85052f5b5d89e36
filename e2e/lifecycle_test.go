package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func initToken(p *proc, name, token string) {
	p.t.Helper()
	p.ok(p.call("POST", "/session/init", fmt.Sprintf(`{"Name":%q,"Token":%q,"Os":"linux"}`, name, token), "admintoken", adminToken), nil)
}

// TestSessionLifecycle drives the whole documented lifecycle through the
// real binary against the emulator.
func TestSessionLifecycle(t *testing.T) {
	emu := startEmulator(t)
	dir := t.TempDir()
	p := startWago(t, embeddedEnv(emu, dir))
	const token = "lifecycle-token"
	initToken(p, "lifecycle", token)

	// init -> connect -> qr -> scan -> Connected and LoggedIn.
	jid := link(t, p, emu, token)
	var scanned []map[string]any
	p.ok(p.call("POST", "/session/scanned", "", "admintoken", adminToken), &scanned)
	if len(scanned) != 1 || scanned[0]["jid"] != jid.String() || scanned[0]["loggedIn"] != true {
		t.Fatalf("scanned = %v", scanned)
	}
	if a := p.call("GET", "/session/qr", "", "token", token); a.Status != 409 || a.Error != "already logged in" {
		t.Fatalf("qr when logged in: %d %q", a.Status, a.Error)
	}
	// Connecting a connected session answers its state, with no new socket.
	var c map[string]any
	p.ok(p.call("POST", "/session/connect", `{}`, "token", token), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() || c["events"] != "All" {
		t.Fatalf("second connect answered %v", c)
	}
	if n := emu.SocketsFor(jid); n != 1 {
		t.Fatalf("%d sockets for the device after a second connect", n)
	}

	// disconnect -> connect restores without a QR code.
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	if st := p.status(token); st.Connected || st.LoggedIn || st.State != "disconnected" || st.Jid != jid.String() {
		t.Fatalf("status after disconnect: %+v", st)
	}
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })
	if a := p.call("POST", "/session/disconnect", "", "token", token); a.Status != 409 || a.Error != "No session" {
		t.Fatalf("second disconnect: %d %q", a.Status, a.Error)
	}
	before, _ := device(emu, jid)
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
	if c["loggedIn"] != true {
		t.Fatalf("restore after disconnect answered %v", c)
	}
	if after, _ := device(emu, jid); after.Logins != before.Logins+1 {
		t.Fatalf("logins %d -> %d, want one more", before.Logins, after.Logins)
	}

	// Restart the server while connected: the session comes back by itself.
	if took := p.stop(); took > 5*time.Second {
		t.Fatalf("SIGTERM exit took %s with a live session", took)
	}
	waitFor(t, 5*time.Second, "the socket to close at shutdown", func() bool { return emu.SocketsFor(jid) == 0 })
	if d, ok := device(emu, jid); !ok {
		t.Fatal("shutdown logged the device out")
	} else if d.Online {
		t.Fatal("device still online after shutdown")
	}
	p = startWago(t, embeddedEnv(emu, dir))
	p.waitStatus(token, 20*time.Second, "auto-reconnect at start", func(s status) bool { return s.LoggedIn && s.Jid == jid.String() })

	// Restart after a disconnect: nothing reconnects by itself, and connect
	// restores without a QR code.
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	p.stop()
	p = startWago(t, embeddedEnv(emu, dir))
	time.Sleep(300 * time.Millisecond) // the restore pass has run by now
	if st := p.status(token); st.Connected || st.State != "disconnected" {
		t.Fatalf("a disconnected session reconnected at start: %+v", st)
	}
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() {
		t.Fatalf("restore after restart answered %v", c)
	}

	// logout -> LoggedIn false, and connect offers a new QR code.
	p.ok(p.call("POST", "/session/logout", "", "token", token), nil)
	if st := p.status(token); st.LoggedIn || st.Connected || st.State != "logged_out" || st.Jid != "" {
		t.Fatalf("status after logout: %+v", st)
	}
	if _, ok := device(emu, jid); ok {
		t.Fatal("the emulator still has the device after logout")
	}
	p.ok(p.call("POST", "/session/scanned", "", "admintoken", adminToken), &scanned)
	if len(scanned) != 0 {
		t.Fatalf("scanned after logout: %v", scanned)
	}
	if a := p.call("POST", "/session/logout", "", "token", token); a.Status != 409 || a.Error != "not logged in" {
		t.Fatalf("second logout: %d %q", a.Status, a.Error)
	}
	jid2 := link(t, p, emu, token)

	// Server-side removal is reported and status is right.
	if err := emu.RemoveDevice(jid2); err != nil {
		t.Fatal(err)
	}
	st := p.waitStatus(token, 10*time.Second, "the removal to be reported", func(s status) bool { return s.State == "logged_out" })
	if st.LoggedIn || st.Connected || st.Jid != "" || st.LastError == "" {
		t.Fatalf("status after server-side removal: %+v", st)
	}
	p.waitStatus(token, 5*time.Second, "the row's JID to clear", func(s status) bool { return s.Jid == "" })

	// Pair-code flow to LoggedIn.
	const phone = "15557654321"
	var pair map[string]any
	p.ok(p.call("POST", "/session/pair", `{"Phone":"+`+phone+`"}`, "token", token), &pair)
	code, _ := pair["LinkingCode"].(string)
	if len(strings.ReplaceAll(code, "-", "")) != 8 {
		t.Fatalf("pair answered %v", pair)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid3, err := emu.EnterPairCode(ctx, phone, code)
	if err != nil {
		t.Fatalf("phone entered the code: %v", err)
	}
	st = p.waitStatus(token, 30*time.Second, "logged in by pairing code", func(s status) bool { return s.LoggedIn })
	if st.Jid != jid3.String() || jid3.User != phone {
		t.Fatalf("paired as %q, emulator linked %q", st.Jid, jid3)
	}
	if a := p.call("POST", "/session/pair", `{"Phone":"`+phone+`"}`, "token", token); a.Status != 409 || a.Error != "already logged in" {
		t.Fatalf("pair when logged in: %d %q", a.Status, a.Error)
	}

	// delete logs the device out and removes the row.
	p.ok(p.call("POST", "/session/delete", "", "admintoken", adminToken, "token", token), nil)
	if _, ok := device(emu, jid3); ok {
		t.Fatal("delete did not log the device out")
	}
	if a := p.call("GET", "/session/status", "", "token", token); a.Status != 401 {
		t.Fatalf("status after delete: %d", a.Status)
	}
	var all []map[string]any
	p.ok(p.call("GET", "/session/all", "", "admintoken", adminToken), &all)
	if len(all) != 0 {
		t.Fatalf("rows after delete: %v", all)
	}
	initToken(p, "lifecycle", token) // the name and token are free again
}

// TestConcurrentConnectsOneSocket: 20 concurrent connects of one token open
// exactly one socket, before and after the device is linked.
func TestConcurrentConnectsOneSocket(t *testing.T) {
	emu := startEmulator(t)
	p := startWago(t, embeddedEnv(emu, t.TempDir()))
	const token = "concurrent-token"
	initToken(p, "concurrent", token)

	connectAll := func(body string) {
		var wg sync.WaitGroup
		errs := make(chan string, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if a := p.call("POST", "/session/connect", body, "token", token); a.Status != 200 {
					errs <- fmt.Sprintf("%d %s", a.Status, a.Error)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("a concurrent connect failed: %s", e)
		}
	}
	connectAll(`{"Immediate":true}`)
	p.waitStatus(token, 10*time.Second, "a QR code", func(s status) bool { return s.HasQR })
	if n := emu.Sockets(); n != 1 {
		t.Fatalf("%d sockets at the emulator after 20 concurrent connects, want 1", n)
	}
	code := p.scanQR(token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid, err := emu.ScanQR(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	p.waitStatus(token, 30*time.Second, "logged in", func(s status) bool { return s.LoggedIn })
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })

	connectAll(`{"Immediate":false}`)
	p.waitStatus(token, 10*time.Second, "logged in", func(s status) bool { return s.LoggedIn })
	time.Sleep(200 * time.Millisecond) // a stray second socket would show up by now
	if n, all := emu.SocketsFor(jid), emu.Sockets(); n != 1 || all != 1 {
		t.Fatalf("after 20 concurrent restores: %d sockets for the device, %d in all; want 1", n, all)
	}
	if d, _ := device(emu, jid); d.Logins != 2 {
		t.Fatalf("%d logins, want 2 (the first and one restore)", d.Logins)
	}
}

// TestEmulatorDownThenUp: connect while WhatsApp is unreachable fails
// clearly and works once it is back, for a new and for a linked session.
func TestEmulatorDownThenUp(t *testing.T) {
	emu := startEmulator(t)
	p := startWago(t, embeddedEnv(emu, t.TempDir()))
	initToken(p, "linked", "linked-token")
	initToken(p, "fresh", "fresh-token")
	jid := link(t, p, emu, "linked-token")
	p.ok(p.call("POST", "/session/disconnect", "", "token", "linked-token"), nil)

	emu.Stop()
	for _, token := range []string{"fresh-token", "linked-token"} {
		start := time.Now()
		a := p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token)
		if a.Status != 503 || a.Error != "could not connect to WhatsApp: connection refused" || time.Since(start) > 5*time.Second {
			t.Fatalf("%s: connect while down: %d %q after %s", token, a.Status, a.Error, time.Since(start))
		}
		if st := p.status(token); st.State != "failed" || st.Connected || st.LastError == "" {
			t.Fatalf("%s: status while down: %+v", token, st)
		}
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", "fresh-token"), &c)
	if c["state"] != "qr" {
		t.Fatalf("fresh session after the emulator came back: %v", c)
	}
	p.scanQR("fresh-token")
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", "linked-token"), &c)
	if c["loggedIn"] != true || c["jid"] != jid.String() {
		t.Fatalf("linked session after the emulator came back: %v", c)
	}
}
