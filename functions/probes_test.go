package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wago-gw/wago/shared/connectortest"
	"github.com/wago-gw/wago/shared/sqlite"
)

// opsAPI is an API with readiness, metrics and a JSON log in buf.
type opsAPI struct {
	*API
	t   *testing.T
	reg *prometheus.Registry
	log *bytes.Buffer
}

func newOpsAPI(t *testing.T, checks ...Check) opsAPI {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := prometheus.NewRegistry()
	buf := &bytes.Buffer{}
	api, err := New(Config{
		Store: store, Connector: &connectortest.Fake{}, AdminToken: admin,
		Log:       slog.New(slog.NewJSONHandler(buf, nil)),
		Readiness: Readiness{Checks: checks, View: func() map[string]any { return map[string]any{"shards": []int{1, 3}} }},
		Metrics:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return opsAPI{api, t, reg, buf}
}

func (o opsAPI) get(path string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, req)
	if err := validator(o.t).Check(req, nil, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		o.t.Error(err)
	}
	return rec
}

// TestReady: /ready answers each check and the view when every dependency
// is up; when one is down, 503 naming it and nothing of its error (an
// address, a driver's message), which goes to the log.
func TestReady(t *testing.T) {
	redisDown := errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
	up := func(context.Context) error { return nil }
	var redisErr error
	o := newOpsAPI(t, Check{Name: "store", Probe: up}, Check{Name: "redis", Probe: func(context.Context) error { return redisErr }})

	rec := o.get("/ready")
	var a answer
	json.Unmarshal(rec.Body.Bytes(), &a)
	if rec.Code != 200 || !a.Success {
		t.Fatalf("ready: %d %s", rec.Code, rec.Body)
	}
	var data struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
		Shards []int             `json:"shards"`
	}
	json.Unmarshal(a.Data, &data)
	if data.Status != "ready" || data.Checks["store"] != "up" || data.Checks["redis"] != "up" || len(data.Shards) != 2 {
		t.Fatalf("ready data: %s", a.Data)
	}

	redisErr = redisDown
	rec = o.get("/ready")
	a = answer{}
	json.Unmarshal(rec.Body.Bytes(), &a)
	if rec.Code != 503 || a.Code != 503 || a.Success || a.Error != "not ready: redis unreachable" {
		t.Fatalf("not ready: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "10.1.2.3") {
		t.Fatalf("/ready leaked the error: %s", rec.Body)
	}
	if !strings.Contains(o.log.String(), "10.1.2.3") {
		t.Fatalf("the cause is not in the log:\n%s", o.log)
	}
}

// TestMetricsNeedAdminToken: on the API, /metrics answers only to the
// admin token; it counts requests by route pattern, never by raw path.
func TestMetricsNeedAdminToken(t *testing.T) {
	o := newOpsAPI(t)
	o.get("/session/status", "token", "no-such-token")
	o.get("/admin/users/some-name-in-the-path")
	for _, h := range [][]string{nil, {"admintoken", "wrong"}, {"Authorization", "Bearer " + admin}} {
		if rec := o.get("/metrics", h...); rec.Code != 401 || !strings.Contains(rec.Body.String(), `"success":false`) {
			t.Fatalf("/metrics with %v: %d %s", h, rec.Code, rec.Body)
		}
	}
	rec := o.get("/metrics", "admintoken", admin)
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`wago_http_requests_total{method="GET",route="/session/status",status="401"} 1`,
		`wago_http_requests_total{method="GET",route="/metrics",status="401"} 3`,
		`wago_http_requests_total{method="*",route="unmatched",status="405"} 1`,
		`wago_http_request_duration_seconds_count{method="GET",route="/session/status"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "some-name-in-the-path") || strings.Contains(body, "no-such-token") {
		t.Fatalf("/metrics shows a raw path or token:\n%s", body)
	}
}

// TestNoMetricsRoute: without a metrics handler, /metrics does not exist.
func TestNoMetricsRoute(t *testing.T) {
	h := newHarness(t)
	h.wantError(h.do("GET", "/metrics", "", "admintoken", admin), 404, "not found")
}

// TestRequestLog: one log line per request with method, route, status,
// duration, bytes and the request id, which the answer carries too: the
// client's when sane, else a generated one. The token is not in the line.
func TestRequestLog(t *testing.T) {
	o := newOpsAPI(t)
	cases := []struct{ sent, want string }{
		{"abc-123_x.y:z", "abc-123_x.y:z"},
		{"", ""},                       // generated
		{"has space", ""},              // replaced
		{strings.Repeat("a", 129), ""}, // too long: replaced
		{"line\nbreak", ""},            // replaced
	}
	for _, c := range cases {
		o.log.Reset()
		req := httptest.NewRequest(http.MethodGet, "/session/status", nil)
		req.Header.Set("token", "secret-session-token")
		if c.sent != "" {
			req.Header[requestIDHeader] = []string{c.sent}
		}
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, req)
		id := rec.Header().Get(requestIDHeader)
		if c.want != "" && id != c.want || c.want == "" && (id == "" || id == c.sent || !saneRequestID(id)) {
			t.Fatalf("sent %q: X-Request-Id %q", c.sent, id)
		}
		var line struct {
			Msg        string  `json:"msg"`
			Method     string  `json:"method"`
			Route      string  `json:"route"`
			Status     int     `json:"status"`
			DurationMS float64 `json:"duration_ms"`
			Bytes      int     `json:"bytes"`
			RequestID  string  `json:"request_id"`
		}
		lines := strings.Split(strings.TrimSpace(o.log.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("%d log lines:\n%s", len(lines), o.log)
		}
		if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
			t.Fatal(err)
		}
		if line.Msg != "request" || line.Method != "GET" || line.Route != "/session/status" || line.Status != 401 ||
			line.DurationMS <= 0 || line.Bytes != rec.Body.Len() || line.RequestID != id {
			t.Fatalf("log line %s (answer %d bytes, id %q)", lines[0], rec.Body.Len(), id)
		}
		if strings.Contains(o.log.String(), "secret-session-token") {
			t.Fatal("the token is in the log")
		}
	}
}

// TestProbes: the operator's listener serves /health, /ready and an open
// /metrics, and nothing of the API.
func TestProbes(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := Probes(ProbesConfig{Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Registerer: reg})
	for path, want := range map[string]int{"/health": 200, "/ready": 200, "/metrics": 200, "/session/status": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `wago_http_requests_total{method="GET",route="/health",status="200"} 1`) {
		t.Fatalf("/metrics:\n%s", rec.Body)
	}
}

// BenchmarkStatusObserved is BenchmarkStatus with what production adds:
// HTTP metrics on a registry and the request log (JSON, to io.Discard).
func BenchmarkStatusObserved(b *testing.B) {
	benchStatus(b, Config{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
}
