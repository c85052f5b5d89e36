package redisbus

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared/connectortest"
)

func TestFairShare(t *testing.T) {
	members := []string{"a", "b", "c"}
	var got []int
	for _, id := range members {
		got = append(got, fairShare(16, members, id))
	}
	if !slices.Equal(got, []int{6, 5, 5}) {
		t.Errorf("16 shards over 3: %v, want [6 5 5]", got)
	}
	if n := fairShare(16, []string{"a", "c"}, "b"); n != 5 {
		t.Errorf("a member missing from the list: %d, want the share of rank 1 of 3 (5)", n)
	}
	if n := fairShare(4, []string{"a", "b", "c", "d", "e"}, "e"); n != 0 {
		t.Errorf("the fifth of 5 members for 4 shards: %d, want 0", n)
	}
}

// fleetConfig is a 16-shard Server config whose lease period is long
// enough for a loaded machine to run several balance intervals in it.
func fleetConfig(prefix, id string, ev *shardEvents) ServerConfig {
	cfg := testServerConfig(prefix)
	cfg.Shards = 16
	cfg.LeaseTTL = 3 * time.Second
	cfg.RedisTimeout = 500 * time.Millisecond
	cfg.ConsumerID = id
	ev.hooks(id, &cfg)
	return cfg
}

// shares reports whether servers own exactly want shards each (and no
// shard is being released).
func shares(want []int, servers ...*Server) bool {
	counts, _ := owned(servers...)
	return slices.Equal(counts, want)
}

// TestLeases_FleetSpreadsFast: three Servers started together converge to
// a fair share (6/5/5 of 16) within one lease period; a fourth that joins
// gets its share (4 each) within one lease period, from shards the others
// released (not lost); when one stops heartbeating and renewing (a killed
// process), the survivors take its shards as soon as its leases expire and
// own 6/5/5 again.
func TestLeases_FleetSpreadsFast(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ev := &shardEvents{}
	newServer := func(id string) *Server {
		return NewServer(rdb, &connectortest.Fake{}, fleetConfig(prefix, id, ev))
	}
	a, b, c := newServer("A"), newServer("B"), newServer("C")
	ttl := a.cfg.LeaseTTL

	start := time.Now()
	for _, s := range []*Server{a, b, c} {
		runServer(t, s)
	}
	eventually(t, ttl, "A, B and C own 6/5/5", func() bool { return shares([]int{6, 5, 5}, a, b, c) })
	t.Logf("3 servers started together own 6/5/5 after %v (lease TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
	checkOwners(t, rdb, k, a, b, c)

	d := newServer("D")
	joined := time.Now()
	runServer(t, d)
	eventually(t, ttl, "A, B, C and D own 4 each", func() bool { return shares([]int{4, 4, 4, 4}, a, b, c, d) })
	t.Logf("a fourth server owns its share %v after it started", time.Since(joined).Round(time.Millisecond))
	checkOwners(t, rdb, k, a, b, c, d)
	// D's shards were released by their owners first: handed over, not
	// taken from a lost lease.
	for _, shard := range d.Owned() {
		eventually(t, 3*time.Second, "D's OnAcquire", func() bool { return ev.index(fmt.Sprintf("D acquire %d", shard)) >= 0 })
		acq := ev.index(fmt.Sprintf("D acquire %d", shard))
		released := false
		for _, from := range []string{"A", "B", "C"} {
			if r := ev.index(fmt.Sprintf("%s release %d", from, shard)); r >= 0 && r < acq {
				released = true
			}
		}
		if !released {
			t.Errorf("events %v: D acquired shard %d without a release before it", ev, shard)
		}
	}

	// B dies: no heartbeat, no renewal.
	dead := b.Owned()
	killed := time.Now()
	b.frozen.Store(true)
	bound := ttl + ttl/5 // its leases expire, then one balance interval
	eventually(t, bound, "A, C and D own 6/5/5 without B", func() bool {
		counts, sum := owned(a, c, d)
		slices.Sort(counts)
		return sum == 16 && slices.Equal(counts, []int{5, 5, 6})
	})
	t.Logf("the survivors own every shard %v after B stopped (lease TTL %v)", time.Since(killed).Round(time.Millisecond), ttl)
	checkOwners(t, rdb, k, a, c, d)
	for _, shard := range dead {
		v := rdb.Get(context.Background(), k.lease(shard)).Val()
		if v == "" || v[:2] == "B:" {
			t.Errorf("lease of B's shard %d = %q after the takeover", shard, v)
		}
	}
}
