package redisbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// StatePublisher defaults.
const (
	DefaultStatusTTL       = 3 * time.Minute
	DefaultRefreshInterval = time.Minute
	DefaultPublishTimeout  = 2 * time.Second
	DefaultMaxBackoff      = 5 * time.Second
	// publishBatch is the most keys one pipeline writes.
	publishBatch = 500
)

// PublisherConfig configures a StatePublisher. A zero field takes its default.
type PublisherConfig struct {
	// Prefix starts every key name; see ClientConfig.Prefix. Default "wago".
	Prefix string
	// StatusTTL is the TTL of the status and QR keys: the keys of a
	// connector that died are gone after at most this long. (With Owner
	// set, its sessions stop reading as connected much sooner: see
	// status.go.) Default 3 min.
	StatusTTL time.Duration
	// RefreshInterval is how often every published key is written again
	// (which renews its TTL, and restores it after a Redis restart). It must
	// be below StatusTTL. Default 1 min.
	RefreshInterval time.Duration
	// Timeout bounds one write pipeline. Default 2 s.
	Timeout time.Duration
	// MaxBackoff caps the wait between retries while Redis fails. Default 5 s.
	MaxBackoff time.Duration
	// Owner, when set, returns the lease of the token's shard this
	// connector holds ("" when it does not own the shard): statuses are
	// stamped with it at each write, and none is written for a shard the
	// connector does not own (see status.go).
	Owner func(token string) string
	// Logger receives write failures. Default slog.Default().
	Logger *slog.Logger
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.StatusTTL == 0 {
		c.StatusTTL = DefaultStatusTTL
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = min(DefaultRefreshInterval, c.StatusTTL/3)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultPublishTimeout
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
func (c PublisherConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.StatusTTL < time.Millisecond:
		return fmt.Errorf("%w: StatusTTL must be at least 1ms", ErrInvalidConfig)
	case c.RefreshInterval <= 0 || c.RefreshInterval >= c.StatusTTL:
		return fmt.Errorf("%w: RefreshInterval must be positive and below StatusTTL", ErrInvalidConfig)
	case c.Timeout < 0, c.MaxBackoff < 0:
		return fmt.Errorf("%w: Timeout and MaxBackoff must be positive", ErrInvalidConfig)
	}
	return nil
}

// StatePublisher writes, on the connector side, the status and QR keys that
// Client.Status and Client.QR read. Publish never blocks: it records the
// latest state of the token in memory and Run writes it asynchronously.
// Run also rewrites every known key each RefreshInterval, so the keys of a
// dead connector expire within StatusTTL; while Redis fails it keeps the
// latest state and writes it when Redis answers again.
type StatePublisher struct {
	rdb  redis.UniversalClient
	cfg  PublisherConfig
	keys keys

	// stateLock guards entries, dirty and forgotten.
	stateLock sync.Mutex
	entries   map[string]pubEntry // token -> latest state
	// dirty holds the tokens to write on the next flush: true when the
	// state changed (a QR code that is gone is deleted), false for a
	// refresh.
	dirty     map[string]bool
	forgotten map[string]struct{} // tokens whose keys to delete
	wake      chan struct{}       // capacity 1: something to flush
}

type pubEntry struct {
	status shared.Status
	qr     string
}

// NewStatePublisher returns a StatePublisher on rdb. It panics if cfg is
// invalid: call cfg.Validate first to get an error instead.
func NewStatePublisher(rdb redis.UniversalClient, cfg PublisherConfig) *StatePublisher {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if rdb == nil {
		panic("redisbus: NewStatePublisher with a nil Redis client")
	}
	cfg = cfg.withDefaults()
	return &StatePublisher{
		rdb:       rdb,
		cfg:       cfg,
		keys:      keys{cfg.Prefix},
		entries:   make(map[string]pubEntry),
		dirty:     make(map[string]bool),
		forgotten: make(map[string]struct{}),
		wake:      make(chan struct{}, 1),
	}
}

// Publish records the latest state of token and its current QR code ("" for
// none). It never blocks on Redis; call it from event handlers.
func (p *StatePublisher) Publish(token string, st shared.Status, qr string) {
	p.stateLock.Lock()
	p.entries[token] = pubEntry{status: st, qr: qr}
	p.dirty[token] = true
	delete(p.forgotten, token)
	p.stateLock.Unlock()
	p.signal()
}

// Forget stops publishing token and deletes its keys (after Delete). It
// never blocks on Redis.
func (p *StatePublisher) Forget(token string) {
	p.stateLock.Lock()
	delete(p.entries, token)
	delete(p.dirty, token)
	p.forgotten[token] = struct{}{}
	p.stateLock.Unlock()
	p.signal()
}

// Release stops publishing token without touching its keys: call it when
// the token's shard moved to another connector, which now writes them.
func (p *StatePublisher) Release(token string) {
	p.stateLock.Lock()
	delete(p.entries, token)
	delete(p.dirty, token)
	p.stateLock.Unlock()
}

func (p *StatePublisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run writes published states until ctx ends, then makes one last bounded
// attempt to write what is pending and returns nil. The keys then expire
// after StatusTTL unless another publisher writes them.
func (p *StatePublisher) Run(ctx context.Context) error {
	refresh := time.NewTicker(p.cfg.RefreshInterval)
	defer refresh.Stop()
	var (
		retry   *time.Timer
		retryC  <-chan time.Time
		backoff time.Duration
	)
	for {
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			if err := p.flush(context.WithoutCancel(ctx)); err != nil {
				p.cfg.Logger.Warn("redisbus: final status write failed", "err", err)
			}
			return nil
		case <-p.wake:
		case <-retryC:
			retryC = nil
		case <-refresh.C:
			p.markAllDirty()
		}
		if retryC != nil {
			continue // a retry is scheduled: let it batch the changes
		}
		if err := p.flush(ctx); err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), p.cfg.MaxBackoff)
			p.cfg.Logger.Warn("redisbus: status write failed; retrying", "err", err, "backoff", backoff)
			retry = time.NewTimer(backoff)
			retryC = retry.C
			continue
		}
		backoff = 0
	}
}

