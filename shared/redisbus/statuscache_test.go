package redisbus

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// cachedClient returns a Client of cfg with the status cache over rdb,
// once its subscription is confirmed.
func cachedClient(t *testing.T, rdb *redis.Client, cfg ClientConfig) *Client {
	t.Helper()
	cfg.StatusCache = true
	cfg.Logger = testLogger()
	c := NewClient(rdb, cfg)
	t.Cleanup(c.Close)
	eventually(t, 3*time.Second, "the status cache to subscribe", func() bool { return cacheLive(c) })
	return c
}

func cacheLive(c *Client) bool {
	c.cache.mu.RLock()
	defer c.cache.mu.RUnlock()
	return c.cache.live
}

// countedCache returns a client of the test Redis, a fresh prefix, and a
// Client with the status cache on its own Redis client, whose round trips
// pipes counts.
func countedCache(t *testing.T) (base *redis.Client, prefix string, c *Client, pipes *pipelineCounter) {
	base = MustOpenRedis(t)
	prefix = testPrefix(t, base)
	rdb := mustClient(t, base.Options().Addr, base.Options().DB)
	pipes = &pipelineCounter{}
	rdb.AddHook(pipes)
	return base, prefix, cachedClient(t, rdb, testClientConfig(prefix)), pipes
}

// setStatus writes token's status key as a connector's publisher would,
// unstamped (trusted as is).
func setStatus(t *testing.T, rdb *redis.Client, prefix, token string, st shared.Status) {
	t.Helper()
	raw, _ := json.Marshal(storedStatus{Status: st})
	if err := rdb.Set(context.Background(), keys{prefix}.status(token), raw, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}

// readState reads token's state, failing the test on an error.
func readState(t *testing.T, c *Client, token string) string {
	t.Helper()
	st, err := c.Status(context.Background(), token)
	if err != nil {
		t.Fatalf("status of %s: %v", token, err)
	}
	return st.State
}

// TestStatusCache_ReadsOnceAndFollowsChanges: with the cache, a status (a
// missing one too, and a list of 100) is read from Redis once and then
// served without a round trip; a write, a deletion and an expiry of the
// key by another client are each seen within a few milliseconds.
func TestStatusCache_ReadsOnceAndFollowsChanges(t *testing.T) {
	base, prefix, c, pipes := countedCache(t)

	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateLoggedOut})
	if got := readState(t, c, "tok"); got != shared.StateLoggedOut {
		t.Fatalf("first read: %s", got)
	}
	if got := readState(t, c, "never"); got != shared.StateDisconnected {
		t.Fatalf("a token without a status: %s", got)
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint("many-", i)
	}
	if _, err := c.Statuses(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	// The message for the write of tok may come after its first read,
	// which is then not kept: the second is.
	time.Sleep(50 * time.Millisecond)
	readState(t, c, "tok")
	before := pipes.n.Load()
	for range 500 {
		if got := readState(t, c, "tok"); got != shared.StateLoggedOut {
			t.Fatalf("cached read: %s", got)
		}
		readState(t, c, "never")
		if _, err := c.Statuses(context.Background(), many); err != nil {
			t.Fatal(err)
		}
	}
	if n := pipes.n.Load() - before; n != 0 {
		t.Fatalf("1,500 reads of statuses read before made %d round trips, want 0", n)
	}

	seenWithin := func(within time.Duration, what, token, want string) {
		t.Helper()
		start := time.Now()
		for readState(t, c, token) != want {
			if time.Since(start) > within {
				t.Fatalf("%s not seen after %v", what, within)
			}
			time.Sleep(50 * time.Microsecond)
		}
		t.Logf("%s seen after %v", what, time.Since(start).Round(time.Microsecond))
	}
	seen := func(what, token, want string) { t.Helper(); seenWithin(time.Second, what, token, want) }
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateConnecting})
	seen("a write", "tok", shared.StateConnecting)
	setStatus(t, base, prefix, "never", shared.Status{State: shared.StateFailed})
	seen("the write of a missing key", "never", shared.StateFailed)
	base.Del(context.Background(), keys{prefix}.status("tok"))
	seen("a deletion", "tok", shared.StateDisconnected)
	base.Set(context.Background(), keys{prefix}.status("tok"), mustJSON(storedStatus{Status: shared.Status{State: shared.StateLoggedOut}}), 300*time.Millisecond)
	seen("a write with a TTL", "tok", shared.StateLoggedOut)
	// Redis deletes an expired key when a read finds it, or when its
	// sampling does: the cache's reads do not reach Redis, so the expiry
	// may come as late as cacheMaxAge.
	seenWithin(cacheMaxAge+time.Second, "its expiry", "tok", shared.StateDisconnected)

	// A FLUSHDB, here of another database, empties the cache, which stays
	// on its subscription.
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateLoggedOut})
	seen("a write before a flush", "tok", shared.StateLoggedOut)
	conn := c.cache.conn.Load()
	other := mustClient(t, base.Options().Addr, (base.Options().DB+1)%16)
	if err := other.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the flush to empty the cache", func() bool {
		c.cache.mu.RLock()
		defer c.cache.mu.RUnlock()
		return len(c.cache.entries) == 0
	})
	if !cacheLive(c) || c.cache.conn.Load() != conn {
		t.Error("the cache left its subscription on a flush")
	}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// TestStatusCache_OffWhileItsSubscriptionIs: when the cache's connection is
