package redisbus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Server defaults.
const (
	DefaultLeaseTTL      = 15 * time.Second
	DefaultReadBlock     = 2 * time.Second
	DefaultReadCount     = 16
	DefaultClaimMinIdle  = 30 * time.Second
	DefaultClaimInterval = 15 * time.Second
	DefaultMaxInFlight   = 64
	DefaultDrainTimeout  = 5 * time.Second
	// cancelGrace bounds the wait for commands to return once their
	// context is cancelled; the connector's ops return at once.
	cancelGrace          = 2 * time.Second
	DefaultReplyTTL      = 60 * time.Second
	DefaultDoneTTL       = 10 * time.Minute
	DefaultServerTimeout = 2 * time.Second
)

// ServerConfig configures a Server. A zero field takes its default.
type ServerConfig struct {
	// Prefix starts every key name; see ClientConfig.Prefix. Default "wago".
	Prefix string
	// Shards must equal the Clients' Shards. Default 16.
	Shards int
	// ConsumerID names this Server in leases and in the consumer group. It
	// must be unique among live Servers. Default "<hostname>-<pid>-<random>".
	ConsumerID string
	// LeaseTTL is the TTL of a shard lease, renewed every LeaseTTL/3. When
	// a Server dies its shards are taken over after at most this long (and
	// one balance interval). Every LeaseTTL/15 each Server heartbeats and
	// rebalances to its fair share; one not seen for LeaseTTL/3 has no share
	// any more (see lease.go). Default 15 s.
	LeaseTTL time.Duration
	// ReadBlock is the XREADGROUP block time: how soon a reader notices a
	// shutdown or a lost lease. Default 2 s.
	ReadBlock time.Duration
	// ReadCount is the most commands one XREADGROUP returns. Default 16.
	ReadCount int64
	// ClaimMinIdle is how long a command stays pending with a consumer
	// before another takes it over (XAUTOCLAIM). Default 30 s.
	ClaimMinIdle time.Duration
	// ClaimInterval is how often stale pending commands are reclaimed, in
	// addition to when a shard is acquired. Default 15 s.
	ClaimInterval time.Duration
	// MaxInFlight bounds the commands running at once, over all shards. A
	// slot is taken when a command starts, not while it waits behind an
	// earlier command of its token, so one hung command holds one slot.
	// Default 64.
	MaxInFlight int
	// DrainTimeout bounds how long a graceful release (shutdown, shedding)
	// lets the shard's running commands finish before it cancels them.
	// Default 5 s.
	DrainTimeout time.Duration
	// ReplyTTL is the TTL of a reply list. Default 60 s.
	ReplyTTL time.Duration
	// DoneTTL is how long a command's idempotency marker (and stored
	// reply) is kept. Default 10 min.
	DoneTTL time.Duration
	// RedisTimeout bounds every non-blocking Redis call; it must be below
	// LeaseTTL/3. Default 2 s.
	RedisTimeout time.Duration
	// MaxBackoff caps the wait between retries while Redis fails. Default 5 s.
	MaxBackoff time.Duration
	// OnAcquire is called, in its own goroutine, when the Server gains a
	// shard: the connector restores the shard's logged-in sessions. Commands
	// of the shard are served meanwhile. ctx ends when the shard is
	// released; OnRelease waits for OnAcquire to return.
	OnAcquire func(ctx context.Context, shard int)
	// OnRelease is called when the Server gives up a shard (shutdown,
	// rebalancing, or a lease it could not renew): the connector must stop
	// every socket of the shard before it returns, because another Server
	// may own the shard next. No command of the shard runs during or after
	// it, until the shard is acquired again.
	OnRelease func(shard int)
	// Logger receives the Server's logs; it never gets a token. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the Server's lease metrics (metrics.go); nil: none.
	Registerer prometheus.Registerer
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.ConsumerID == "" {
		c.ConsumerID = NewConsumerID()
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.ReadBlock == 0 {
		c.ReadBlock = DefaultReadBlock
	}
	if c.ReadCount == 0 {
		c.ReadCount = DefaultReadCount
	}
	if c.ClaimMinIdle == 0 {
		c.ClaimMinIdle = DefaultClaimMinIdle
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = DefaultClaimInterval
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ReplyTTL == 0 {
		c.ReplyTTL = DefaultReplyTTL
	}
	if c.DoneTTL == 0 {
		c.DoneTTL = DefaultDoneTTL
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = min(DefaultServerTimeout, c.LeaseTTL/4)
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
func (c ServerConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Shards < 1 || c.Shards > MaxShards:
		return fmt.Errorf("%w: Shards must be in [1, %d], got %d", ErrInvalidConfig, MaxShards, c.Shards)
	case c.LeaseTTL < 30*time.Millisecond:
		return fmt.Errorf("%w: LeaseTTL must be at least 30ms", ErrInvalidConfig)
	case c.RedisTimeout <= 0 || c.RedisTimeout >= c.LeaseTTL/3:
		return fmt.Errorf("%w: RedisTimeout must be positive and below LeaseTTL/3", ErrInvalidConfig)
	case c.ReadBlock < time.Millisecond:
		return fmt.Errorf("%w: ReadBlock must be at least 1ms", ErrInvalidConfig)
	case c.ReadCount < 1, c.MaxInFlight < 1:
		return fmt.Errorf("%w: ReadCount and MaxInFlight must be positive", ErrInvalidConfig)
	case c.ClaimMinIdle < time.Millisecond, c.ClaimInterval <= 0:
		return fmt.Errorf("%w: ClaimMinIdle and ClaimInterval must be positive", ErrInvalidConfig)
	case c.ReplyTTL < time.Second, c.DoneTTL < time.Second:
		return fmt.Errorf("%w: ReplyTTL and DoneTTL must be at least 1s", ErrInvalidConfig)
	case c.DrainTimeout < 0:
		return fmt.Errorf("%w: DrainTimeout must not be negative", ErrInvalidConfig)
	case c.MaxBackoff <= 0:
		return fmt.Errorf("%w: MaxBackoff must be positive", ErrInvalidConfig)
	}
	return nil
}

// Server runs in the connector process: it owns shards through leases, reads
// their command streams and runs each command on the local Connector, at
// most once, serially per token and concurrently across tokens.
type Server struct {
	rdb   redis.UniversalClient
	local shared.Connector
	cfg   ServerConfig
	keys  keys
	log   *slog.Logger

	metrics *serverMetrics
	sem     chan struct{} // one slot per command in flight
	running atomic.Bool   // Run was called

	// shardsLock guards shards.
	shardsLock sync.Mutex
	shards     map[int]*shardRun // owned, or being released

	// frozen is a test hook that simulates a paused or killed process: no
	// heartbeat, renewal, acquisition or read happens while it is set.
	frozen atomic.Bool
}

// NewServer returns a Server that runs commands on local. It panics if cfg
// is invalid: call cfg.Validate first to get an error instead.
func NewServer(rdb redis.UniversalClient, local shared.Connector, cfg ServerConfig) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if rdb == nil || local == nil {
		panic("redisbus: NewServer with a nil Redis client or Connector")
	}
	cfg = cfg.withDefaults()
	s := &Server{
		rdb:    rdb,
		local:  local,
		cfg:    cfg,
		keys:   keys{cfg.Prefix},
		log:    cfg.Logger.With("consumer", cfg.ConsumerID),
		sem:    make(chan struct{}, cfg.MaxInFlight),
		shards: make(map[int]*shardRun),
	}
	s.metrics = newServerMetrics(cfg.Registerer, s)
	return s
}

// ConsumerID returns the Server's consumer id.
func (s *Server) ConsumerID() string { return s.cfg.ConsumerID }

// Owned returns the shards the Server owns now, in order.
func (s *Server) Owned() []int {
	s.shardsLock.Lock()
	defer s.shardsLock.Unlock()
	out := make([]int, 0, len(s.shards))
	for shard, sr := range s.shards {
		if !sr.releasing.Load() {
			out = append(out, shard)
		}
	}
	sort.Ints(out)
	return out
}

// Run owns shards and serves their commands until ctx ends. Redis failures
// are logged and retried with backoff; they never end Run. It can be called
// once.
//
// Shutdown order, when ctx ends (bounded even while WhatsApp hangs):
//  1. stop heartbeating and acquiring shards;
//  2. release every owned shard, in parallel (see release): at most
//     ReadBlock + RedisTimeout + DrainTimeout + 4 s + the time OnRelease
//     takes to close the shard's sockets;
//  3. stop renewing and leave the members set.
//
// Then Run returns nil; the caller closes the local connector and the Redis
// client.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("redisbus: Server.Run called twice")
	}
	renewCtx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		s.renewLoop(renewCtx)
	}()

	tick := time.NewTicker(s.balanceInterval())
	defer tick.Stop()
	joined := false // heartbeated once: peers starting now have seen us
	for ctx.Err() == nil {
		if !s.frozen.Load() {
			joined = s.balance(ctx, joined)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}

	s.shardsLock.Lock()
	owned := make([]*shardRun, 0, len(s.shards))
	for _, sr := range s.shards {
		owned = append(owned, sr)
	}
	s.shardsLock.Unlock()
	var wg sync.WaitGroup
	for _, sr := range owned {
		wg.Go(func() { s.release(sr, true) })
	}
	wg.Wait()
	stopRenew()
	<-renewDone
	s.leave()
	return nil
}

