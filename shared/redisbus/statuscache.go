package redisbus

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// A status cache kept current by Redis (ClientConfig.StatusCache).
//
// Status is the route clients poll: read from Redis, each answer costs a
// round trip. With the cache, a Client keeps the statuses it read and Redis
// tells it when to drop one: the cache's own connection turns on
// server-assisted client-side caching in broadcast mode for the status keys
// and the shards' leases (CLIENT TRACKING ... BCAST PREFIX, redirected to
// itself and subscribed to __redis__:invalidate), so Redis names every such
// key a command writes, deletes or expires, just after the write. A cached
// status is served only while:
//   - the subscription is up and proved alive within cacheLiveFor (a
//     message, or the answer to a PING sent when it has been quiet); a
//     connection that fails or goes silent empties the cache, and it stays
//     off until a new subscription is confirmed;
//   - neither its status key nor its shard's lease changed since it was read
//     (a renewal is a change too: the lease check below is redone);
//   - for a running state, its lease still passes the check of status.go
//     (renewed within LeaseTTL/2), by the PTTL read with it: so a session of
//     a dead connector still reads disconnected on time;
//   - it is younger than cacheMaxAge, a bound should an invalidation ever
//     be lost.
// A read that raced an invalidation of its shard is not kept. A command the
// Client sends for a token drops the token's status when its reply comes,
// so a client reads its own writes through one API process; another process
// sees the change once Redis's message reaches it (well under a
// millisecond here), as if its read had come that much earlier.

const (
	// invalidationChannel is where Redis sends the names of changed keys
	// to a RESP2 connection that tracks for itself.
	invalidationChannel = "__redis__:invalidate"
	// cachePing is how long the subscription may be quiet before a PING.
	cachePing = 250 * time.Millisecond
	// cacheLiveFor is how long after the subscription was last heard from
	// the cache still answers; a PING unanswered for as long drops the
	// connection.
	cacheLiveFor = time.Second
	// cacheMaxAge is the longest a status is kept.
	cacheMaxAge = 10 * time.Second
	// cacheRetry is the wait before subscribing again after a failure.
	cacheRetry = time.Second
)

// statusCache is the cache of one Client.
type statusCache struct {
	keys   keys
	shards int

	mu sync.RWMutex
	// live: a subscription is confirmed; heard: when it last proved alive.
	live  bool
	heard time.Time
	// epoch changes whenever invalidations may have been missed: a read
	// made under an older epoch is not kept.
	epoch uint64
	// seq counts, per shard, the invalidations of its keys, to refuse a
	// read that raced one; lease, per shard, the changes of its lease.
	seq     []uint64
	lease   []uint64
	entries map[string]cachedStatus
	swept   time.Time

	// conn is the Redis client ID of the tracking connection, for tests.
	conn atomic.Int64
	// hits and misses count the reads answered and not (metrics.go).
	hits, misses atomic.Uint64
}

// cachedStatus is a status kept, with what it was read under. (Its epoch
// is the cache's: a new epoch empties the cache.)
type cachedStatus struct {
	st    shared.Status
	lease uint64
	read  time.Time
	// until is when a running status stops passing its lease check; zero
	// for a status that does not depend on the lease.
	until time.Time
}

// cacheMark is what a read noted before going to Redis.
type cacheMark struct {
	ok    bool // the cache was live: what the read gets may be kept
	epoch uint64
	at    time.Time
	seq   []uint64 // a copy of statusCache.seq
}

func newStatusCache(k keys, shards int) *statusCache {
	return &statusCache{
		keys: k, shards: shards,
		seq: make([]uint64, shards), lease: make([]uint64, shards),
		entries: make(map[string]cachedStatus),
	}
}

// get returns the kept statuses of tokens if every one is kept and valid.
func (sc *statusCache) get(tokens []string) ([]shared.Status, bool) {
	out, ok := sc.lookup(tokens)
	if ok {
		sc.hits.Add(1)
	} else {
		sc.misses.Add(1)
	}
	return out, ok
}

func (sc *statusCache) lookup(tokens []string) ([]shared.Status, bool) {
	now := time.Now()
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	if !sc.live || now.Sub(sc.heard) >= cacheLiveFor {
		return nil, false
	}
	out := make([]shared.Status, len(tokens))
	for i, token := range tokens {
		e, ok := sc.entries[token]
		if !ok || e.lease != sc.lease[ShardOf(token, sc.shards)] ||
			now.Sub(e.read) >= cacheMaxAge || (!e.until.IsZero() && !now.Before(e.until)) {
			return nil, false
		}
		out[i] = e.st
	}
	return out, true
}

// answers reports whether the cache answers now: its subscription is up
// and was heard from lately.
func (sc *statusCache) answers() bool {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.live && time.Since(sc.heard) < cacheLiveFor
}

// mark notes, before a read goes to Redis, what it must find unchanged
// for what it reads to be kept.
func (sc *statusCache) mark() cacheMark {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	if !sc.live {
		return cacheMark{}
	}
	return cacheMark{ok: true, epoch: sc.epoch, at: time.Now(), seq: slices.Clone(sc.seq)}
}

