package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared/redisbus"
)

// commandCalls returns INFO commandstats' calls by command.
func commandCalls(tb testing.TB, rdb *redis.Client) map[string]int64 {
	tb.Helper()
	raw, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(raw, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// BenchmarkFleetFailover links WAGO_BENCH_FLEET_SESSIONS sessions (default
// 3,000: 1,000 per connector) over 3 connectors sharing a key store
// (PostgreSQL when WAGO_TEST_POSTGRES_URL is set), on a Redis of its own,
// and measures:
//   - redis-cmds/session/min: the Redis commands of the idle fleet (INFO
//     commandstats over 60 s, the API idle) per session and minute;
//   - failover-s: from kill -9 of one connector until every one of its
//     sessions reads connected again, and after-expiry-s, the same from the
//     expiry of its leases (their PTTL read at the kill).
func BenchmarkFleetFailover(b *testing.B) {
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("WAGO_BENCH_FLEET_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		rs := startRedisServer(b)
		e := distEnv{lambdaEnv: newLambdaEnv(b)}
		e.redisURL = rs.url(0)
		e.rdb = openTestRedis(b, e.redisURL, true)
		f := newFleetOn(b, e)
		names := []string{"A", "B", "C"}
		for _, name := range names {
			f.start(name)
		}
		api := startWago(b, append(e.distProcEnv(), "WAGO_ADMIN_TOKEN="+lambdaAdminToken, "WAGO_LOG_LEVEL=warn"), "api")
		f.waitShares(redisbus.DefaultLeaseTTL, []int{5, 5, 6}, names...)
		start := time.Now()
		tokens, _ := linkFleet(b, api, f.emu, "bench-fleet", n)
		waitConnected(b, api, tokens, n, 5*time.Minute, "every session connected")
		b.Logf("%d sessions linked over 3 connectors in %.1f s (key store %s)", n, time.Since(start).Seconds(), keyStoreKind(f.keys))

		time.Sleep(5 * time.Second) // the linking's writes settle
		const idle = time.Minute
		c0 := commandCalls(b, e.rdb)
		time.Sleep(idle)
		c1 := commandCalls(b, e.rdb)
		var total int64
		type cmdCount struct {
			name string
			n    int64
		}
		var top []cmdCount
		for name, v := range c1 {
			if d := v - c0[name]; d > 0 && name != "info" {
				total += d
				top = append(top, cmdCount{name, d})
			}
		}
		slices.SortFunc(top, func(a, b cmdCount) int { return int(b.n - a.n) })
		perSession := float64(total) / float64(n) / idle.Minutes()
		b.Logf("idle fleet: %d Redis commands in %s (%.2f per session per minute); by command: %v", total, idle, perSession, top)

		b.ResetTimer()
		dead := f.tokensOf("B", tokens)
		var expiry time.Duration
		for shard, owner := range f.owners() {
			if owner == "B" {
				expiry = max(expiry, e.rdb.PTTL(context.Background(), fmt.Sprintf("wago:lease:{%d}", shard)).Val())
			}
		}
		f.procs["B"].cmd.Process.Kill()
		killed := time.Now()
		<-f.procs["B"].done
		delete(f.procs, "B")
		// Their statuses read connected until the leases are stale; the
		// survivors' reconnections show once they have dropped.
		waitConnected(b, api, dead, 0, expiry+time.Minute, "B's sessions to read not connected")
		waitConnected(b, api, dead, len(dead), expiry+2*time.Minute, "B's sessions connected again")
		failover := time.Since(killed)
		b.StopTimer()
		b.ReportMetric(perSession, "redis-cmds/session/min")
		b.ReportMetric(failover.Seconds(), "failover-s")
		b.ReportMetric((failover - expiry).Seconds(), "after-expiry-s")
		b.Logf("kill -9 of B: its %d sessions connected again %.1f s after the kill, %.1f s after its leases expired (%.1f s after the kill)",
			len(dead), failover.Seconds(), (failover - expiry).Seconds(), expiry.Seconds())
		for _, name := range []string{"A", "C"} {
			f.procs[name].stop()
		}
	}
}
