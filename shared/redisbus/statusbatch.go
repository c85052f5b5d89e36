package redisbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Status reads in batches (group commit).
//
// A status read is a pipeline of a few GETs: the cost of each is nearly all
// in its round trip (a write and a read system call here, the same in
// Redis), not in the commands. So the reads that arrive while one pipeline
// is in flight wait for it and go together in the next: under load one
// round trip serves tens of requests, and the shards' leases they share are
// read once. A lone read goes at once, as before. Every reader still gets
// its answer or an error within RedisTimeout of its call.

// batchedStatuses is the most tokens a read may have to join a batch;
// longer lists (/session/all) go alone, not to hold up the short ones.
const batchedStatuses = 16

// statusBatcher queues the status reads of a Client. One batch is in
// flight at a time: the reads that arrive meanwhile make the next one.
type statusBatcher struct {
	mu       sync.Mutex
	queue    []*statusRead
	inFlight bool
}

// statusRead is one caller's read in a batch.
type statusRead struct {
	tokens []string
	out    []shared.Status
	err    error
	done   chan struct{}
}

// batchStatuses reads the statuses of tokens (at most batchedStatuses) in
// the next batch, within RedisTimeout. With no batch in flight the caller
// sends its own at once (with whatever else queued), on its own goroutine;
// the reads queued meanwhile go on in a goroutine of their own.
func (c *Client) batchStatuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
	r := &statusRead{tokens: tokens, done: make(chan struct{})}
	b := &c.statuses
	b.mu.Lock()
	b.queue = append(b.queue, r)
	lead := !b.inFlight
	b.inFlight = true
	b.mu.Unlock()
	if lead {
		if c.flushStatuses(true) {
			go c.flushStatuses(false)
		}
		return r.out, r.err
	}
	wait, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	select {
	case <-r.done:
		return r.out, r.err
	case <-wait.Done():
		// The batch still runs and delivers to r, which nobody reads.
		return nil, unavailable(wait.Err(), "read statuses")
	}
}

// flushStatuses sends the queued reads in one pipeline, and again while
// more have queued meanwhile, until none is left, or (once) after the
// first batch if once is set: it then reports whether more are queued,
// still in flight for the caller to flush.
func (c *Client) flushStatuses(once bool) (more bool) {
	b := &c.statuses
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		if len(batch) == 0 {
			b.inFlight = false
			b.mu.Unlock()
			return false
		}
		b.mu.Unlock()
		c.readBatch(batch)
		if once {
			b.mu.Lock()
			more = len(b.queue) > 0
			if !more {
				b.inFlight = false
			}
			b.mu.Unlock()
			return more
		}
	}
}

// readBatch reads the statuses of every read of batch in one pipelined
// round trip, and delivers them: a status that does not decode fails only
// the read it belongs to.
func (c *Client) readBatch(batch []*statusRead) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RedisTimeout)
	defer cancel()
	c.readStatuses(ctx, batch)
	for _, r := range batch {
		close(r.done)
	}
}

// readStatuses reads the statuses of reads in one pipelined round trip:
// the status keys, and the lease of each shard concerned (once).
func (c *Client) readStatuses(ctx context.Context, reads []*statusRead) {
	var all []string
	for _, r := range reads {
		all = append(all, r.tokens...)
	}
	var mark cacheMark
	if c.cache != nil {
		mark = c.cache.mark()
	}
	pipe := c.rdb.Pipeline()
	values := c.queueStatusKeys(ctx, pipe, all)
	leases := c.queueLeases(ctx, pipe, all)
	_, err := pipe.Exec(ctx)
	var raws [][]byte
	if err == nil || errors.Is(err, redis.Nil) {
		raws, err = values()
	}
	if err != nil {
		for _, r := range reads {
			r.err = unavailable(err, "read statuses")
		}
		return
	}
	for _, r := range reads {
		var holds []time.Duration
		r.out, holds, r.err = c.decodeStatuses(r.tokens, raws[:len(r.tokens)], leases)
		if r.err == nil && c.cache != nil {
			c.cache.put(mark, r.tokens, r.out, holds)
		}
		raws = raws[len(r.tokens):]
	}
}

// decodeStatuses decodes the values of the status keys of tokens (nil:
// missing, a session without a client), with how long each holds (see
// decodeStatusValue).
func (c *Client) decodeStatuses(tokens []string, raws [][]byte, leases map[int]shardLease) ([]shared.Status, []time.Duration, error) {
	out := make([]shared.Status, len(tokens))
	holds := make([]time.Duration, len(tokens))
	for i, token := range tokens {
		if raws[i] == nil {
			out[i] = shared.Status{State: shared.StateDisconnected}
			continue
		}
		st, h, err := c.decodeStatusValue(token, raws[i], leases)
		if err != nil {
			return nil, nil, err
		}
		out[i], holds[i] = st, h
	}
	return out, holds, nil
}

// mgetKeys is the most keys one MGET reads.
const mgetKeys = 500

// queueStatusKeys adds to pipe the reads of the status keys of tokens, and
// returns what gives their values once it has run (nil for a missing key).
// A single Redis server reads them with MGETs, a command for hundreds of
// keys; a Cluster with a GET each, as the keys of tokens are in different
// slots.
func (c *Client) queueStatusKeys(ctx context.Context, pipe redis.Pipeliner, tokens []string) func() ([][]byte, error) {
	keys := make([]string, len(tokens))
	for i, token := range tokens {
		keys[i] = c.keys.status(token)
	}
	if _, cluster := c.rdb.(*redis.ClusterClient); cluster {
		cmds := make([]*redis.StringCmd, len(keys))
		for i, key := range keys {
			cmds[i] = pipe.Get(ctx, key)
		}
		return func() ([][]byte, error) {
			out := make([][]byte, len(cmds))
			for i, cmd := range cmds {
				raw, err := cmd.Bytes()
				if err != nil && !errors.Is(err, redis.Nil) {
					return nil, err
				}
				out[i] = raw
			}
			return out, nil
		}
	}
	var cmds []*redis.SliceCmd
	for chunk := range slices.Chunk(keys, mgetKeys) {
		cmds = append(cmds, pipe.MGet(ctx, chunk...))
	}
	return func() ([][]byte, error) {
		out := make([][]byte, 0, len(keys))
		for _, cmd := range cmds {
			vals, err := cmd.Result()
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				switch v := v.(type) {
				case nil:
					out = append(out, nil)
				case string:
					out = append(out, []byte(v))
				default:
					return nil, fmt.Errorf("MGET answered a %T", v)
				}
			}
		}
		if len(out) != len(keys) {
			return nil, fmt.Errorf("MGET answered %d values for %d keys", len(out), len(keys))
		}
		return out, nil
	}
}
