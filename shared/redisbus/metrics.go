package redisbus

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are a Client's: each op's round trip through Redis (queue,
// connector, reply) and the commands no connector answered in time.
type clientMetrics struct {
	duration *prometheus.HistogramVec
	timeouts *prometheus.CounterVec
	// ops caches each op's label children.
	ops sync.Map // op name -> *opMetrics
}

type opMetrics struct {
	duration prometheus.Observer
	timeouts prometheus.Counter
}

// newClientMetrics registers a Client's metrics on reg; nil reg: none.
func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	if reg == nil {
		return nil
	}
	m := &clientMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wago_command_duration_seconds",
			Help:    "Round trip of a connector command through Redis (queued, run by the owning connector, answered), by op.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wago_command_timeouts_total",
			Help: "Connector commands that no connector answered in time, by op.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.duration, m.timeouts)
	return m
}

// registerCacheMetrics registers the metrics of a Client's status cache on
// reg; nil reg: none.
func registerCacheMetrics(reg prometheus.Registerer, sc *statusCache) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wago_status_cache_up",
			Help: "1 while the status cache's subscription is up and answers statuses, else 0.",
		}, func() float64 {
			if sc.answers() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "wago_status_cache_hits_total",
			Help: "Status reads the status cache answered without Redis.",
		}, func() float64 { return float64(sc.hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "wago_status_cache_misses_total",
			Help: "Status reads that went to Redis.",
		}, func() float64 { return float64(sc.misses.Load()) }),
	)
}

func (m *clientMetrics) op(name string) *opMetrics {
	if v, ok := m.ops.Load(name); ok {
		return v.(*opMetrics)
	}
	v, _ := m.ops.LoadOrStore(name, &opMetrics{
		duration: m.duration.WithLabelValues(name),
		timeouts: m.timeouts.WithLabelValues(name),
	})
	return v.(*opMetrics)
}

// observe records one command of op that started at start: its round trip
// when it was answered, a timeout when it was not.
func (m *clientMetrics) observe(op string, start time.Time, answered, timedOut bool) {
	if m == nil {
		return
	}
	switch o := m.op(op); {
	case answered:
		o.duration.Observe(time.Since(start).Seconds())
	case timedOut:
		o.timeouts.Inc()
	}
}

// serverMetrics are a Server's shard leases: held now, acquired, lost.
type serverMetrics struct {
	acquired prometheus.Counter
	lost     prometheus.Counter
}

// newServerMetrics registers s's metrics on reg; nil reg: they count
// unregistered.
func newServerMetrics(reg prometheus.Registerer, s *Server) *serverMetrics {
	m := &serverMetrics{
		acquired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wago_shard_leases_acquired_total", Help: "Shard leases this connector acquired.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wago_shard_leases_lost_total", Help: "Shard leases this connector lost (not renewed in time) rather than released.",
		}),
	}
	if reg != nil {
		held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wago_shard_leases_held", Help: "Shard leases this connector holds now.",
		}, func() float64 { return float64(len(s.Owned())) })
		reg.MustRegister(m.acquired, m.lost, held)
	}
	return m
}
