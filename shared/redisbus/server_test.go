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
	"github.com/wago-gw/wago/shared/connectortest"
)

// countingFake counts connect calls and answers a fixed status.
func countingFake(n *atomic.Int64) *connectortest.Fake {
	return connectortest.On(&connectortest.Fake{}, shared.OpConnect,
		func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
			n.Add(1)
			return shared.ConnectResult{Status: shared.Status{State: shared.StateQR}}, nil
		})
}

// xadd queues cmd by hand, as a Client would.
func xadd(t *testing.T, rdb *redis.Client, k keys, shard int, cmd command) {
	t.Helper()
	xaddValues(t, rdb, k, shard, cmd.values()...)
}

// xaddValues queues a stream entry with any fields.
func xaddValues(t *testing.T, rdb *redis.Client, k keys, shard int, values ...any) {
	t.Helper()
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: k.stream(shard), Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
}

// connectCmd is a connect command for token, with an empty request.
func connectCmd(token string, timeout time.Duration) command {
	return command{ID: newCommandID(), Op: shared.OpConnect, Token: token, Req: []byte("{}"), Deadline: time.Now().Add(timeout)}
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
		res, err := shared.Call(ctx, c, shared.OpConnect, token, shared.ConnectOptions{})
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
	cfg := patientServerConfig(prefix)
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

// TestServer_DuplicateDelivery: a command id delivered twice runs once.
// Delivered again after it ran, it gets the stored reply re-sent; queued
// twice in an ordered lane, both deliveries get the same reply; queued
// twice in the unordered lifecycle lane, the second delivery may find the
// first running and is then dropped: the caller gets one reply either way.
func TestServer_DuplicateDelivery(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	var runs atomic.Int64
	fake := countingFake(&runs)
	connectortest.On(fake, testSendOp, func(_ context.Context, token string, req testSendReq) (testSendRes, error) {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond)
		return testSendRes{Echo: req.Text, Token: token}, nil
	})
	srv := NewServer(rdb, fake, patientServerConfig(prefix))
	runServer(t, srv)
	eventually(t, 3*time.Second, "the server owns every shard", func() bool { return len(srv.Owned()) == 4 })
	replyOf := func(cmd command) string {
		t.Helper()
		got, err := rdb.BLPop(ctx, 3*time.Second, k.reply(cmd.ID)).Result()
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		return got[1]
	}
	acked := func(shard int) func() bool {
		return func() bool { return pendingCount(t, srv, shard) == 0 }
	}

	t.Run("after it ran", func(t *testing.T) {
		runs.Store(0)
		cmd := connectCmd("dup-token", 5*time.Second)
		shard := ShardOf(cmd.Token, 4)
		xadd(t, rdb, k, shard, cmd)
		first := replyOf(cmd)
		xadd(t, rdb, k, shard, cmd)
		second := replyOf(cmd)
		if first != second || !strings.HasPrefix(first, `{"result":{"status":{`) || !strings.Contains(first, `"state":"qr"`) {
			t.Errorf("replies = %q, %q", first, second)
		}
		eventually(t, 2*time.Second, "both deliveries acked", acked(shard))
		if n := runs.Load(); n != 1 {
			t.Errorf("command ran %d times, want 1", n)
		}
	})
	t.Run("queued twice, ordered lane", func(t *testing.T) {
		runs.Store(0)
		cmd := command{ID: newCommandID(), Op: testSendOp, Token: "dup-send", Req: []byte(`{"text":"x"}`), Deadline: time.Now().Add(5 * time.Second)}
		shard := ShardOf(cmd.Token, 4)
		xadd(t, rdb, k, shard, cmd)
		xadd(t, rdb, k, shard, cmd)
		first, second := replyOf(cmd), replyOf(cmd)
		if first != second || first != `{"result":{"echo":"x","token":"dup-send"}}` {
			t.Errorf("replies = %q, %q", first, second)
		}
		eventually(t, 2*time.Second, "both deliveries acked", acked(shard))
		if n := runs.Load(); n != 1 {
			t.Errorf("command ran %d times, want 1", n)
		}
	})
	t.Run("queued twice, unordered lane", func(t *testing.T) {
		runs.Store(0)
		cmd := connectCmd("dup-connect", 5*time.Second)
		shard := ShardOf(cmd.Token, 4)
		xadd(t, rdb, k, shard, cmd)
		xadd(t, rdb, k, shard, cmd)
		if r := replyOf(cmd); !strings.Contains(r, `"state":"qr"`) {
			t.Errorf("reply = %q", r)
		}
		eventually(t, 2*time.Second, "both deliveries acked", acked(shard))
		if n := runs.Load(); n != 1 {
			t.Errorf("command ran %d times, want 1", n)
		}
	})
}