// balance heartbeats, then releases the shards above this Server's fair
// share or acquires free shards up to it (see the policy in lease.go);
// before the Server has joined (its first heartbeat) it only heartbeats.
// It reports whether the Server has joined.
func (s *Server) balance(ctx context.Context, joined bool) bool {
	members, err := s.heartbeat(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("redisbus: heartbeat failed", "err", err)
		}
		return joined
	}
	if !joined {
		return true
	}
	target := fairShare(s.cfg.Shards, members, s.cfg.ConsumerID)

	s.shardsLock.Lock()
	var mine []*shardRun // owned and not being released
	for _, sr := range s.shards {
		if !sr.releasing.Load() {
			mine = append(mine, sr)
		}
	}
	s.shardsLock.Unlock()

	if len(mine) > target {
		// Release the highest shards above the share, all at once.
		slices.SortFunc(mine, func(a, b *shardRun) int { return b.shard - a.shard })
		for _, sr := range mine[:len(mine)-target] {
			s.log.Info("redisbus: releasing a shard above the fair share", "shard", sr.shard,
				"owned", len(mine), "target", target, "live", len(members))
			go s.release(sr, true)
		}
		return true
	}
	if len(mine) < target {
		s.acquireFree(ctx, target-len(mine))
	}
	return true
}

