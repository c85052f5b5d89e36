package redisbus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// countingFake counts Connect calls and answers a fixed status.
func countingFake(n *atomic.Int64) *fakeConnector {
	return &fakeConnector{ConnectFn: func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		n.Add(1)
		return shared.ConnectResult{Status: shared.Status{State: shared.StateQR}}, nil
	}}
}

// xadd queues cmd by hand, as a Client would.
func xadd(t *testing.T, rdb *redis.Client, k keys, shard int, cmd command) {
	t.Helper()
	values, err := cmd.values()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: k.stream(shard), Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestServer_ReclaimsCrashed: a command read by a consumer that died before
// acking is reclaimed by a new Server and run exactly once.
func TestServer_ReclaimsCrashed(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ccfg := testClientConfig(prefix)
	ccfg.ConnectTimeout = 5 * time.Second
	c := NewClient(rdb, ccfg)
	ctx := context.Background()
	token := "crash-token"
	stream := k.stream(ShardOf(token, 4))

	type answer struct {
		res shared.ConnectResult
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := c.Connect(ctx, token, shared.ConnectOptions{})
		answered <- answer{res, err}
	}()
	eventually(t, 2*time.Second, "command queued", func() bool { return rdb.XLen(ctx, stream).Val() == 1 })
	if err := rdb.XGroupCreateMkStream(ctx, stream, consumerGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The "crashed" consumer reads the command and never acks it.
	read, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: consumerGroup, Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(read) != 1 || len(read[0].Messages) != 1 {
		t.Fatalf("crashed consumer read %v, %v", read, err)
	}

	var runs atomic.Int64
	cfg := testServerConfig(prefix)
	cfg.ClaimMinIdle = 300 * time.Millisecond
	cfg.ClaimInterval = 100 * time.Millisecond
	runServer(t, NewServer(rdb, countingFake(&runs), cfg))

	select {
	case a := <-answered:
		if a.err != nil || a.res.Status.State != shared.StateQR {
			t.Fatalf("Connect = %+v, %v", a.res, a.err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("no answer")
	}
	time.Sleep(700 * time.Millisecond) // more claim rounds
	if n := runs.Load(); n != 1 {
		t.Errorf("command ran %d times, want 1", n)
	}
	pending, err := rdb.XPending(ctx, stream, consumerGroup).Result()
	if err != nil || pending.Count != 0 {
		t.Errorf("pending = %+v, %v; want none", pending, err)
	}
}

// TestServer_DuplicateDelivery: the same command id delivered twice runs
// once, and both deliveries get the same reply.
func TestServer_DuplicateDelivery(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	cmd := command{ID: newCommandID(), Op: OpConnect, Token: "dup-token", Deadline: time.Now().Add(5 * time.Second)}
	shard := ShardOf(cmd.Token, 4)
	xadd(t, rdb, k, shard, cmd)
	xadd(t, rdb, k, shard, cmd)

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), testServerConfig(prefix)))
	var replies []string
	for range 2 {
		got, err := rdb.BLPop(ctx, 3*time.Second, k.reply(cmd.ID)).Result()
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		replies = append(replies, got[1])
	}
	if replies[0] != replies[1] || !strings.Contains(replies[0], `"state":"qr"`) {
		t.Errorf("replies = %q", replies)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("command ran %d times, want 1", n)
	}
}

// TestServer_StartedElsewhere: a command whose done marker says another
// consumer started it is acked and dropped, not run.
func TestServer_StartedElsewhere(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	cmd := command{ID: newCommandID(), Op: OpConnect, Token: "elsewhere", Deadline: time.Now().Add(5 * time.Second)}
	shard := ShardOf(cmd.Token, 4)
	rdb.Set(ctx, k.done(shard, cmd.ID), pendingMarker+"other", time.Minute)
	xadd(t, rdb, k, shard, cmd)

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), testServerConfig(prefix)))
	eventually(t, 3*time.Second, "command acked", func() bool {
		p, err := rdb.XPending(ctx, k.stream(shard), consumerGroup).Result()
		info, _ := rdb.XInfoGroups(ctx, k.stream(shard)).Result()
		return err == nil && p.Count == 0 && len(info) == 1 && info[0].EntriesRead == 1
	})
	if n := runs.Load(); n != 0 {
		t.Errorf("command ran %d times, want 0", n)
	}
	if n := rdb.Exists(ctx, k.reply(cmd.ID)).Val(); n != 0 {
		t.Errorf("a reply was written")
	}
}