// killed, the cache empties and turns off (a write made meanwhile is read
// from Redis), and comes back once it subscribed again.
func TestStatusCache_OffWhileItsSubscriptionIs(t *testing.T) {
	base, prefix, c, pipes := countedCache(t)
	ctx := context.Background()

	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateLoggedOut})
	readState(t, c, "tok")
	first := c.cache.conn.Load()
	if err := base.ClientKillByFilter(ctx, "ID", fmt.Sprint(first)).Err(); err != nil {
		t.Fatalf("CLIENT KILL ID %d: %v", first, err)
	}
	eventually(t, time.Second, "the cache to turn off", func() bool { return !cacheLive(c) })
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateConnecting})
	before := pipes.n.Load()
	if got := readState(t, c, "tok"); got != shared.StateConnecting {
		t.Fatalf("read while the cache is off: %s, want the write made meanwhile", got)
	}
	readState(t, c, "tok")
	if pipes.n.Load()-before != 2 {
		t.Fatalf("two reads while the cache is off made %d round trips, want 2", pipes.n.Load()-before)
	}

	eventually(t, cacheRetry+3*time.Second, "the cache to come back", func() bool { return cacheLive(c) })
	if c.cache.conn.Load() == first {
		t.Fatal("the cache is back on its killed connection")
	}
	readState(t, c, "tok")
	before = pipes.n.Load()
	readState(t, c, "tok")
	if pipes.n.Load() != before {
		t.Fatal("the cache did not answer once back")
	}
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateFailed})
	eventually(t, time.Second, "a write after the cache came back", func() bool { return readState(t, c, "tok") == shared.StateFailed })
}

// TestStatusCache_HungRedis: when Redis stops answering, the cache goes on
// answering for at most about cacheLiveFor, then reads go to Redis and
// answer EUNAVAILABLE; once Redis answers again the cache comes back.
func TestStatusCache_HungRedis(t *testing.T) {
	base := MustOpenRedis(t)
	prefix := testPrefix(t, base)
	p := startProxy(t, base.Options().Addr)
	rdb := mustClient(t, p.Addr, base.Options().DB)
	cfg := testClientConfig(prefix)
	cfg.RedisTimeout = 300 * time.Millisecond
	c := cachedClient(t, rdb, cfg)
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateLoggedOut})
	eventually(t, time.Second, "the status to be cached", func() bool {
		readState(t, c, "tok")
		_, ok := c.cache.get([]string{"tok"})
		return ok
	})

	p.Frozen.Store(true)
	frozen := time.Now()
	var lastCached time.Duration
	for {
		start := time.Now()
		_, err := c.Status(context.Background(), "tok")
		if err != nil {
			if shared.ErrorCode(err) != shared.EUNAVAILABLE {
				t.Fatalf("read of a hung Redis: %v, want EUNAVAILABLE", err)
			}
			if took := time.Since(start); took > cfg.RedisTimeout+500*time.Millisecond {
				t.Errorf("the failed read took %v", took)
			}
			break
		}
		lastCached = time.Since(frozen)
		if lastCached > cacheLiveFor+cachePing+500*time.Millisecond {
			t.Fatalf("the cache still answers %v after Redis hung", lastCached)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lastCached == 0 {
		t.Error("the cache did not answer at all once Redis hung")
	}
	t.Logf("the cache answered for %v after Redis hung", lastCached.Round(time.Millisecond))

	p.Frozen.Store(false)
	setStatus(t, base, prefix, "tok", shared.Status{State: shared.StateFailed})
	eventually(t, cacheRetry+5*time.Second, "the cache to come back", func() bool {
		st, err := c.Status(context.Background(), "tok")
		return err == nil && st.State == shared.StateFailed && cacheLive(c)
	})
}

// TestStatusCache_CommandsDropTheStatus: a command answered for a token
// drops its status, so that the caller reads what the connector wrote
// before replying, every time, without waiting for Redis's message.
func TestStatusCache_CommandsDropTheStatus(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	fake := &connectortest.Fake{}
	write := func(state string) func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return func(_ context.Context, token string, _ shared.Empty) (shared.Empty, error) {
			setStatus(t, rdb, prefix, token, shared.Status{State: state})
			return shared.Empty{}, nil
		}
	}
	connectortest.On(fake, shared.OpLogout, write(shared.StateLoggedOut))
	connectortest.On(fake, shared.OpDisconnect, write(shared.StateDisconnected))
	runServer(t, NewServer(rdb, fake, patientServerConfig(prefix)))
	c := cachedClient(t, rdb, testClientConfig(prefix))
	ctx := context.Background()

	for i := range 50 {
		op, want := shared.OpLogout, shared.StateLoggedOut
		if i%2 == 1 {
			op, want = shared.OpDisconnect, shared.StateDisconnected
		}
		readState(t, c, "tok") // cached
		if _, err := shared.Call(ctx, c, op, "tok", shared.Empty{}); err != nil {
			t.Fatal(err)
		}
		c.cache.mu.RLock()
		_, kept := c.cache.entries["tok"]
		c.cache.mu.RUnlock()
		if kept {
			t.Fatalf("round %d: the status is still cached after %s answered", i, op.Name())
		}
		if got := readState(t, c, "tok"); got != want {
			t.Fatalf("round %d: read after %s: %s, want %s", i, op.Name(), got, want)
		}
	}
}

