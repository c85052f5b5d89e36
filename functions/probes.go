package functions

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
)

// The operator's routes: GET/HEAD /health (liveness: the process answers),
// GET /ready (readiness: every dependency answers) and GET /metrics
// (Prometheus). The API serves them beside its routes, /metrics behind the
// admin token; Probes serves them alone, /metrics open, on an address of
// their own (WAGO_METRICS_LISTEN), for the connector role or a scraper.

// Check is one dependency that readiness needs.
type Check struct {
	// Name names the dependency in /ready's answer (store, redis).
	Name string
	// Probe answers nil when the dependency can be used. Its error is
	// logged, never answered.
	Probe func(ctx context.Context) error
}

// Readiness configures GET /ready.
type Readiness struct {
	// Checks are run in parallel at every request.
	Checks []Check
	// View, when set, adds the process's own view to a ready answer
	// (sessions connected and total, shards owned).
	View func() map[string]any
}

// checkTimeout bounds each readiness check.
const checkTimeout = 2 * time.Second

// ready answers 200 with each check's state and the view, or 503 naming
// the dependencies that are down.
func (rd Readiness) serve(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		defer cancel()
		errs := make([]error, len(rd.Checks))
		var wg sync.WaitGroup
		for i, c := range rd.Checks {
			wg.Go(func() { errs[i] = c.Probe(ctx) })
		}
		wg.Wait()
		checks := map[string]string{}
		var down []string
		for i, c := range rd.Checks {
			checks[c.Name] = "up"
			if errs[i] != nil {
				checks[c.Name] = "down"
				down = append(down, c.Name)
				log.Warn("not ready: a dependency is down", "dependency", c.Name, "err", errs[i], "request_id", requestID(w))
			}
		}
		if len(down) > 0 {
			sort.Strings(down)
			writeEnvelope(w, envelope{Code: http.StatusServiceUnavailable, Error: "not ready: " + strings.Join(down, ", ") + " unreachable"})
			return
		}
		data := map[string]any{"status": "ready", "checks": checks}
		if rd.View != nil {
			for k, v := range rd.View() {
				data[k] = v
			}
		}
		OK(w, data)
	}
}

func health(w http.ResponseWriter, _ *http.Request) {
	OK(w, map[string]string{"status": "ok"})
}

// ProbesConfig configures Probes.
type ProbesConfig struct {
	Log       *slog.Logger
	Readiness Readiness
	// Metrics serves GET /metrics, open to whoever reaches the address;
	// nil: no /metrics.
	Metrics http.Handler
	// Registerer receives the HTTP metrics of these routes; nil: none.
	Registerer prometheus.Registerer
}

// Probes returns the handler of /health, /ready and /metrics alone, with
// the API's envelope, request log and request ids.
func Probes(cfg ProbesConfig) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	o := newObserver(cfg.Log, newHTTPMetrics(cfg.Registerer))
	r := newRouter(cfg.Log)
	addProbes(r, o, cfg.Log, cfg.Readiness)
	if cfg.Metrics != nil {
		r.Handler(http.MethodGet, "/metrics", o.handle(http.MethodGet, "/metrics", cfg.Metrics))
	}
	o.next = r
	return o
}

// addProbes registers /health and /ready on r.
func addProbes(r *httprouter.Router, o *observer, log *slog.Logger, rd Readiness) {
	// Health checkers use GET or HEAD (net/http drops the body of HEAD).
	r.Handler(http.MethodGet, "/health", o.handle(http.MethodGet, "/health", http.HandlerFunc(health)))
	r.Handler(http.MethodHead, "/health", o.handle(http.MethodHead, "/health", http.HandlerFunc(health)))
	r.Handler(http.MethodGet, "/ready", o.handle(http.MethodGet, "/ready", rd.serve(log)))
}
