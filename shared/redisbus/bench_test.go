package redisbus

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// BenchmarkRoundTrip measures Client -> Redis -> Server (a no-op connector)
// -> reply -> Client, one command at a time, and reports the latency
// percentiles.
func BenchmarkRoundTrip(b *testing.B) {
	rdb := MustOpenRedis(b)
	prefix := testPrefix(b, rdb)
	srv := NewServer(rdb, &connectortest.Fake{}, testServerConfig(prefix))
	runServer(b, srv)
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()
	eventually(b, 3*time.Second, "server owns every shard", func() bool { return len(srv.Owned()) == 4 })
	for range 100 { // warm up the connection pools
		if _, err := shared.Call(ctx, c, shared.OpConnect, "bench", shared.ConnectOptions{}); err != nil {
			b.Fatal(err)
		}
	}

	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if _, err := shared.Call(ctx, c, shared.OpConnect, "bench", shared.ConnectOptions{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
