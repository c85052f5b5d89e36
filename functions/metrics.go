package functions

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the API's metrics: requests by route and status, and
// their latency by route. Each route holds its label children, looked up
// once (at the route's first request), so that observing a request costs no
// label lookup and no allocation (but for a status outside knownStatuses).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// knownStatuses are the statuses the API answers; each route holds their
// counters. A request answered otherwise is counted through the vector.
var knownStatuses = [...]int{200, 400, 401, 404, 405, 409, 413, 431, 500, 503, 504}

// statusSlot maps a status to its index in knownStatuses, or -1.
func statusSlot(status int) int {
	for i, s := range knownStatuses {
		if s == status {
			return i
		}
	}
	return -1
}

// newHTTPMetrics registers the API's metrics on reg; nil reg: none (every
// route's observe is then a no-op).
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	if reg == nil {
		return nil
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wago_http_requests_total",
			Help: "HTTP requests answered, by method, route (the router's pattern; unmatched for 404 and 405) and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wago_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// route is one route's label children, created at its first request (a
// route never asked shows no series) and kept.
type route struct {
	method, pattern string
	m               *httpMetrics
	duration        atomic.Pointer[prometheus.Observer]
	byStatus        [len(knownStatuses)]atomic.Pointer[prometheus.Counter]
}

// route returns the label children of method and pattern (method "" for
// the unmatched route, counted under the method "*").
func (m *httpMetrics) route(method, pattern string) *route {
	if method == "" {
		method = "*"
	}
	return &route{method: method, pattern: pattern, m: m}
}

// observe counts one request answered with status after took.
func (rt *route) observe(status int, took time.Duration) {
	if rt.m == nil {
		return
	}
	d := rt.duration.Load()
	if d == nil {
		o := rt.m.duration.WithLabelValues(rt.method, rt.pattern)
		d = &o
		rt.duration.Store(d)
	}
	(*d).Observe(took.Seconds())
	i := statusSlot(status)
	if i < 0 {
		rt.m.requests.WithLabelValues(rt.method, rt.pattern, strconv.Itoa(status)).Inc()
		return
	}
	c := rt.byStatus[i].Load()
	if c == nil {
		n := rt.m.requests.WithLabelValues(rt.method, rt.pattern, strconv.Itoa(status))
		c = &n
		rt.byStatus[i].Store(c)
	}
	(*c).Inc()
}