// TestServer_CancelledByClient: a command the client cancelled (its XADD
// failed, but a hung Redis may still run it) is acked and never run.
func TestServer_CancelledByClient(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	cmd := command{ID: newCommandID(), Op: OpConnect, Token: "cancelled", Deadline: time.Now().Add(5 * time.Second)}
	shard := ShardOf(cmd.Token, 4)
	client := NewClient(rdb, ClientConfig{Prefix: prefix, Shards: 4})
	client.cancelCommand(cmd.Token, cmd.ID)
	xadd(t, rdb, k, shard, cmd) // the late XADD of the hung Redis

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), testServerConfig(prefix)))
	eventually(t, 3*time.Second, "command acked", func() bool {
		p, err := rdb.XPending(ctx, k.stream(shard), consumerGroup).Result()
		info, _ := rdb.XInfoGroups(ctx, k.stream(shard)).Result()
		return err == nil && p.Count == 0 && len(info) == 1 && info[0].EntriesRead == 1
	})
	if n := runs.Load(); n != 0 {
		t.Errorf("a cancelled command ran %d times", n)
	}
}

// TestServer_PerTokenSerial: commands of one token never overlap; commands of
// different tokens do.
func TestServer_PerTokenSerial(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	var (
		mu         sync.Mutex
		active     = map[string]int{}
		maxByToken = map[string]int{}
		total      int
		maxTotal   int
		order      = map[string][]int{}
	)
	fake := &fakeConnector{ConnectFn: func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		mu.Lock()
		active[token]++
		total++
		maxByToken[token] = max(maxByToken[token], active[token])
		maxTotal = max(maxTotal, total)
		var n int
		fmt.Sscan(opts.Phone, &n)
		order[token] = append(order[token], n)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		active[token]--
		total--
		mu.Unlock()
		return shared.ConnectResult{}, nil
	}}
	runServer(t, NewServer(rdb, fake, testServerConfig(prefix)))
	c := NewClient(rdb, testClientConfig(prefix))

	tokens := []string{"serial-a", "serial-b", "serial-c"}
	var wg sync.WaitGroup
	for _, token := range tokens {
		for i := range 4 {
			wg.Go(func() {
				if _, err := c.Connect(context.Background(), token, shared.ConnectOptions{Phone: fmt.Sprint(i)}); err != nil {
					t.Errorf("Connect: %v", err)
				}
			})
		}
	}
	wg.Wait()
	for _, token := range tokens {
		if maxByToken[token] != 1 {
			t.Errorf("%s: %d commands ran at once", token, maxByToken[token])
		}
		if len(order[token]) != 4 {
			t.Errorf("%s: ran %v", token, order[token])
		}
	}
	if maxTotal < 2 {
		t.Errorf("at most %d commands ran at once over 3 tokens, want concurrency", maxTotal)
	}
}

// shardEvents records OnAcquire and OnRelease calls of several servers.
type shardEvents struct {
	mu  sync.Mutex
	log []string // "<server> acquire|release <shard>"
}

func (e *shardEvents) hooks(name string, cfg *ServerConfig) {
	cfg.OnAcquire = func(_ context.Context, shard int) { e.add(fmt.Sprintf("%s acquire %d", name, shard)) }
	cfg.OnRelease = func(shard int) { e.add(fmt.Sprintf("%s release %d", name, shard)) }
}

func (e *shardEvents) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *shardEvents) index(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Index(e.log, s)
}

// checkOwners fails unless every shard is owned by exactly one of servers
// and the lease keys agree.
func checkOwners(t *testing.T, rdb *redis.Client, k keys, servers ...*Server) {
	t.Helper()
	owner := map[int]string{}
	for _, s := range servers {
		for _, shard := range s.Owned() {
			if o, ok := owner[shard]; ok {
				t.Fatalf("shard %d owned by %s and %s", shard, o, s.ConsumerID())
			}
			owner[shard] = s.ConsumerID()
			v := rdb.Get(context.Background(), k.lease(shard)).Val()
			if !strings.HasPrefix(v, s.ConsumerID()+":") {
				t.Errorf("lease of shard %d = %q, owner %s", shard, v, s.ConsumerID())
			}
		}
	}
}