// TestServer_StartedElsewhere: a command whose done marker says another
// consumer started it is acked and dropped, not run.
func TestServer_StartedElsewhere(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	cmd := connectCmd("elsewhere", 5*time.Second)
	shard := ShardOf(cmd.Token, 4)
	rdb.Set(ctx, k.done(shard, cmd.ID), pendingMarker+"other", time.Minute)
	xadd(t, rdb, k, shard, cmd)

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), patientServerConfig(prefix)))
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
	cmd := connectCmd("cancelled", 5*time.Second)
	shard := ShardOf(cmd.Token, 4)
	client := NewClient(rdb, ClientConfig{Prefix: prefix, Shards: 4})
	client.cancelCommand(cmd.Token, cmd.ID)
	xadd(t, rdb, k, shard, cmd) // the late XADD of the hung Redis

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), patientServerConfig(prefix)))
	eventually(t, 3*time.Second, "command acked", func() bool {
		p, err := rdb.XPending(ctx, k.stream(shard), consumerGroup).Result()
		info, _ := rdb.XInfoGroups(ctx, k.stream(shard)).Result()
		return err == nil && p.Count == 0 && len(info) == 1 && info[0].EntriesRead == 1
	})
	if n := runs.Load(); n != 0 {
		t.Errorf("a cancelled command ran %d times", n)
	}
}

