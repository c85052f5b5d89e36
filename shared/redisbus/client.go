package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Client defaults.
const (
	DefaultPrefix         = "wago"
	DefaultShards         = 16
	DefaultConnectTimeout = 12 * time.Second
	DefaultCommandTimeout = 12 * time.Second
	DefaultRedisTimeout   = time.Second
	DefaultStreamMaxLen   = 10000
)

// MaxShards bounds the number of shards.
const MaxShards = 1024

// ClientConfig configures a Client. A zero field takes its default.
type ClientConfig struct {
	// Prefix starts every key name. The Clients, Servers and
	// StatePublishers of one deployment must share it. Default "wago".
	Prefix string
	// Shards is the number of shards tokens are spread over (see ShardOf).
	// It must equal the Servers' Shards. Default 16.
	Shards int
	// ConnectTimeout is how long an op that Dials (connect, pair) waits for
	// the connector's reply. It must exceed the connector's own wait (up to 10 s when
	// Immediate is false). Default 12 s.
	ConnectTimeout time.Duration
	// CommandTimeout is how long every other op waits for the connector's
	// reply. Default 12 s.
	CommandTimeout time.Duration
	// RedisTimeout bounds every non-blocking Redis call (XADD, GET). Default 1 s.
	RedisTimeout time.Duration
	// StreamMaxLen caps each shard's stream (XADD MAXLEN ~). Default 10000.
	StreamMaxLen int64
	// Registerer receives the Client's metrics (metrics.go); nil: none.
	Registerer prometheus.Registerer
	// LeaseTTL must equal the Servers' LeaseTTL: a running session whose
	// status was written under a shard lease that has been gone or not
	// renewed for LeaseTTL/2 reads disconnected (see status.go). Default
	// 15 s.
	LeaseTTL time.Duration
	// StatusCache keeps the statuses read, dropped as soon as Redis reports
	// a change (statuscache.go); call Close to stop it. It needs a single
	// Redis server (not a Cluster) that has CLIENT TRACKING (Redis 6 or
	// later); otherwise, or while its subscription is down, every status
	// is read from Redis.
	StatusCache bool
	// Logger receives the status cache's failures. Default slog.Default().
	Logger *slog.Logger
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = DefaultRedisTimeout
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = DefaultStreamMaxLen
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
func (c ClientConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Shards < 1 || c.Shards > MaxShards:
		return fmt.Errorf("%w: Shards must be in [1, %d], got %d", ErrInvalidConfig, MaxShards, c.Shards)
	case c.ConnectTimeout < 0, c.CommandTimeout < 0, c.RedisTimeout < 0, c.LeaseTTL < 0:
		return fmt.Errorf("%w: timeouts must be positive", ErrInvalidConfig)
	case c.StreamMaxLen < 0:
		return fmt.Errorf("%w: StreamMaxLen must be positive", ErrInvalidConfig)
	}
	return nil
}

// Client is the distributed shared.Connector: it sends commands to the
// connector owning the token's shard over Redis Streams and waits for the
// reply on a per-request list, and it reads Status and QR from the keys a
// StatePublisher writes, never waiting on a connector.
//
// Every Redis call runs under a context with a deadline. For a hung (not
// refused) Redis to be cut at that deadline, create rdb with
// ContextTimeoutEnabled: true; otherwise go-redis' own read timeouts apply.
type Client struct {
	rdb     redis.UniversalClient
	cfg     ClientConfig
	keys    keys
	metrics *clientMetrics // nil: none

	statuses statusBatcher // the status reads waiting for a round trip
	cache    *statusCache  // nil: none
	stop     func()        // stops the cache's subscription
}

var _ shared.Connector = (*Client)(nil)

// NewClient returns a Client on rdb. It panics if cfg is invalid: call
// cfg.Validate first to get an error instead.
func NewClient(rdb redis.UniversalClient, cfg ClientConfig) *Client {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if rdb == nil {
		panic("redisbus: NewClient with a nil Redis client")
	}
	cfg = cfg.withDefaults()
	c := &Client{rdb: rdb, cfg: cfg, keys: keys{cfg.Prefix}, metrics: newClientMetrics(cfg.Registerer), stop: func() {}}
	if cfg.StatusCache {
		sc := newStatusCache(c.keys, cfg.Shards)
		if trk := sc.trackingClient(rdb); trk != nil {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				sc.run(ctx, trk, cfg.Logger.Warn)
			}()
			c.cache = sc
			c.stop = func() { cancel(); <-done }
			registerCacheMetrics(cfg.Registerer, sc)
		} else {
			cfg.Logger.Warn("redisbus: no status cache on a Redis Cluster")
		}
	}
	return c
}

// Close stops the status cache, if any; it does not close rdb.
func (c *Client) Close() { c.stop() }