// TestStatusCache_KeepsOnlyWhatHolds: the rules of what the cache keeps
// and answers, on its own: a read that raced an invalidation or a command
// of its shard is not kept (one of another shard does not matter); a
// status bound to the lease ends when its check would fail; a lease
// change, a lost subscription, silence and age each end what was kept.
func TestStatusCache_KeepsOnlyWhatHolds(t *testing.T) {
	k := keys{"p"}
	sc := newStatusCache(k, 4)
	tok, other := "tok", ""
	for i := 0; other == ""; i++ {
		if s := fmt.Sprint("o", i); ShardOf(s, 4) != ShardOf(tok, 4) {
			other = s
		}
	}
	st := []shared.Status{{State: shared.StateConnected}}
	put := func(m cacheMark, hold time.Duration) { sc.put(m, []string{tok}, st, []time.Duration{hold}) }
	hit := func() bool { _, ok := sc.get([]string{tok}); return ok }

	m := sc.mark()
	put(m, 0)
	if hit() {
		t.Fatal("kept a read made before the subscription was up")
	}
	sc.reset(true)
	check := func(what string, want bool) {
		t.Helper()
		if hit() != want {
			t.Fatalf("%s: cached = %v, want %v", what, !want, want)
		}
	}
	m = sc.mark()
	sc.invalidate([]string{k.status(tok)})
	put(m, 0)
	check("a read that raced its key's invalidation", false)
	m = sc.mark()
	sc.forget(tok)
	put(m, 0)
	check("a read that raced a command", false)
	m = sc.mark()
	sc.invalidate([]string{k.status(other), "p:qr:" + tok, "q:status:" + tok})
	put(m, 0)
	check("a read that raced only other keys", true)
	sc.invalidate([]string{k.lease(ShardOf(other, 4))})
	check("after another shard's lease changed", true)
	sc.invalidate([]string{k.lease(ShardOf(tok, 4))})
	check("after its lease changed", false)

	put(sc.mark(), 80*time.Millisecond)
	check("within its lease check", true)
	time.Sleep(100 * time.Millisecond)
	sc.alive()
	check("past its lease check", false)

	put(sc.mark(), 0)
	sc.mu.Lock()
	sc.heard = time.Now().Add(-cacheLiveFor)
	sc.mu.Unlock()
	check("after the subscription was silent", false)
	sc.alive()
	check("once it answered again", true)
	sc.reset(false)
	check("with the subscription down", false)
	sc.reset(true)
	check("after a new subscription", false)

	old := sc.mark()
	old.at = time.Now().Add(-cacheMaxAge)
	put(old, 0)
	check("a status read cacheMaxAge ago", false)
	sc.swept = time.Time{}
	sc.put(sc.mark(), []string{other}, st, []time.Duration{0}) // sweeps
	if _, ok := sc.entries[tok]; ok {
		t.Error("the sweep kept a status older than cacheMaxAge")
	}
}
