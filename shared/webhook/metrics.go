package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/shared"
)

// metrics are a Worker's counters; they count whether or not registered.
type metrics struct {
	delivered prometheus.Counter
	failed    prometheus.Counter
	retried   prometheus.Counter
	buried    prometheus.Counter
}

// newMetrics registers the worker's metrics on reg (nil: none), with the
// queue gauges read from outbox at each scrape when it can count.
func newMetrics(reg prometheus.Registerer, outbox shared.Outbox, log func(error)) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		delivered: counter("wago_webhook_deliveries_total", "Webhook events a receiver accepted (2xx)."),
		failed:    counter("wago_webhook_failures_total", "Webhook attempts that failed: an error status, a timeout, a network error."),
		retried:   counter("wago_webhook_retries_total", "Webhook retries scheduled after a failed attempt."),
		buried:    counter("wago_webhook_dead_letters_total", "Webhook events that failed their last attempt and became dead letters."),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.failed, m.retried, m.buried)
		if q, ok := outbox.(shared.QueueStater); ok {
			reg.MustRegister(queueCollector{q, log})
		}
	}
	return m
}

var (
	queueDesc = prometheus.NewDesc("wago_webhook_queue_events",
		"Webhook events in the outbox, by queue: new (first attempt due or running), retrying, dead (dead letters).", []string{"queue"}, nil)
	oldestDesc = prometheus.NewDesc("wago_webhook_queue_oldest_age_seconds",
		"Age of the oldest webhook event waiting for its first attempt (embedded: for any attempt); 0 when none waits.", nil, nil)
)

// queueTimeout bounds counting the outbox at a scrape.
const queueTimeout = 2 * time.Second

// queueCollector reads the outbox's queue at each scrape.
type queueCollector struct {
	q   shared.QueueStater
	log func(error)
}

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc; ch <- oldestDesc }

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	st, err := c.q.QueueStats(ctx)
	if err != nil {
		c.log(err) // the gauges are left out of this scrape
		return
	}
	for queue, n := range map[string]int{"new": st.New, "retrying": st.Retrying, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), queue)
	}
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(time.Since(st.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