func owned(servers ...*Server) (counts []int, sum int) {
	for _, s := range servers {
		n := len(s.Owned())
		counts = append(counts, n)
		sum += n
	}
	return counts, sum
}

// TestLeases_SplitAndHandover: a second Server takes a share of the shards;
// when one stops, the other takes its shards over, and OnRelease of the old
// owner comes before OnAcquire of the new one.
func TestLeases_SplitAndHandover(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ev := &shardEvents{}
	var runs atomic.Int64

	cfgA := testServerConfig(prefix)
	cfgA.ConsumerID = "A"
	ev.hooks("A", &cfgA)
	a := NewServer(rdb, countingFake(&runs), cfgA)
	stopA := runServer(t, a)
	eventually(t, 3*time.Second, "A owns every shard", func() bool { return len(a.Owned()) == 4 })

	cfgB := testServerConfig(prefix)
	cfgB.ConsumerID = "B"
	ev.hooks("B", &cfgB)
	b := NewServer(rdb, countingFake(&runs), cfgB)
	runServer(t, b)
	// target ceil(4/2) = 2: A sheds down to target+1 = 3, B takes 1.
	eventually(t, 5*time.Second, "A and B split the shards", func() bool {
		counts, sum := owned(a, b)
		return sum == 4 && counts[0] == 3 && counts[1] == 1
	})
	checkOwners(t, rdb, k, a, b)
	moved := b.Owned()[0]
	if r, acq := ev.index(fmt.Sprintf("A release %d", moved)), ev.index(fmt.Sprintf("B acquire %d", moved)); r < 0 || r > acq {
		t.Errorf("events %v: A's release of %d is not before B's acquire", ev.log, moved)
	}

	// Commands reach the owner of every shard.
	c := NewClient(rdb, testClientConfig(prefix))
	for i := range 8 {
		if _, err := c.Connect(context.Background(), fmt.Sprintf("split-%d", i), shared.ConnectOptions{}); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}

	aShards := a.Owned()
	stopA()
	eventually(t, 5*time.Second, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	checkOwners(t, rdb, k, b)
	for _, shard := range aShards {
		r, acq := ev.index(fmt.Sprintf("A release %d", shard)), ev.index(fmt.Sprintf("B acquire %d", shard))
		if r < 0 || acq < 0 || r > acq {
			t.Errorf("events %v: A release %d not before B acquire", ev.log, shard)
		}
	}
	if n := rdb.ZScore(context.Background(), k.members(), "A").Err(); n != redis.Nil {
		t.Errorf("A still in the members set")
	}
	for i := range 8 {
		if _, err := c.Connect(context.Background(), fmt.Sprintf("split-%d", i), shared.ConnectOptions{}); err != nil {
			t.Fatalf("Connect after handover: %v", err)
		}
	}
	if n := runs.Load(); n != 16 {
		t.Errorf("%d commands ran, want 16", n)
	}
}

// TestLeases_KilledServer: a Server that stops renewing (a killed or paused
// process) loses its shards to another when its leases expire.
func TestLeases_KilledServer(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ev := &shardEvents{}
	var runs atomic.Int64

	cfgA := testServerConfig(prefix)
	cfgA.ConsumerID = "A"
	ev.hooks("A", &cfgA)
	a := NewServer(rdb, countingFake(&runs), cfgA)
	runServer(t, a)
	eventually(t, 3*time.Second, "A owns every shard", func() bool { return len(a.Owned()) == 4 })

	cfgB := testServerConfig(prefix)
	cfgB.ConsumerID = "B"
	ev.hooks("B", &cfgB)
	b := NewServer(rdb, countingFake(&runs), cfgB)
	runServer(t, b)
	eventually(t, 5*time.Second, "B owns a shard", func() bool { return len(b.Owned()) == 1 })

	stale := a.Owned()
	killed := time.Now()
	a.frozen.Store(true)
	eventually(t, 5*time.Second, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	t.Logf("B owns every shard %v after A froze (LeaseTTL %v)", time.Since(killed), cfgA.LeaseTTL)
	checkOwners(t, rdb, k, b)
	for shard := range 4 {
		if ev.index(fmt.Sprintf("B acquire %d", shard)) < 0 {
			t.Errorf("OnAcquire not called on B for shard %d: %v", shard, ev.log)
		}
	}
	c := NewClient(rdb, testClientConfig(prefix))
	for i := range 8 {
		if _, err := c.Connect(context.Background(), fmt.Sprintf("killed-%d", i), shared.ConnectOptions{}); err != nil {
			t.Fatalf("Connect after takeover: %v", err)
		}
	}
	// A wakes up: its renewals fail and it releases its stale shards without
	// touching B's leases; then the two rebalance.
	a.frozen.Store(false)
	eventually(t, 3*time.Second, "A releases its stale shards", func() bool {
		for _, shard := range stale {
			if ev.index(fmt.Sprintf("A release %d", shard)) < 0 {
				return false
			}
		}
		return true
	})
	eventually(t, 5*time.Second, "A and B split the shards again", func() bool {
		counts, sum := owned(a, b)
		return sum == 4 && counts[0] >= 1
	})
	checkOwners(t, rdb, k, a, b)
	for i := range 8 { // commands A's woken readers may have read are not lost
		if _, err := c.Connect(context.Background(), fmt.Sprintf("killed-%d", i), shared.ConnectOptions{}); err != nil {
			t.Fatalf("Connect after A woke up: %v", err)
		}
	}
	if n := runs.Load(); n != 16 {
		t.Errorf("%d commands ran, want 16", n)
	}
}

// TestLeases_PartitionedServer: a Server that cannot reach Redis releases
// its shards (OnRelease) before its leases expire, and another takes them.
func TestLeases_PartitionedServer(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	px := startProxy(t, rdb.Options().Addr)
	var released atomic.Int64
	var releasedAt atomic.Int64

	cfgA := testServerConfig(prefix)
	cfgA.ConsumerID = "A"
	cfgA.OnRelease = func(int) { released.Add(1); releasedAt.Store(time.Now().UnixNano()) }
	a := NewServer(mustClient(t, px.Addr, rdb.Options().DB), &fakeConnector{}, cfgA)
	runServer(t, a)
	eventually(t, 3*time.Second, "A owns every shard", func() bool { return len(a.Owned()) == 4 })

	px.Down()
	cut := time.Now()
	eventually(t, 3*time.Second, "A releases every shard", func() bool { return released.Load() == 4 })
	t.Logf("A released its shards %v after the partition", time.Duration(releasedAt.Load()-cut.UnixNano()))
	for shard := range 4 {
		if ttl := rdb.PTTL(context.Background(), k.lease(shard)).Val(); ttl <= 0 {
			t.Errorf("lease of shard %d already expired (%v) when A released it", shard, ttl)
		}
	}
	cfgB := testServerConfig(prefix)
	cfgB.ConsumerID = "B"
	b := NewServer(rdb, &fakeConnector{}, cfgB)
	runServer(t, b)
	eventually(t, 5*time.Second, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	px.Up()
	time.Sleep(time.Second)
	checkOwners(t, rdb, k, a, b)
}

// TestServer_SurvivesRedisOutage: the Server's loops outlive a Redis outage
// and serve again when it is back.
func TestServer_SurvivesRedisOutage(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	px := startProxy(t, rdb.Options().Addr)
	var runs atomic.Int64
	srv := NewServer(mustClient(t, px.Addr, rdb.Options().DB), countingFake(&runs), testServerConfig(prefix))
	runServer(t, srv)
	c := NewClient(rdb, testClientConfig(prefix))
	if _, err := c.Connect(context.Background(), "outage", shared.ConnectOptions{}); err != nil {
		t.Fatalf("Connect before the outage: %v", err)
	}
	px.Down()
	time.Sleep(2 * time.Second) // longer than LeaseTTL: every shard is released
	px.Up()
	if _, err := c.Connect(context.Background(), "outage", shared.ConnectOptions{}); err != nil {
		t.Fatalf("Connect after the outage: %v", err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d commands ran, want 2", n)
	}
}

// TestServer_NoRedis: Run keeps retrying without Redis and still returns
// promptly when its context ends.
func TestServer_NoRedis(t *testing.T) {
	MustOpenRedis(t)
	srv := NewServer(mustClient(t, closedAddr(t), 0), &fakeConnector{}, testServerConfig("wagotest-none"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Run returned %v after start, want about 1 s", elapsed)
	}
}