// acquireFree acquires up to n free shards: it reads which leases exist in
// one round trip, then tries the free ones, starting at a different shard
// per consumer so that Servers starting together contend less.
func (s *Server) acquireFree(ctx context.Context, n int) {
	first := ShardOf(s.cfg.ConsumerID, s.cfg.Shards)
	var candidates []int
	s.shardsLock.Lock()
	for i := range s.cfg.Shards {
		shard := (first + i) % s.cfg.Shards
		if _, have := s.shards[shard]; !have {
			candidates = append(candidates, shard)
		}
	}
	s.shardsLock.Unlock()
	if len(candidates) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	pipe := s.rdb.Pipeline()
	held := make([]*redis.IntCmd, len(candidates))
	for i, shard := range candidates {
		held[i] = pipe.Exists(rctx, s.keys.lease(shard))
	}
	_, err := pipe.Exec(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("redisbus: reading the leases failed", "err", err)
		}
		return
	}
	for i, shard := range candidates {
		if n == 0 || ctx.Err() != nil {
			return
		}
		if held[i].Val() != 0 {
			continue
		}
		l, err := s.tryAcquire(ctx, shard)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("redisbus: acquire failed", "shard", shard, "err", err)
			}
			return
		}
		if l != nil {
			s.start(l)
			n--
		}
	}
}

