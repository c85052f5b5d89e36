package openapitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/functions/openapitest"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/webhook"
)

var load = sync.OnceValues(func() (*openapitest.Validator, error) { return openapitest.New(functions.OpenAPI()) })

// recorder is a testing.TB that keeps what is reported to it.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestChecksCatchDrift: answers and requests that disagree with the
// document fail the test that made them; agreeing ones pass.
func TestChecksCatchDrift(t *testing.T) {
	v, err := load()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		method, path string
		body         string
		headers      []string
		status       int
		answer       string
		wantFail     bool
	}{
		{"documented answer", "GET", "/health", "", nil, 200, `{"code":200,"data":{"status":"ok"},"success":true}`, false},
		{"undocumented field", "GET", "/health", "", nil, 200, `{"code":200,"data":{"status":"ok","uptime":3},"success":true}`, true},
		{"undocumented status", "GET", "/health", "", nil, 418, `{"code":418,"error":"teapot","success":false}`, true},
		{"not an envelope", "GET", "/session/status", "", []string{"token", "t"}, 401, `invalid token`, true},
		{"unknown route refused", "GET", "/nope", "", nil, 404, `{"code":404,"error":"not found","success":false}`, false},
		{"unknown route answered", "GET", "/nope", "", nil, 200, `{"code":200,"data":{},"success":true}`, true},
		{"unknown route, no envelope", "GET", "/nope", "", nil, 404, `404 page not found`, true},
		{"refused request answered 200", "POST", "/send/text", `{"Body":"no phone"}`, []string{"token", "t"}, 200,
			`{"code":200,"data":{"details":"Sent","id":"A","timestamp":1,"Details":"Sent","Id":"A","Timestamp":1},"success":true}`, true},
		{"refused request refused", "POST", "/send/text", `{"Body":"no phone"}`, []string{"token", "t"}, 400,
			`{"code":400,"error":"missing Phone","success":false}`, false},
		{"any letter case", "POST", "/send/text", `{"phone":"5511999999999","body":"hi"}`, []string{"token", "t"}, 200,
			`{"code":200,"data":{"details":"Sent","id":"A","timestamp":1,"Details":"Sent","Id":"A","Timestamp":1},"success":true}`, false},
		{"no token answered 200", "GET", "/session/status", "", nil, 200,
			`{"code":200,"data":{},"success":true}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(c.answer, "{") {
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
				}
				w.WriteHeader(c.status)
				w.Write([]byte(c.answer))
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			client := &http.Client{Transport: &openapitest.Transport{V: v, T: rec}}
			req, _ := http.NewRequestWithContext(context.Background(), c.method, srv.URL+c.path, strings.NewReader(c.body))
			for i := 0; i+1 < len(c.headers); i += 2 {
				req.Header.Set(c.headers[i], c.headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if failed := len(rec.errors) > 0; failed != c.wantFail {
				t.Errorf("check failed: %v, want %v (%v)", failed, c.wantFail, rec.errors)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	for in, want := range map[string]string{"/admin/users/*id": "/admin/users/{id}", "/a/:b/c": "/a/{b}/c", "/health": "/health"} {
		if got := openapitest.Template(in); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWebhookPayloadsAgree: the payloads the delivery worker builds, in both
// formats, agree with the document's webhook; a body it does not describe
// fails.
func TestWebhookPayloadsAgree(t *testing.T) {
	v, err := load()
	if err != nil {
		t.Fatal(err)
	}
	d := shared.Delivery{Event: shared.Event{
		ID: "evt_1", Token: "tok", Seq: 7, Class: "ReadReceipt", Type: "ReadReceipt", State: "Read",
		Data: json.RawMessage(`{"MessageIDs":["3EB0"]}`), Time: time.Unix(1764500000, 0),
	}}
	post := func(body []byte, contentType string, headers ...string) *http.Request {
		req := httptest.NewRequest("POST", "http://receiver/hook", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
	headers := []string{"webhook-id", "evt_1", "webhook-timestamp", "1764500000", "Wago-Sequence", "7"}
	for _, format := range []string{shared.WebhookFormatForm, shared.WebhookFormatJSON} {
		body, ct, err := webhook.Payload(format, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.CheckWebhook(post(body, ct, headers...), body); err != nil {
			t.Errorf("%s: %v", format, err)
		}
		if err := v.CheckWebhook(post(body, ct, headers[:4]...), body); err == nil {
			t.Errorf("%s: a delivery without Wago-Sequence passed", format)
		}
	}
	bad := []byte(`{"type":"Message","event":{},"token":"tok","id":"evt_1","seq":7}`) // no timestamp
	if err := v.CheckWebhook(post(bad, "application/json", headers...), bad); err == nil {
		t.Error("a JSON delivery without timestamp passed")
	}
}