// TestServer_PerTokenSerial: the sends of one token (an ordered lane) never
// overlap and run in the order they were queued; sends of different tokens
// do overlap, and so do the lifecycle ops of one token (an unordered lane:
// the connector serialises them itself).
func TestServer_PerTokenSerial(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	var (
		mu         sync.Mutex
		active     = map[string]int{}
		maxByToken = map[string]int{}
		total      int
		maxTotal   int
		order      = map[string][]string{}
	)
	run := func(key, n string) {
		mu.Lock()
		active[key]++
		total++
		maxByToken[key] = max(maxByToken[key], active[key])
		maxTotal = max(maxTotal, total)
		order[key] = append(order[key], n)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		active[key]--
		total--
		mu.Unlock()
	}
	fake := &connectortest.Fake{}
	connectortest.On(fake, testSendOp, func(_ context.Context, token string, req testSendReq) (testSendRes, error) {
		run("send "+token, req.Text)
		return testSendRes{}, nil
	})
	connectortest.On(fake, shared.OpConnect, func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		run("connect "+token, opts.Phone)
		return shared.ConnectResult{}, nil
	})
	srv := NewServer(rdb, fake, patientServerConfig(prefix))
	runServer(t, srv)
	// Before the callers below hold every connection of rdb's pool in BLPOP.
	eventually(t, 3*time.Second, "the server owns every shard", func() bool { return len(srv.Owned()) == 4 })
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	tokens := []string{"serial-a", "serial-b", "serial-c"}
	var wg sync.WaitGroup
	for _, token := range tokens {
		stream := srv.keys.stream(ShardOf(token, 4))
		for i := range 4 {
			before := rdb.XLen(ctx, stream).Val()
			wg.Go(func() {
				if _, err := shared.Call(ctx, c, testSendOp, token, testSendReq{Text: fmt.Sprint(i)}); err != nil {
					t.Errorf("send: %v", err)
				}
			})
			// Queued one after the other, to check the order.
			eventually(t, 2*time.Second, "send queued", func() bool { return rdb.XLen(ctx, stream).Val() > before })
		}
	}
	for _, token := range tokens {
		for i := range 4 {
			wg.Go(func() {
				if _, err := shared.Call(ctx, c, shared.OpConnect, token, shared.ConnectOptions{Phone: fmt.Sprint(i)}); err != nil {
					t.Errorf("connect: %v", err)
				}
			})
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, token := range tokens {
		if n := maxByToken["send "+token]; n != 1 {
			t.Errorf("%s: %d sends ran at once", token, n)
		}
		if got := order["send "+token]; !slices.Equal(got, []string{"0", "1", "2", "3"}) {
			t.Errorf("%s: sends ran as %v", token, got)
		}
		if n := maxByToken["connect "+token]; n < 2 {
			t.Errorf("%s: at most %d connects ran at once, want them run as they come", token, n)
		}
		if got := order["connect "+token]; len(got) != 4 {
			t.Errorf("%s: connects ran as %v", token, got)
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

// String returns the events so far.
func (e *shardEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.log)
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
	// A fair share of 4 over 2 is 2: A releases 2, B takes them.
	eventually(t, 5*time.Second, "A and B split the shards", func() bool {
		counts, sum := owned(a, b)
		return sum == 4 && counts[0] == 2 && counts[1] == 2
	})
	checkOwners(t, rdb, k, a, b)
	for _, moved := range b.Owned() {
		// OnAcquire runs in its own goroutine once the shard is owned.
		eventually(t, 3*time.Second, "B's OnAcquire", func() bool { return ev.index(fmt.Sprintf("B acquire %d", moved)) >= 0 })
		if r, acq := ev.index(fmt.Sprintf("A release %d", moved)), ev.index(fmt.Sprintf("B acquire %d", moved)); r < 0 || r > acq {
			t.Errorf("events %v: A's release of %d is not before B's acquire", ev, moved)
		}
	}

	// Commands reach the owner of every shard.
	c := NewClient(rdb, testClientConfig(prefix))
	for i := range 8 {
		if _, err := shared.Call(context.Background(), c, shared.OpConnect, fmt.Sprintf("split-%d", i), shared.ConnectOptions{}); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}

	aShards := a.Owned()
	stopA()
	eventually(t, 5*time.Second, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	checkOwners(t, rdb, k, b)
	for _, shard := range aShards {
		eventually(t, 3*time.Second, "B's OnAcquire", func() bool { return ev.index(fmt.Sprintf("B acquire %d", shard)) >= 0 })
		r, acq := ev.index(fmt.Sprintf("A release %d", shard)), ev.index(fmt.Sprintf("B acquire %d", shard))
		if r < 0 || acq < 0 || r > acq {
			t.Errorf("events %v: A release %d not before B acquire", ev, shard)
		}
	}
	if n := rdb.ZScore(context.Background(), k.members(), "A").Err(); n != redis.Nil {
		t.Errorf("A still in the members set")
	}
	for i := range 8 {
		if _, err := shared.Call(context.Background(), c, shared.OpConnect, fmt.Sprintf("split-%d", i), shared.ConnectOptions{}); err != nil {
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
	eventually(t, 5*time.Second, "B owns its share", func() bool { return len(b.Owned()) == 2 })

	stale := a.Owned()
	killed := time.Now()
	a.frozen.Store(true)
	eventually(t, 5*time.Second, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	t.Logf("B owns every shard %v after A froze (LeaseTTL %v)", time.Since(killed), cfgA.LeaseTTL)
	checkOwners(t, rdb, k, b)
	for shard := range 4 {
		eventually(t, 3*time.Second, fmt.Sprintf("OnAcquire on B for shard %d (events %v)", shard, ev), func() bool {
			return ev.index(fmt.Sprintf("B acquire %d", shard)) >= 0
		})
	}
	c := NewClient(rdb, testClientConfig(prefix))
	for i := range 8 {
		if _, err := shared.Call(context.Background(), c, shared.OpConnect, fmt.Sprintf("killed-%d", i), shared.ConnectOptions{}); err != nil {
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
		if _, err := shared.Call(context.Background(), c, shared.OpConnect, fmt.Sprintf("killed-%d", i), shared.ConnectOptions{}); err != nil {
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
	a := NewServer(mustClient(t, px.Addr, rdb.Options().DB), &connectortest.Fake{}, cfgA)
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
	b := NewServer(rdb, &connectortest.Fake{}, cfgB)
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
	if _, err := shared.Call(context.Background(), c, shared.OpConnect, "outage", shared.ConnectOptions{}); err != nil {
		t.Fatalf("Connect before the outage: %v", err)
	}
	px.Down()
	time.Sleep(2 * time.Second) // longer than LeaseTTL: every shard is released
	px.Up()
	if _, err := shared.Call(context.Background(), c, shared.OpConnect, "outage", shared.ConnectOptions{}); err != nil {
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
	srv := NewServer(mustClient(t, closedAddr(t), 0), &connectortest.Fake{}, testServerConfig("wagotest-none"))
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

// TestServer_DropsUndecodable: an entry of an unknown op, of an older wire
// version, or without a token is acked and dropped without running or
// replying, and the commands behind it are served.
func TestServer_DropsUndecodable(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	token := "undecodable"
	shard := ShardOf(token, 4)
	deadline := fmt.Sprint(time.Now().Add(5 * time.Second).UnixMilli())
	dropped := []string{newCommandID(), newCommandID(), newCommandID()}
	xaddValues(t, rdb, k, shard, fieldVersion, wireVersion, fieldID, dropped[0], fieldOp, "session.nope",
		fieldToken, token, fieldRequest, "{}", fieldDeadline, deadline)
	xaddValues(t, rdb, k, shard, fieldVersion, "1", fieldID, dropped[1], fieldOp, "connect",
		fieldToken, token, "opts", "{}", fieldDeadline, deadline)
	xaddValues(t, rdb, k, shard, fieldVersion, wireVersion, fieldID, dropped[2], fieldOp, shared.OpConnect.Name(),
		fieldRequest, "{}", fieldDeadline, deadline)
	valid := connectCmd(token, 5*time.Second)
	xadd(t, rdb, k, shard, valid)

	var runs atomic.Int64
	runServer(t, NewServer(rdb, countingFake(&runs), patientServerConfig(prefix)))
	if r := waitReply(t, rdb, k, valid.ID); r.err() != nil {
		t.Fatalf("the command behind the dropped ones: %v", r.err())
	}
	eventually(t, 3*time.Second, "every entry acked", func() bool {
		p, err := rdb.XPending(ctx, k.stream(shard), consumerGroup).Result()
		info, _ := rdb.XInfoGroups(ctx, k.stream(shard)).Result()
		return err == nil && p.Count == 0 && len(info) == 1 && info[0].EntriesRead == 4
	})
	if n := runs.Load(); n != 1 {
		t.Errorf("%d commands ran, want 1", n)
	}
	for _, id := range dropped {
		if rdb.Exists(ctx, k.reply(id), k.done(shard, id)).Val() != 0 {
			t.Errorf("a dropped command got a reply or a done marker")
		}
	}
}
