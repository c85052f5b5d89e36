package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"

	"github.com/wago-gw/wago/connector/waemu"
	"github.com/wago-gw/wago/functions/openapitest"
)

// chromiumPath finds the browser of the dashboard test: $WAGO_TEST_CHROMIUM,
// else Debian's chromium (.ci/chromium installs it). Without one the test
// skips, but under CI, where .ci/chromium has run, it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WAGO_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (CI is set: .ci/chromium should have installed it)")
	}
	t.Skip("chromium is missing: run .ci/chromium to install it")
	return ""
}

// artifactsDir is where the test writes its screenshots: $WAGO_TEST_ARTIFACTS,
// else a directory under the system's temporary one (named in the log).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WAGO_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wago-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser is one headless Chromium tab on the dashboard.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	errs []string // script exceptions and console errors (CSP violations among them)
}

func newBrowser(t *testing.T) *browser {
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: artifactsDir(t)}
	b.run("start the browser", chromedp.Navigate("about:blank"))
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A failed request (the 401 of a wrong token) is expected;
			// any other error (an exception, a CSP violation) is not.
			if m.IsException() || m.Type == chromedp.ConsoleError && m.Source != "network" {
				b.mu.Lock()
				b.errs = append(b.errs, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// run runs steps, failing the test with what it was doing.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs one action and returns its value.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// waitText waits until the visible element sel (CSS) shows want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.closest('[hidden]') && e.textContent.includes(%q); })()`, sel, want)
	get(b, fmt.Sprintf("wait for %s to show %q", sel, want), chromedp.Poll[bool](js,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
}

// screenshot writes the page as name.png in the artifacts.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	buf := get(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// scanQRFromPage takes the QR image as the page shows it (a screenshot of
// the element) and decodes it, as a phone's camera would.
func (b *browser) scanQRFromPage() string {
	b.t.Helper()
	shot := get(b, "screenshot the QR code", chromedp.Screenshot(chromedp.ID("qr"), chromedp.NodeVisible))
	code, err := decodeQR(shot, gozxing.DecodeHintType_TRY_HARDER)
	if err != nil {
		os.WriteFile(filepath.Join(b.dir, "qr-undecodable.png"), shot, 0o644)
		b.t.Fatalf("the QR code on the page does not decode: %v", err)
	}
	return code
}

func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// TestDashboard drives the dashboard in headless Chromium against the real
// binary and the emulator: a wrong admin token shows the API's error; the
// admin signs in, creates a session, connects, the emulator's phone scans
// the QR code taken from the page, the page turns connected by itself, a
// test message reaches the emulator's contact, a webhook set on the page
// lists a delivered event, a dead letter is replayed from the page; the
// session token sees its session only; then logout, linking again by
// pairing code, and delete. Screenshots of each screen go to the artifacts.
func TestDashboard(t *testing.T) {
	b := newBrowser(t)
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	p := startWago(t, append(embeddedEnv(emu, t.TempDir()), "WAGO_WEBHOOK_RETRY_SCHEDULE=50ms,50ms"))

	// The page and its headers, from the real binary.
	req, _ := http.NewRequestWithContext(openapitest.WithT(context.Background(), t), "GET", p.base+"/dashboard", nil)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("GET /dashboard: %d %q, CSP %q, X-Frame-Options %q", resp.StatusCode, resp.Header.Get("Content-Type"), csp, resp.Header.Get("X-Frame-Options"))
	}

	// A wrong admin token: the API's error, and no way in.
	b.run("open the dashboard", chromedp.Navigate(p.base+"/dashboard"), chromedp.WaitVisible(chromedp.ID("signin-token")),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	b.run("sign in with a wrong token", chromedp.SendKeys(chromedp.ID("signin-token"), "not-the-admin-token"), chromedp.Click(chromedp.ID("signin-submit")))
	b.waitText("#signin-error", "invalid admin token")
	b.screenshot("1-signin-error")

	// The admin signs in and creates a session with the suggested token.
	b.run("sign in", chromedp.SetValue(chromedp.ID("signin-token"), adminToken), chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("new-name")))
	token := get(b, "read the suggested token", chromedp.Value(chromedp.ID("new-token")))
	if len(token) != 48 {
		t.Fatalf("suggested token %q, want 48 hex digits", token)
	}
	stored := get(b, "read sessionStorage", chromedp.Evaluate[string](`sessionStorage.getItem('wago.auth')`))
	if !strings.Contains(stored, adminToken) {
		t.Fatalf("the admin token is not kept in sessionStorage: %q", stored)
	}
	b.run("create a session", chromedp.SendKeys(chromedp.ID("new-name"), "shop-phone"), chromedp.Click(chromedp.ID("new-create")))
	b.waitText("#s-name", "shop-phone")
	b.waitText("#s-state", "disconnected")

	// Connect: the QR code appears; the phone scans the image on the page.
	b.run("connect", chromedp.Click(chromedp.ID("connect")), chromedp.WaitVisible(chromedp.ID("qr")))
	b.waitText("#s-state", "qr")
	b.screenshot("2-qr")
	code := b.scanQRFromPage()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid, err := emu.ScanQR(ctx, code)
	if err != nil {
		t.Fatalf("the phone's scan of the page's QR code: %v", err)
	}
	b.waitText("#s-state", "connected")
	b.waitText("#s-jid", jid.User)
	b.run("wait for the link panel to go", chromedp.WaitNotVisible(chromedp.ID("link")))

	// A test message reaches the emulator's contact.
	const text = "hello from the dashboard"
	b.run("send a test message", chromedp.SendKeys(chromedp.ID("send-phone"), emu.Contact().User),
		chromedp.SetValue(chromedp.ID("send-body"), text), chromedp.Click(chromedp.ID("send")))
	b.waitText("#send-result", "Sent")
	waitFor(t, 20*time.Second, "the contact to receive the test message", func() bool {
		for _, m := range emu.ContactInbox() {
			if m.Kind == waemu.InboxText && m.Text == text {
				return true
			}
		}
		return false
	})

	// A webhook set on the page; its secret is never shown back; an event
	// from the contact is listed as delivered.
	b.run("set the webhook", chromedp.SendKeys(chromedp.ID("wh-url"), recv.srv.URL+"/in"),
		chromedp.SendKeys(chromedp.ID("wh-secret"), hookSecret), chromedp.Click(chromedp.ID("wh-save")))
	b.waitText("#wh-result", "Saved")
	b.waitText("#wh-secret-state", "set")
	html := get(b, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML + document.getElementById('wh-secret').value`))
	if strings.Contains(html, hookSecret) || strings.Contains(html, strings.TrimPrefix(hookSecret, "whsec_")) {
		t.Fatal("the webhook secret is in the page after saving")
	}
	sendFromContact(t, emu, jid, "hello webhook")
	recv.waitText(20*time.Second, "hello webhook")
	b.waitText("#recent", "delivered")
	if got := get(b, "read the last events", chromedp.Text(chromedp.ID("recent"))); !strings.Contains(got, "Message") {
		t.Fatalf("last events: %q, want a delivered Message", got)
	}

	// The receiver down: the event runs out of attempts and is listed in
	// the dead letters; once the receiver is back, Replay all delivers it.
	recv.down.Store(true)
	sendFromContact(t, emu, jid, "doomed")
	b.waitText("#dead", "receiver answered 503")
	b.waitText("#recent", "failed")
	b.screenshot("3-dead-letter")
	recv.down.Store(false)
	b.run("replay", chromedp.Click(chromedp.ID("replay-all")))
	recv.waitText(20*time.Second, "doomed")
	b.waitText("#dead-count", "(0)")
	b.waitText("#dead-result", "1 replayed")
	b.screenshot("4-session-connected")

	// The admin list shows it connected, with its JID and webhook.
	b.run("back to the list", chromedp.Click(chromedp.ID("back")))
	b.waitText("#sessions", "shop-phone")
	b.waitText("#sessions", "connected")
	b.waitText("#sessions", jid.User)
	b.screenshot("5-admin")

	// The session's own token sees that session only, without the admin's
	// parts; signing out forgets the token.
	b.run("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin-token")))
	if left := get(b, "read sessionStorage", chromedp.Evaluate[string](`JSON.stringify(sessionStorage)`)); left != "{}" {
		t.Fatalf("sessionStorage after signing out: %s", left)
	}
	b.run("sign in with the session token", chromedp.Click(chromedp.ID("kind-session")), chromedp.SetValue(chromedp.ID("signin-token"), token),
		chromedp.Click(chromedp.ID("signin-submit")))
	b.waitText("#s-name", "shop-phone")
	b.waitText("#s-state", "connected")
	b.run("the admin's parts are hidden", chromedp.WaitNotVisible(chromedp.ID("back")), chromedp.WaitNotVisible(chromedp.ID("delete")),
		chromedp.WaitNotVisible(chromedp.ID("dead-card")))
	b.run("sign in as the admin again", chromedp.Click(chromedp.ID("signout")), chromedp.Click(chromedp.ID("kind-admin")),
		chromedp.SetValue(chromedp.ID("signin-token"), adminToken), chromedp.Click(chromedp.ID("signin-submit")))
	b.waitText("#sessions", "shop-phone")

	// Log out: the page says what happened and what to do.
	b.run("open the session", chromedp.Click(chromedp.CSS("#sessions button.link")))
	b.waitText("#s-state", "connected")
	b.run("log out", chromedp.Click(chromedp.ID("logout")))
	b.waitText("#s-state", "logged out")
	b.waitText("#s-advice", "scan a new QR code")
	b.screenshot("6-logged-out")

	// Link again with a pairing code: the page shows the 8 characters, the
	// phone enters them, the page turns connected.
	const phone = "15557654321"
	b.run("ask for a pairing code", chromedp.SendKeys(chromedp.ID("pair-phone"), "+"+phone), chromedp.Click(chromedp.ID("pair")),
		chromedp.WaitVisible(chromedp.ID("pair-code")))
	pairCode := get(b, "read the pairing code", chromedp.Text(chromedp.ID("pair-code")))
	if len(strings.ReplaceAll(pairCode, "-", "")) != 8 {
		t.Fatalf("pairing code on the page: %q", pairCode)
	}
	b.waitText("#s-state", "pairing")
	b.waitText("#pair-help", "Link with phone number")
	b.screenshot("7-pair-code")
	if _, err := emu.EnterPairCode(ctx, phone, pairCode); err != nil {
		t.Fatalf("the phone entered the page's code: %v", err)
	}
	b.waitText("#s-state", "connected")
	b.waitText("#s-jid", phone)

	// Delete, after a confirmation.
	b.run("delete", chromedp.Click(chromedp.ID("delete")), chromedp.WaitVisible(chromedp.ID("confirm")))
	b.waitText("#confirm-text", "shop-phone")
	b.run("confirm", chromedp.Click(chromedp.ID("confirm-yes")), chromedp.WaitVisible(chromedp.ID("sessions-empty")))
	var rows []map[string]any
	p.ok(p.call("GET", "/session/all", "", "admintoken", adminToken), &rows)
	if len(rows) != 0 {
		t.Fatalf("sessions after the delete: %v", rows)
	}

	notReloaded := get(b, "check the page never reloaded", chromedp.Evaluate[bool](`window.notReloaded === true`))
	if !notReloaded {
		t.Fatal("the page was reloaded")
	}
	if errs := b.problems(); len(errs) > 0 {
		t.Fatalf("errors in the page: %v", errs)
	}
}
