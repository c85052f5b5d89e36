package functions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Every request is observed once, by observe: a request id (taken from the
// request's X-Request-Id when it is sane, else generated), returned in
// X-Request-Id; the status and bytes of the answer; one log line (method,
// route, status, duration, bytes, request id); and the HTTP metrics of the
// route (metrics.go). The route is the httprouter pattern that matched,
// never the raw path, which may hold a name or a token.

// requestIDHeader carries the request id, in both directions.
const requestIDHeader = "X-Request-Id"

// maxRequestID is the longest request id taken from a client.
const maxRequestID = 128

// saneRequestID reports whether a client's request id can be logged and
// returned as is: 1 to 128 letters, digits and . _ : -.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// idPrefix makes the generated request ids of this process unique across
// restarts; idCounter numbers them.
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// newRequestID returns the next generated request id: the process prefix
// and a counter in base 36.
func newRequestID() string {
	var buf [32]byte
	b := append(buf[:0], idPrefix...)
	b = strconv.AppendUint(b, idCounter.Add(1), 36)
	return string(b)
}

// recorder is the ResponseWriter a handler sees: it keeps the answer's
// status and size, the request id, and the route that matched (set by the
// route's wrapper). Recorders are pooled.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	id     string
	route  *route
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// requestID returns the request id of the request w answers ("" outside
// observe).
func requestID(w http.ResponseWriter) string {
	if rec, ok := w.(*recorder); ok {
		return rec.id
	}
	return ""
}

// routeOf returns the route of the request w answers.
func routeOf(w http.ResponseWriter) string {
	if rec, ok := w.(*recorder); ok && rec.route != nil {
		return rec.route.pattern
	}
	return ""
}

// observer observes the requests of one handler tree: their routes'
// metrics and the request log.
type observer struct {
	log     *slog.Logger
	metrics *httpMetrics // nil: no metrics
	// unmatched is the route of requests no route took (404, 405, OPTIONS).
	unmatched *route
	next      http.Handler
	// routes lists the routes handle wrapped, in order.
	routes []Route
}

func newObserver(log *slog.Logger, m *httpMetrics) *observer {
	return &observer{log: log, metrics: m, unmatched: m.route("", "unmatched")}
}

// handle wraps h, the handler of method and pattern, so that its requests
// are counted under that route.
func (o *observer) handle(method, pattern string, h http.Handler) http.Handler {
	rt := o.metrics.route(method, pattern)
	o.routes = append(o.routes, Route{method, pattern})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = rt
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP runs the request through next and observes it.
func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := recorders.Get().(*recorder)
	*rec = recorder{ResponseWriter: w, route: o.unmatched}
	if ids := r.Header[requestIDHeader]; len(ids) == 1 && saneRequestID(ids[0]) {
		rec.id = ids[0]
		w.Header()[requestIDHeader] = ids // the request's own slice: no copy
	} else {
		rec.id = newRequestID()
		w.Header()[requestIDHeader] = []string{rec.id}
	}
	defer func() {
		took := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		rec.route.observe(status, took)
		if o.log.Enabled(r.Context(), slog.LevelInfo) {
			o.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("route", rec.route.pattern),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(took)/float64(time.Millisecond)),
				slog.Int64("bytes", rec.bytes),
				slog.String("request_id", rec.id))
		}
		*rec = recorder{}
		recorders.Put(rec)
	}()
	o.next.ServeHTTP(rec, r)
}