func (p *StatePublisher) markAllDirty() {
	p.stateLock.Lock()
	for token := range p.entries {
		p.dirty[token] = p.dirty[token] // a pending change stays a change
	}
	p.stateLock.Unlock()
}

// flush writes the dirty entries and deletes the forgotten keys. On failure
// the tokens are marked again, unless a newer Publish or Forget superseded
// them.
func (p *StatePublisher) flush(ctx context.Context) error {
	p.stateLock.Lock()
	writes := make(map[string]pubWrite, len(p.dirty))
	for token, changed := range p.dirty {
		writes[token] = pubWrite{p.entries[token], changed}
	}
	deletes := make([]string, 0, len(p.forgotten))
	for token := range p.forgotten {
		deletes = append(deletes, token)
	}
	clear(p.dirty)
	clear(p.forgotten)
	p.stateLock.Unlock()
	if len(writes) == 0 && len(deletes) == 0 {
		return nil
	}

	err := p.write(ctx, writes, deletes)
	if err != nil {
		p.stateLock.Lock()
		for token, w := range writes {
			if _, ok := p.entries[token]; ok {
				p.dirty[token] = p.dirty[token] || w.changed
			}
		}
		for _, token := range deletes {
			if _, ok := p.entries[token]; !ok {
				p.forgotten[token] = struct{}{}
			}
		}
		p.stateLock.Unlock()
	}
	return err
}

// pubWrite is one status to write; changed is false for a refresh.
type pubWrite struct {
	pubEntry
	changed bool
}

func (p *StatePublisher) write(ctx context.Context, writes map[string]pubWrite, deletes []string) error {
	pipe := p.rdb.Pipeline()
	n := 0
	exec := func() error {
		if n == 0 {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
		n = 0
		if _, err := pipe.Exec(wctx); err != nil {
			return fmt.Errorf("failed to write statuses: %w", err)
		}
		return nil
	}
	// The commands take ctx only for tracing hooks; exec's context bounds
	// the round trip.
	for token, e := range writes {
		stored := storedStatus{Status: e.status}
		if p.cfg.Owner != nil {
			if stored.Owner = p.cfg.Owner(token); stored.Owner == "" {
				continue // the shard moved: its next owner writes the keys
			}
		}
		raw, err := json.Marshal(stored)
		if err != nil { // a Status always encodes
			return fmt.Errorf("failed to encode status: %w", err)
		}
		pipe.Set(ctx, p.keys.status(token), raw, p.cfg.StatusTTL)
		if e.qr != "" {
			pipe.Set(ctx, p.keys.qr(token), e.qr, p.cfg.StatusTTL)
		} else if e.changed {
			pipe.Del(ctx, p.keys.qr(token))
		}
		if n++; n >= publishBatch {
			if err := exec(); err != nil {
				return err
			}
		}
	}
	for _, token := range deletes {
		// Two DELs: the keys may be in different Cluster slots.
		pipe.Del(ctx, p.keys.status(token))
		pipe.Del(ctx, p.keys.qr(token))
		if n++; n >= publishBatch {
			if err := exec(); err != nil {
				return err
			}
		}
	}
	return exec()
}