// Invoke implements shared.Invoker: it encodes req, queues the command on
// the token's shard stream and decodes the result the owning connector
// replies. An op that Dials waits ConnectTimeout, any other CommandTimeout.
func (c *Client) Invoke(ctx context.Context, token string, op shared.OpInfo, req any) (any, error) {
	timeout := c.cfg.CommandTimeout
	if op.Dials() {
		timeout = c.cfg.ConnectTimeout
	}
	data, err := c.encode(ctx, req, timeout)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r, err := c.call(ctx, op, token, data, timeout)
	if c.cache != nil {
		// The connector wrote any new status before it replied.
		c.cache.forget(token)
	}
	c.metrics.observe(op.Name(), start, err == nil, errors.Is(err, ErrNoReply))
	if err != nil {
		return nil, err
	}
	var res any
	if len(r.Result) > 0 {
		if res, err = op.DecodeResult(r.Result); err != nil && r.err() == nil {
			return nil, shared.Wrap(err, shared.EINTERNAL, "internal error")
		}
	}
	return res, r.err()
}

// blobTimeout bounds writing a request's blob to Redis (up to 64 MiB).
const blobTimeout = 10 * time.Second

// encode encodes req as JSON. The bytes of a request that carries a blob
// never ride inside the stream entry: they go to a key of their own, which
// lives as long as the command may wait, and the entry carries the key.
func (c *Client) encode(ctx context.Context, req any, wait time.Duration) ([]byte, error) {
	blob := blobOf(req)
	if blob == nil || len(blob.Data) == 0 {
		data, err := json.Marshal(req)
		if err != nil {
			return nil, shared.Wrap(fmt.Errorf("failed to encode a request: %w", err), shared.EINTERNAL, "internal error")
		}
		return data, nil
	}
	key := c.keys.blobPrefix() + newCommandID()
	bctx, cancel := context.WithTimeout(ctx, blobTimeout)
	err := c.rdb.Set(bctx, key, blob.Data, wait+time.Minute).Err()
	cancel()
	if err != nil {
		return nil, unavailable(err, "store the request's media")
	}
	bytes := blob.Data
	blob.Data, blob.Ref = nil, key
	data, err := json.Marshal(req)
	blob.Data, blob.Ref = bytes, ""
	if err != nil {
		return nil, shared.Wrap(fmt.Errorf("failed to encode a request: %w", err), shared.EINTERNAL, "internal error")
	}
	return data, nil
}

// call queues one command on the token's shard stream and waits for its
// reply until timeout (or ctx's deadline, if sooner). The deadline travels
// with the command, so a connector that reads it too late drops it.
func (c *Client) call(ctx context.Context, op shared.OpInfo, token string, req []byte, timeout time.Duration) (reply, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cmd := command{
		ID:       newCommandID(),
		Op:       op,
		Token:    token,
		Req:      req,
		Deadline: deadline,
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	err := c.rdb.XAdd(actx, &redis.XAddArgs{
		Stream: c.keys.stream(ShardOf(token, c.cfg.Shards)),
		MaxLen: c.cfg.StreamMaxLen,
		Approx: true,
		Values: cmd.values(),
	}).Err()
	cancel()
	if err != nil {
		if !neverSent(err) {
			go c.cancelCommand(token, cmd.ID) // the caller is answered at once
		}
		return reply{}, unavailable(err, "queue command")
	}

	wait := time.Until(deadline)
	if wait <= 0 {
		return reply{}, ErrNoReply
	}
	bctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// BLPOP takes whole seconds here; the context cuts the wait at the exact
	// deadline when rdb has ContextTimeoutEnabled.
	got, err := c.rdb.BLPop(bctx, ceilSecond(wait), c.keys.reply(cmd.ID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return reply{}, ErrNoReply
	case err != nil && (bctx.Err() != nil || time.Until(deadline) < 50*time.Millisecond):
		// The connection's read deadline (ContextTimeoutEnabled) can fire
		// an instant before the context reports it.
		return reply{}, ErrNoReply
	case err != nil:
		return reply{}, unavailable(err, "wait for reply")
	case len(got) != 2:
		return reply{}, shared.Wrap(fmt.Errorf("BLPOP answered %d values", len(got)), shared.EINTERNAL, "internal error")
	}
	var r reply
	if err := json.Unmarshal([]byte(got[1]), &r); err != nil {
		return reply{}, shared.Wrap(fmt.Errorf("failed to decode reply: %w", err), shared.EINTERNAL, "internal error")
	}
	return r, nil
}

// cancelCommand marks a command whose XADD failed as taken, so that no
// connector runs it: a Redis that hangs may still have the command in its
// socket and run the XADD after the caller was answered 503. It is best
// effort: when Redis still does not answer, the command's deadline is what
// bounds it.
func (c *Client) cancelCommand(token, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RedisTimeout)
	defer cancel()
	key := c.keys.done(ShardOf(token, c.cfg.Shards), id)
	_ = c.rdb.SetNX(ctx, key, pendingMarker+"cancelled by the API", DefaultDoneTTL).Err() // Redis may still be away
}

// neverSent reports whether err means the command cannot have reached
// Redis: no connection could be made.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ceilSecond rounds d up to a whole second, at least one.
func ceilSecond(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second * time.Second
	return max(s, time.Second)
}
