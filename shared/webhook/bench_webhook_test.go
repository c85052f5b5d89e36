package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/webhook"
)

// BenchmarkEmbeddedDelivery appends b.N events of 16 tokens (one goroutine
// each) to a SQLite outbox as fast as it takes them, and waits until a
// local receiver has them all: events/s is the delivered rate, p99-ms the
// latency from the append to the POST (under this overload, mostly queueing).
func BenchmarkEmbeddedDelivery(b *testing.B) { benchEmbedded(b, 0) }

// BenchmarkEmbeddedDeliveryAt1000 appends at 1,000 events/s (open loop):
// p99-ms is the latency from the append to the POST at that rate.
func BenchmarkEmbeddedDeliveryAt1000(b *testing.B) { benchEmbedded(b, 1000) }

// benchEmbedded delivers b.N events appended as fast as possible (rate 0)
// or at rate events/s.
func benchEmbedded(b *testing.B, rate int) {
	const tokens = 16
	var (
		mu   sync.Mutex
		lat  []time.Duration
		done = make(chan struct{})
		n    int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		var sent int64
		fmt.Sscanf(id, "evt_%d", &sent)
		mu.Lock()
		lat = append(lat, time.Since(time.Unix(0, sent)))
		n++
		if n == b.N {
			close(done)
		}
		mu.Unlock()
	}))
	defer srv.Close()
	dir := b.TempDir()
	outbox, err := sqlite.OpenOutbox(context.Background(), filepath.Join(dir, "outbox.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer outbox.Close()
	rows, err := sqlite.Open(context.Background(), filepath.Join(dir, "wago.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for i := range tokens {
		if err := rows.Create(context.Background(), &shared.Session{Name: fmt.Sprint(i), Token: fmt.Sprint("tok", i), Os: "x", Webhook: srv.URL, WebhookSecret: secret}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := webhook.New(webhook.Config{Outbox: outbox, Rows: rows, Concurrency: 64})
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	data := json.RawMessage(`{"Info":{"ID":"3EB0"},"Message":{"conversation":"benchmark"}}`)
	b.ResetTimer()
	start := time.Now()
	if rate > 0 {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range b.N {
			<-tick.C
			now := time.Now()
			ev := &shared.Event{ID: fmt.Sprintf("evt_%d_%d", now.UnixNano(), i), Token: fmt.Sprint("tok", i%tokens), Type: "Message", Class: shared.EventMessage, Data: data, Time: now}
			if err := outbox.Append(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
	}
	// One appender per token, as sessions' event handlers run side by side.
	var appenders sync.WaitGroup
	for t := range tokens {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			for i := t; rate == 0 && i < b.N; i += tokens {
				now := time.Now()
				ev := &shared.Event{ID: fmt.Sprintf("evt_%d_%d", now.UnixNano(), i), Token: fmt.Sprint("tok", t), Type: "Message", Class: shared.EventMessage, Data: data, Time: now}
				if err := outbox.Append(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	appenders.Wait()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d delivered", n, b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	mu.Unlock()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
