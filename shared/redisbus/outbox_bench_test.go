package redisbus

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

// BenchmarkDistributedDelivery is shared/webhook's BenchmarkEmbeddedDelivery
// on the Redis outbox (16 tokens over 16 shards, all owned): events/s
// delivered to a local receiver and p99-ms from the append to the POST.
func BenchmarkDistributedDelivery(b *testing.B) {
	const tokens = 16
	rdb := MustOpenRedis(b)
	prefix := testPrefix(b, rdb)
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
		if err := rows.Create(context.Background(), &shared.Session{Name: fmt.Sprint(i), Token: fmt.Sprint("tok", i), Os: "x", Webhook: srv.URL}); err != nil {
			b.Fatal(err)
		}
	}
	o := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Shards: 16})
	ctx, cancel := context.WithCancel(context.Background())
	w := webhook.New(webhook.Config{Outbox: o, Rows: rows, Concurrency: 64})
	stopped := make(chan struct{})
	go func() { defer close(stopped); w.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	data := json.RawMessage(`{"Info":{"ID":"3EB0"},"Message":{"conversation":"benchmark"}}`)
	b.ResetTimer()
	start := time.Now()
	var appenders sync.WaitGroup
	for t := range tokens {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			for i := t; i < b.N; i += tokens {
				now := time.Now()
				ev := &shared.Event{ID: fmt.Sprintf("evt_%d_%d", now.UnixNano(), i), Token: fmt.Sprint("tok", t), Type: "Message", Data: data, Time: now}
				if err := o.Append(ctx, ev); err != nil {
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
