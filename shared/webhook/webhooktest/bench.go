// Package webhooktest has what the webhook benchmarks of every outbox
// share.
package webhooktest

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

// BenchDelivery appends b.N events of 16 tokens to outbox, as fast as it
// takes them (one goroutine per token, as sessions' event handlers run side
// by side) or, with rate > 0, at rate events/s (open loop), and waits until
// a local receiver has them all. It reports events/s, the delivered rate,
// and p99-ms, the latency from the append to the POST. The tokens' rows
// carry secret (empty: unsigned).
func BenchDelivery(b *testing.B, outbox shared.Outbox, rate int, secret string) {
	const tokens = 16
	var (
		mu   sync.Mutex
		lat  []time.Duration
		n    int
		done = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sent int64
		fmt.Sscanf(r.Header.Get("webhook-id"), "evt_%d", &sent)
		mu.Lock()
		lat = append(lat, time.Since(time.Unix(0, sent)))
		if n++; n == b.N {
			close(done)
		}
		mu.Unlock()
	}))
	defer srv.Close()
	rows, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "wago.db"))
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
	event := func(token string, i int) *shared.Event {
		now := time.Now()
		return &shared.Event{ID: fmt.Sprintf("evt_%d_%d", now.UnixNano(), i), Token: token, Type: "Message", Class: shared.EventMessage, Data: data, Time: now}
	}
	b.ResetTimer()
	start := time.Now()
	if rate > 0 {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range b.N {
			<-tick.C
			if err := outbox.Append(ctx, event(fmt.Sprint("tok", i%tokens), i)); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
	}
	var appenders sync.WaitGroup
	for t := range tokens {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			for i := t; rate == 0 && i < b.N; i += tokens {
				if err := outbox.Append(ctx, event(fmt.Sprint("tok", t), i)); err != nil {
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
