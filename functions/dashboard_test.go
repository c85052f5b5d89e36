package functions

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/webhook"
)

// TestDashboardFiles: the three files, each with its type and the security
// headers; HEAD without a body; other paths and methods are the API's
// envelopes.
func TestDashboardFiles(t *testing.T) {
	h := newHarness(t)
	for path, ct := range map[string]string{
		"/dashboard": "text/html", "/dashboard/app.js": "text/javascript", "/dashboard/app.css": "text/css",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			rec := httptest.NewRecorder()
			h.api.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			hd := rec.Header()
			csp := hd.Get("Content-Security-Policy")
			if rec.Code != 200 || !strings.HasPrefix(hd.Get("Content-Type"), ct) {
				t.Fatalf("%s %s: %d %q", method, path, rec.Code, hd.Get("Content-Type"))
			}
			if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'") ||
				!strings.Contains(csp, "frame-ancestors 'none'") || hd.Get("X-Frame-Options") != "DENY" || hd.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("%s %s: headers %v", method, path, hd)
			}
			if (method == "HEAD") != (rec.Body.Len() == 0) {
				t.Fatalf("%s %s: body of %d bytes", method, path, rec.Body.Len())
			}
		}
	}
	h.wantError(h.do("GET", "/dashboard/", ""), http.StatusNotFound, "not found")
	h.wantError(h.do("GET", "/dashboard/index.html", ""), http.StatusNotFound, "not found")
	h.wantError(h.do("POST", "/dashboard", ""), http.StatusMethodNotAllowed, "method not allowed")
}

// TestDashboardHasNoInlineScript: the CSP refuses inline scripts and event
// handler attributes, so the page must have none (they would silently not
// run).
func TestDashboardHasNoInlineScript(t *testing.T) {
	page, err := dashboardFS.ReadFile("dashboard/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(string(page), -1) {
		if !strings.Contains(tag, `src="/dashboard/`) {
			t.Errorf("inline script: %s", tag)
		}
	}
	if m := regexp.MustCompile(`(?i)\son[a-z]+\s*=|javascript:|<style|\sstyle=`).FindString(string(page)); m != "" {
		t.Errorf("inline handler or style: %q", m)
	}
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(string(page)); m != "" {
		t.Errorf("external resource: %q", m)
	}
}

// TestRecentWebhooks: GET /webhook/recent lists the token's own records,
// newest first; without a DeliveryLog it answers 503.
func TestRecentWebhooks(t *testing.T) {
	h := newHarness(t)
	h.init("n1", "tok-1")
	h.init("n2", "tok-2")
	h.wantError(h.do("GET", "/webhook/recent", "", "token", "tok-1"), http.StatusServiceUnavailable, "webhooks are not delivered by this process")

	log := webhook.NewMemoryLog(0)
	api, err := New(Config{Store: h.store, Connector: h.conn, AdminToken: admin, Deliveries: log})
	if err != nil {
		t.Fatal(err)
	}
	h.api = api
	for _, id := range []string{"evt_1", "evt_2"} {
		d := shared.Delivery{Event: shared.Event{ID: id, Token: "tok-1", Type: "Message"}, Attempts: 1}
		log.Record(t.Context(), "tok-1", shared.NewDeliveryRecord(d, shared.DeliveryDelivered))
	}
	var got struct {
		Events []shared.DeliveryRecord
		Count  int
	}
	h.data(h.do("GET", "/webhook/recent", "", "token", "tok-1"), &got)
	if got.Count != 2 || got.Events[0].ID != "evt_2" || got.Events[0].Status != "delivered" {
		t.Fatalf("tok-1: %+v", got)
	}
	h.data(h.do("GET", "/webhook/recent", "", "token", "tok-2"), &got)
	if got.Count != 0 || got.Events == nil {
		t.Fatalf("tok-2: %+v", got)
	}
	h.wantError(h.do("GET", "/webhook/recent", ""), http.StatusUnauthorized, shared.MsgInvalidToken)
}