// renewLoop renews every held lease each LeaseTTL/3 until ctx ends, and
// releases the shards whose lease is lost or about to expire.
func (s *Server) renewLoop(ctx context.Context) {
	tick := time.NewTicker(s.renewInterval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.frozen.Load() {
			continue
		}
		s.shardsLock.Lock()
		held := make([]*shardRun, 0, len(s.shards))
		for _, sr := range s.shards {
			if !sr.lost.Load() && !sr.leaseDeleted.Load() {
				held = append(held, sr)
			}
		}
		s.shardsLock.Unlock()
		var wg sync.WaitGroup
		for _, sr := range held {
			wg.Go(func() {
				err := s.renew(ctx, sr.lease)
				switch {
				case err == nil || sr.leaseDeleted.Load():
				case errors.Is(err, ErrLeaseLost):
					s.log.Warn("redisbus: shard lease lost", "shard", sr.shard)
					s.lose(sr)
				case s.expiring(sr.lease):
					s.log.Error("redisbus: cannot renew shard lease before it expires; releasing the shard", "shard", sr.shard, "err", err)
					s.lose(sr)
				default:
					s.log.Warn("redisbus: lease renewal failed; will retry", "shard", sr.shard, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

// shardRun is one owned shard: its lease, reader, and command workers.
type shardRun struct {
	shard int
	lease *lease

	// ctx ends when the shard is being released: it stops the reader and
	// is OnAcquire's context.
	ctx    context.Context
	cancel context.CancelFunc
	// hctx is the parent of the handlers' contexts: it ends only when the
	// lease is lost, so a graceful release lets commands finish.
	hctx    context.Context
	hcancel context.CancelFunc

	readerDone  chan struct{}
	acquireDone chan struct{}
	handlers    sync.WaitGroup // per-token workers

	releasing    atomic.Bool // release started
	lost         atomic.Bool // lease lost: do not delete it, cancel handlers
	leaseDeleted atomic.Bool // graceful release deleted the lease
	releaseOnce  sync.Once

	// queuesLock guards queues, inflight and closed.
	queuesLock sync.Mutex
	queues     map[queueKey][]message // token and lane -> commands waiting or running
	inflight   map[string]struct{}    // stream ids dispatched and not finished
	closed     bool                   // no more dispatches
}

// start begins serving a newly acquired shard.
func (s *Server) start(l *lease) {
	sr := &shardRun{
		shard:       l.shard,
		lease:       l,
		readerDone:  make(chan struct{}),
		acquireDone: make(chan struct{}),
		queues:      make(map[queueKey][]message),
		inflight:    make(map[string]struct{}),
	}
	sr.ctx, sr.cancel = context.WithCancel(context.Background())
	sr.hctx, sr.hcancel = context.WithCancel(context.Background())
	s.shardsLock.Lock()
	s.shards[l.shard] = sr
	s.shardsLock.Unlock()
	s.metrics.acquired.Inc()
	s.log.Info("redisbus: acquired shard", "shard", l.shard, "epoch", l.epoch)

	go func() {
		defer close(sr.acquireDone)
		if s.cfg.OnAcquire == nil {
			return
		}
		defer s.recoverCallback("OnAcquire", sr.shard)
		s.cfg.OnAcquire(sr.ctx, sr.shard)
	}()
	go s.readLoop(sr)
}

// lose handles a lost lease: the shard's commands are cancelled and the
// shard is released without deleting the lease.
func (s *Server) lose(sr *shardRun) {
	s.metrics.lost.Inc()
	sr.lost.Store(true)
	sr.cancel()
	sr.hcancel()
	go s.release(sr, false)
}

// release gives up sr: gracefully (read commands are finished, the lease
// deleted) or after a lost lease (handlers cancelled, lease left alone).
// The order:
//  1. stop reading and reclaiming, and cancel OnAcquire's context; a
//     graceful release waits for the reader, which hands over what it read;
//  2. close the queues: nothing more is dispatched;
//  3. let running and queued commands finish, for at most DrainTimeout
//     (the lease is renewed meanwhile);
//  4. cancel the handlers' contexts: commands not started stay pending for
//     the next owner, running ones return at once; wait cancelGrace;
//  5. wait for OnAcquire to return, then call OnRelease, which stops every
//     socket of the shard;
//  6. delete the lease (graceful) so another Server can take the shard.
func (s *Server) release(sr *shardRun, graceful bool) {
	sr.releaseOnce.Do(func() {
		sr.releasing.Store(true)
		sr.cancel()
		if graceful && !sr.lost.Load() {
			<-sr.readerDone // what it read is dispatched
		}
		sr.queuesLock.Lock()
		sr.closed = true
		sr.queuesLock.Unlock()
		handlersDone := make(chan struct{})
		go func() { sr.handlers.Wait(); close(handlersDone) }()
		if !waitDone(handlersDone, s.cfg.DrainTimeout) {
			s.log.Warn("redisbus: commands still running at the drain deadline; cancelling them", "shard", sr.shard)
		}
		sr.hcancel()
		if !waitDone(handlersDone, cancelGrace) {
			s.log.Error("redisbus: commands did not return after cancellation; releasing the shard anyway", "shard", sr.shard)
		}
		if !waitDone(sr.acquireDone, cancelGrace) {
			s.log.Error("redisbus: OnAcquire did not return after cancellation; releasing the shard anyway", "shard", sr.shard)
		}
		if s.cfg.OnRelease != nil {
			func() {
				defer s.recoverCallback("OnRelease", sr.shard)
				s.cfg.OnRelease(sr.shard)
			}()
		}
		if !sr.lost.Load() {
			sr.leaseDeleted.Store(true)
			if err := s.releaseLease(sr.lease); err != nil {
				s.log.Warn("redisbus: lease not deleted; it will expire", "shard", sr.shard, "err", err)
			}
		}
		s.shardsLock.Lock()
		if s.shards[sr.shard] == sr {
			delete(s.shards, sr.shard)
		}
		s.shardsLock.Unlock()
		s.log.Info("redisbus: released shard", "shard", sr.shard, "lost", sr.lost.Load())
	})
}

// waitDone waits until ch is closed, for at most d; it reports whether it was.
func waitDone(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func (s *Server) recoverCallback(name string, shard int) {
	if p := recover(); p != nil {
		s.log.Error("redisbus: callback panicked", "callback", name, "shard", shard, "panic", p)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// nextBackoff doubles b between 50 ms and limit.
func nextBackoff(b, limit time.Duration) time.Duration {
	return min(max(2*b, 50*time.Millisecond), limit)
}

// NewConsumerID returns a name for a Server (and its process's Outbox)
// that is unique among live ones: "<hostname>-<pid>-<random>".
func NewConsumerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:8])
}
