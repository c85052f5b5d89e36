package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const adminToken = "e2e-admin-token"

// TestGeneratedAdminToken: with no WAGO_ADMIN_TOKEN, the first start
// generates one, prints it once and keeps it; the next start uses it
// silently.
func TestGeneratedAdminToken(t *testing.T) {
	dir := t.TempDir()
	p := startWago(t, []string{"WAGO_DATA_DIR=" + dir, "WAGO_ADMIN_TOKEN="})
	raw, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	if len(token) < 32 {
		t.Fatalf("generated admin token %q is too short", token)
	}
	if !strings.Contains(p.logBuf.String(), token) {
		t.Fatal("the generated admin token was not printed")
	}
	p.ok(p.call("GET", "/session/all", "", "admintoken", token), nil)
	if a := p.call("GET", "/session/all", "", "admintoken", ""); a.Status != 401 {
		t.Fatalf("empty admin token: %d", a.Status)
	}
	p.stop()

	p = startWago(t, []string{"WAGO_DATA_DIR=" + dir, "WAGO_ADMIN_TOKEN="})
	if strings.Contains(p.logBuf.String(), token) {
		t.Fatal("the admin token was printed again")
	}
	p.ok(p.call("GET", "/session/all", "", "admintoken", token), nil)
}

// TestConnectWhileWhatsAppIsDown: a connect that cannot reach WhatsApp fails
// clearly and quickly, status tells the truth, and nothing is stuck: the
// next attempt dials again. Tokens never reach the log.
func TestConnectWhileWhatsAppIsDown(t *testing.T) {
	dead := freeAddr(t) // nothing listens there
	p := startWago(t, []string{"WAGO_DATA_DIR=" + t.TempDir(), "WAGO_ADMIN_TOKEN=" + adminToken, "WAGO_WHATSAPP_ADDR=" + dead})
	const token = "secret-token-never-logged"
	p.ok(p.call("POST", "/session/init", `{"Name":"down","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	for i := 0; i < 2; i++ {
		start := time.Now()
		a := p.call("POST", "/session/connect", `{"Subscribe":["All"],"Immediate":false}`, "token", token)
		if a.Status != 503 || a.Error != "could not connect to WhatsApp: connection refused" {
			t.Fatalf("connect #%d: %d %q", i+1, a.Status, a.Error)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("connect #%d took %s", i+1, took)
		}
		st := p.status(token)
		if st.Connected || st.LoggedIn || st.State != "failed" || st.LastError == "" || st.Events != "All" {
			t.Fatalf("status after failed connect: %+v", st)
		}
	}
	if a := p.call("GET", "/session/qr", "", "token", token); a.Status != 409 || a.Error != "No session" {
		t.Fatalf("qr after failed connect: %d %q", a.Status, a.Error)
	}
	if strings.Contains(p.logBuf.String(), token) {
		t.Fatal("a session token appeared in the log")
	}
	if took := p.stop(); took > 5*time.Second {
		t.Fatalf("exit after SIGTERM took %s", took)
	}
}