// put keeps sts, the statuses of tokens read after m, unless an
// invalidation of their shard came meanwhile. holds[i] is how long after
// the read sts[i] passes its lease check (0: it does not depend on it).
func (sc *statusCache) put(m cacheMark, tokens []string, sts []shared.Status, holds []time.Duration) {
	if !m.ok {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if m.epoch != sc.epoch {
		return
	}
	for i, token := range tokens {
		shard := ShardOf(token, sc.shards)
		if sc.seq[shard] != m.seq[shard] {
			continue
		}
		e := cachedStatus{st: sts[i], lease: sc.lease[shard], read: m.at}
		if holds[i] > 0 {
			// m.at is before Redis measured the PTTL: until errs early.
			e.until = m.at.Add(holds[i])
		}
		sc.entries[token] = e
	}
	sc.sweep(m.at)
}

// sweep drops, every cacheMaxAge, the statuses kept longer; it runs with
// mu held.
func (sc *statusCache) sweep(now time.Time) {
	if now.Sub(sc.swept) < cacheMaxAge {
		return
	}
	sc.swept = now
	for token, e := range sc.entries {
		if now.Sub(e.read) >= cacheMaxAge {
			delete(sc.entries, token)
		}
	}
}

// forget drops the status of token, and refuses the reads of its shard in
// flight: a command was just answered for it.
func (sc *statusCache) forget(token string) {
	sc.mu.Lock()
	sc.drop(token)
	sc.mu.Unlock()
}

// drop drops the status of token and refuses the reads of its shard in
// flight; it runs with mu held.
func (sc *statusCache) drop(token string) {
	sc.seq[ShardOf(token, sc.shards)]++
	delete(sc.entries, token)
}

// invalidate applies Redis's message that keys changed.
func (sc *statusCache) invalidate(keys []string) {
	statusPrefix, leasePrefix := sc.keys.status(""), sc.keys.leasePrefix()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.heard = time.Now()
	for _, key := range keys {
		if token, ok := strings.CutPrefix(key, statusPrefix); ok {
			sc.drop(token)
		} else if rest, ok := strings.CutPrefix(key, leasePrefix); ok {
			shard, err := strconv.Atoi(strings.TrimSuffix(rest, "}"))
			if err != nil || shard < 0 || shard >= sc.shards {
				continue // another deployment's shards
			}
			sc.seq[shard]++
			sc.lease[shard]++
		}
	}
}

// reset drops everything kept, under a new epoch: invalidations may have
// been missed, or a FLUSHDB may have changed every key. live tells whether
// a subscription is confirmed now (it was just heard from): what is read
// from now on may then be kept.
func (sc *statusCache) reset(live bool) {
	sc.mu.Lock()
	sc.live = live
	if live {
		sc.heard = time.Now()
	}
	sc.epoch++
	clear(sc.entries)
	sc.mu.Unlock()
}

// alive notes that the subscription answered.
func (sc *statusCache) alive() {
	sc.mu.Lock()
	sc.heard = time.Now()
	sc.mu.Unlock()
}

// trackingClient returns a client like rdb whose connections, on RESP2,
// turn tracking on for the status and lease keys, redirected to
// themselves; nil when rdb is not a single server's client (a Cluster
// would need it on every node).
func (sc *statusCache) trackingClient(rdb redis.UniversalClient) *redis.Client {
	single, ok := rdb.(*redis.Client)
	if !ok {
		return nil
	}
	opts := *single.Options()
	opts.Protocol = 2 // RESP3 would push the invalidations, not publish them
	opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns = 1, 0, 0
	prefixes := []any{"PREFIX", sc.keys.status(""), "PREFIX", sc.keys.leasePrefix()}
	onConnect := opts.OnConnect
	opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if onConnect != nil {
			if err := onConnect(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		sc.conn.Store(id)
		args := append([]any{"CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST"}, prefixes...)
		return cn.Do(ctx, args...).Err()
	}
	return redis.NewClient(&opts)
}

// run keeps the cache's subscription until ctx ends, subscribing again
// after a failure; the cache answers only while one is confirmed.
func (sc *statusCache) run(ctx context.Context, trk *redis.Client, log func(msg string, args ...any)) {
	defer trk.Close()
	// Logged once per outage: when a confirmed subscription ends, or when
	// the first attempts fail.
	failing := false
	for ctx.Err() == nil {
		ps := trk.Subscribe(ctx, invalidationChannel)
		err := sc.listen(ctx, ps)
		ps.Close()
		sc.mu.RLock()
		wasLive := sc.live
		sc.mu.RUnlock()
		sc.reset(false)
		if ctx.Err() != nil {
			return
		}
		if (wasLive || !failing) && log != nil {
			log("redisbus: the status cache is off until its subscription is back", "err", err)
		}
		failing = true
		select {
		case <-ctx.Done():
		case <-time.After(cacheRetry):
		}
	}
}

// errSilent ends a subscription that did not answer a PING in time.
var errSilent = errors.New("the subscription did not answer a PING")

// listen applies what ps receives until it fails or goes silent.
func (sc *statusCache) listen(ctx context.Context, ps *redis.PubSub) error {
	// pinged is when a PING went unanswered so far. ReceiveTimeout does
	// not watch ctx: the loop does.
	var pinged time.Time
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, cachePing)
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			if !pinged.IsZero() {
				if time.Since(pinged) >= cacheLiveFor {
					return errSilent
				}
				continue
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = time.Now()
			continue
		case err != nil && strings.Contains(err.Error(), "payload: <nil>"):
			// A FLUSHDB or FLUSHALL (of any database): Redis names no
			// key, and go-redis reports the message as an error.
			sc.reset(true)
			continue
		case err != nil:
			// A dropped connection, or a message go-redis cannot read:
			// start afresh.
			return err
		}
		pinged = time.Time{}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == invalidationChannel {
				sc.reset(true)
			}
		case *redis.Pong:
			sc.alive()
		case *redis.Message:
			if m.PayloadSlice != nil {
				sc.invalidate(m.PayloadSlice)
			} else {
				sc.invalidate([]string{m.Payload})
			}
		}
	}
	return ctx.Err()
}
