package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Outbox is shared.Outbox on Redis, shared by every connector:
//
//	<prefix>:hook:events:{<shard>}  stream of the shard's new events (fields seq and
//	                            ev, the event JSON), read in the consumer group
//	                            "delivery" by the connector that owns the shard, so
//	                            that a token's first attempts are made in order by one
//	                            process; an entry is XACKed and XDELed once its first
//	                            attempt has ended
//	<prefix>:hook:seq:<token>   the token's last sequence number (INCR)
//	<prefix>:hook:id:<id>       the event ID was appended (SET NX, 24 h): a
//	                            redelivered message is not queued twice
//	<prefix>:hook:retry         ZSET id -> when the next attempt is due (unix ms);
//	                            a claimed retry is leased by moving its score ahead
//	<prefix>:hook:retry:data    HASH id -> the delivery JSON (attempts, last error)
//	<prefix>:hook:dead          ZSET id -> when it was buried (unix ms)
//	<prefix>:hook:dead:data     HASH id -> the delivery JSON
//
// An entry read by a consumer that dies stays pending in the group and is
// claimed by another after ClaimIdle (XAUTOCLAIM), or as soon as the
// consumer is no longer alive (OutboxConfig.Alive); a claimed retry whose
// consumer dies is due again when its lease ends. Events are as durable
// as Redis's persistence (use AOF with appendfsync everysec or always).
type Outbox struct {
	rdb      redis.UniversalClient
	prefix   string
	consumer string
	shards   int
	owned    func() []int
	alive    func(ctx context.Context, consumer string) (bool, error)
	// ClaimIdle is how long an attempt may last before another consumer
	// takes its event over; it must exceed the delivery timeout.
	claimIdle time.Duration

	// groups are the streams whose group exists, and claimedAt when each
	// stream's stale entries were last claimed (Next's goroutine only).
	groups    map[int]bool
	claimedAt map[int]time.Time
}

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	// Prefix is the key prefix; "" for DefaultPrefix.
	Prefix string
	// Consumer names this process in the group; "" for host name, pid
	// and a random suffix.
	Consumer string
	// Shards is the number of shards (WAGO_SHARDS); default 1.
	Shards int
	// Owned returns the shards whose events this process delivers (the
	// connector's leases); nil: every shard.
	Owned func() []int
	// Alive, when set, tells whether a consumer of the group is alive
	// (Server.Member, with Consumer set to the Server's ConsumerID): the
	// pending entries of a dead one (a killed or stopped connector) are
	// claimed at once, not after ClaimIdle.
	Alive func(ctx context.Context, consumer string) (bool, error)
}

var _ shared.Outbox = (*Outbox)(nil)

const (
	outboxGroup     = "delivery"
	outboxIDTTL     = 24 * time.Hour
	outboxClaimIdle = time.Minute
	// outboxClaimEvery is how often Next looks for stale entries.
	outboxClaimEvery = 10 * time.Second
)

// NewOutbox returns an Outbox on rdb. Each process that delivers needs its
// own.
func NewOutbox(rdb redis.UniversalClient, cfg OutboxConfig) *Outbox {
	prefix, consumer, shards, owned := cfg.Prefix, cfg.Consumer, max(cfg.Shards, 1), cfg.Owned
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if owned == nil {
		owned = func() []int {
			all := make([]int, shards)
			for i := range all {
				all[i] = i
			}
			return all
		}
	}
	if consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return &Outbox{rdb: rdb, prefix: prefix, consumer: consumer, shards: shards, owned: owned, alive: cfg.Alive,
		claimIdle: outboxClaimIdle, groups: map[int]bool{}, claimedAt: map[int]time.Time{}}
}

// stream is the key of shard's event stream.
func (o *Outbox) stream(shard int) string {
	return fmt.Sprintf("%s:hook:events:{%d}", o.prefix, shard)
}

func (o *Outbox) key(parts ...string) string {
	return o.prefix + ":hook:" + strings.Join(parts, ":")
}

// appendScript: KEYS stream, seq, id marker; ARGV event JSON, marker TTL
// (s). Returns the sequence number, or 0 for an ID already appended.
var appendScript = redis.NewScript(`
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '*', 'seq', seq, 'ev', ARGV[1])
return seq`)

// Append implements shared.Outbox.
func (o *Outbox) Append(ctx context.Context, ev *shared.Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("failed to encode an outbox event: %w", err)
	}
	seq, err := appendScript.Run(ctx, o.rdb, []string{o.stream(ShardOf(ev.Token, o.shards)), o.key("seq", ev.Token), o.key("id", ev.ID)},
		raw, int(outboxIDTTL/time.Second)).Int64()
	if err != nil {
		return unavailable(err, "append to the webhook outbox")
	}
	if seq > 0 {
		ev.Seq = seq
	}
	return nil
}

// ensureGroup creates shard's consumer group once (BUSYGROUP: it exists).
func (o *Outbox) ensureGroup(ctx context.Context, shard int) error {
	if o.groups[shard] {
		return nil
	}
	err := o.rdb.XGroupCreateMkStream(ctx, o.stream(shard), outboxGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable(err, "create the webhook consumer group")
	}
	o.groups[shard] = true
	return nil
}

// claimRetries: KEYS retry zset, retry hash; ARGV now (ms), max, lease
// end (ms). Returns the JSON of the due retries, leased until the end.
var claimRetries = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
	local d = redis.call('HGET', KEYS[2], id)
	if d then
		redis.call('ZADD', KEYS[1], ARGV[3], id)
		table.insert(out, d)
	else
		redis.call('ZREM', KEYS[1], id)
	end
end
return out`)

// Next implements shared.Outbox: due retries first, then stale entries of
// dead consumers in the owned shards, then the owned shards' new entries
// (waiting up to wait for one).
func (o *Outbox) Next(ctx context.Context, limit int, wait time.Duration) ([]shared.Delivery, error) {
	now := time.Now()
	var out []shared.Delivery
	raws, err := claimRetries.Run(ctx, o.rdb, []string{o.key("retry"), o.key("retry", "data")},
		now.UnixMilli(), limit, now.Add(o.claimIdle).UnixMilli()).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err, "read the webhook retries")
	}
	for _, raw := range raws {
		var d shared.Delivery
		if err := json.Unmarshal([]byte(raw), &d); err == nil {
			out = append(out, d)
		}
	}
	owned := o.owned()
	for _, shard := range owned {
		if err := o.ensureGroup(ctx, shard); err != nil {
			return out, err
		}
	}
	for _, shard := range owned {
		if len(out) >= limit || now.Sub(o.claimedAt[shard]) < outboxClaimEvery {
			continue
		}
		o.claimedAt[shard] = now
		msgs, err := o.claimDead(ctx, shard, limit-len(out))
		if err != nil {
			return out, err
		}
		out = append(out, o.decode(ctx, o.stream(shard), msgs)...)
		if len(out) >= limit {
			continue
		}
		msgs, _, err = o.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: o.stream(shard), Group: outboxGroup, Consumer: o.consumer,
			MinIdle: o.claimIdle, Start: "0-0", Count: int64(limit - len(out)),
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return out, unavailable(err, "claim stale webhook events")
		}
		out = append(out, o.decode(ctx, o.stream(shard), msgs)...)
	}
	if len(out) >= limit {
		return out, nil
	}
	block := wait
	if len(out) > 0 {
		block = -1 // do not wait: there is work already
	} else if zs, err := o.rdb.ZRangeWithScores(ctx, o.key("retry"), 0, 0).Result(); err == nil && len(zs) == 1 {
		// Wake for the next retry (block 0 would mean forever).
		block = max(min(block, time.Until(time.UnixMilli(int64(zs[0].Score)))), time.Millisecond)
	}
	if len(owned) == 0 {
		if block > 0 {
			t := time.NewTimer(block)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		return out, nil
	}
	streams := make([]string, 0, 2*len(owned))
	for _, shard := range owned {
		streams = append(streams, o.stream(shard))
	}
	for range owned {
		streams = append(streams, ">")
	}
	res, err := o.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: outboxGroup, Consumer: o.consumer, Streams: streams,
		Count: int64(max(1, (limit-len(out))/len(owned))), Block: block,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() != nil {
			return out, nil
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			o.groups = map[int]bool{}
		}
		return out, unavailable(err, "read the webhook events")
	}
	for _, st := range res {
		out = append(out, o.decode(ctx, st.Stream, st.Messages)...)
	}
	return out, nil
}

// claimDead claims up to limit pending entries of shard whose consumer is
// dead (with Alive only): a killed connector's attempts are taken over as
// soon as its shard is, not ClaimIdle later.
func (o *Outbox) claimDead(ctx context.Context, shard, limit int) ([]redis.XMessage, error) {
	if o.alive == nil {
		return nil, nil
	}
	stream := o.stream(shard)
	pend, err := o.rdb.XPending(ctx, stream, outboxGroup).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err, "read the pending webhook events")
	}
	if err != nil || pend.Count == 0 {
		return nil, nil
	}
	var out []redis.XMessage
	for consumer := range pend.Consumers {
		if consumer == o.consumer || len(out) >= limit {
			continue
		}
		alive, err := o.alive(ctx, consumer)
		if err != nil {
			return out, unavailable(err, "read the connectors' membership")
		}
		if alive {
			continue // its attempts are its own until ClaimIdle
		}
		ps, err := o.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: outboxGroup, Start: "-", End: "+", Count: int64(limit - len(out)), Consumer: consumer,
		}).Result()
		if err != nil {
			return out, unavailable(err, "read a dead connector's webhook events")
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		if len(ids) == 0 {
			continue
		}
		msgs, err := o.rdb.XClaim(ctx, &redis.XClaimArgs{
			Stream: stream, Group: outboxGroup, Consumer: o.consumer, MinIdle: 0, Messages: ids,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return out, unavailable(err, "claim a dead connector's webhook events")
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// Member reports whether consumer is a live Server: one that heartbeated
// within LeaseTTL/3 (OutboxConfig.Alive).
func (s *Server) Member(ctx context.Context, consumer string) (bool, error) {
	seen, err := s.rdb.ZScore(ctx, s.keys.members(), consumer).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return time.Since(time.UnixMilli(int64(seen))) <= s.renewInterval(), nil
}

// decode turns stream entries into deliveries; an entry that does not
// decode is dropped (acknowledged), as it never will.
func (o *Outbox) decode(ctx context.Context, stream string, msgs []redis.XMessage) []shared.Delivery {
	var out []shared.Delivery
	for _, m := range msgs {
		raw, _ := m.Values["ev"].(string)
		var d shared.Delivery
		if err := json.Unmarshal([]byte(raw), &d.Event); err != nil {
			o.ack(ctx, o.rdb, stream+" "+m.ID)
			continue
		}
		if s, ok := m.Values["seq"].(string); ok {
			d.Seq, _ = strconv.ParseInt(s, 10, 64)
		}
		d.Receipt, d.NextAt = stream+" "+m.ID, time.Now()
		out = append(out, d)
	}
	return out
}

// ack acknowledges and deletes the stream entry of a receipt ("<stream> <id>").
func (o *Outbox) ack(ctx context.Context, c redis.Cmdable, receipt string) {
	stream, id, _ := strings.Cut(receipt, " ")
	c.XAck(ctx, stream, outboxGroup, id)
	c.XDel(ctx, stream, id)
}

// end runs fn and the acknowledgement of d's stream entry in one
// transaction.
func (o *Outbox) end(ctx context.Context, d shared.Delivery, what string, fn func(redis.Pipeliner)) error {
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		if d.Receipt != "" {
			o.ack(ctx, p, d.Receipt)
		}
		return nil
	})
	if err != nil {
		return unavailable(err, what)
	}
	return nil
}

// Done implements shared.Outbox.
func (o *Outbox) Done(ctx context.Context, d shared.Delivery) error {
	return o.end(ctx, d, "remove a delivered webhook event", func(p redis.Pipeliner) {
		p.ZRem(ctx, o.key("retry"), d.ID)
		p.HDel(ctx, o.key("retry", "data"), d.ID)
	})
}

// Retry implements shared.Outbox.
func (o *Outbox) Retry(ctx context.Context, d shared.Delivery) error {
	raw, err := json.Marshal(d) // without the receipt (json:"-")
	if err != nil {
		return fmt.Errorf("failed to encode a webhook retry: %w", err)
	}
	return o.end(ctx, d, "schedule a webhook retry", func(p redis.Pipeliner) {
		p.HSet(ctx, o.key("retry", "data"), d.ID, raw)
		p.ZAdd(ctx, o.key("retry"), redis.Z{Score: float64(d.NextAt.UnixMilli()), Member: d.ID})
	})
}

// Bury implements shared.Outbox.
func (o *Outbox) Bury(ctx context.Context, d shared.Delivery) error {
	raw, err := json.Marshal(d) // without the receipt (json:"-")
	if err != nil {
		return fmt.Errorf("failed to encode a dead letter: %w", err)
	}
	return o.end(ctx, d, "park a dead letter", func(p redis.Pipeliner) {
		p.HSet(ctx, o.key("dead", "data"), d.ID, raw)
		p.ZAdd(ctx, o.key("dead"), redis.Z{Score: float64(time.Now().UnixMilli()), Member: d.ID})
		p.ZRem(ctx, o.key("retry"), d.ID)
		p.HDel(ctx, o.key("retry", "data"), d.ID)
	})
}

// deadLetters returns the dead letters, oldest first, of token ("": all),
// up to limit (0: no limit).
func (o *Outbox) deadLetters(ctx context.Context, token string, limit int) ([]shared.Delivery, error) {
	const page = 500
	var out []shared.Delivery
	for start := int64(0); ; start += page {
		ids, err := o.rdb.ZRange(ctx, o.key("dead"), start, start+page-1).Result()
		if err != nil {
			return nil, unavailable(err, "read the dead letters")
		}
		if len(ids) == 0 {
			return out, nil
		}
		raws, err := o.rdb.HMGet(ctx, o.key("dead", "data"), ids...).Result()
		if err != nil {
			return nil, unavailable(err, "read the dead letters")
		}
		for _, v := range raws {
			s, ok := v.(string)
			if !ok {
				continue
			}
			var d shared.Delivery
			if json.Unmarshal([]byte(s), &d) != nil || token != "" && d.Token != token {
				continue
			}
			out = append(out, d)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
	}
}

// Failed implements shared.DeadLetters.
func (o *Outbox) Failed(ctx context.Context, token string, limit int) ([]shared.Delivery, error) {
	out, err := o.deadLetters(ctx, token, limit)
	if out == nil && err == nil {
		out = []shared.Delivery{}
	}
	return out, err
}

// Replay implements shared.DeadLetters.
func (o *Outbox) Replay(ctx context.Context, token string, ids []string) (int, error) {
	all, err := o.deadLetters(ctx, token, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	now := time.Now()
	for _, d := range all {
		if len(ids) > 0 && !contains(ids, d.ID) {
			continue
		}
		d.Attempts, d.LastError, d.NextAt = 0, "", now
		raw, err := json.Marshal(d)
		if err != nil {
			continue
		}
		_, err = o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, o.key("retry", "data"), d.ID, raw)
			p.ZAdd(ctx, o.key("retry"), redis.Z{Score: float64(now.UnixMilli()), Member: d.ID})
			p.ZRem(ctx, o.key("dead"), d.ID)
			p.HDel(ctx, o.key("dead", "data"), d.ID)
			return nil
		})
		if err != nil {
			return n, unavailable(err, "replay a dead letter")
		}
		n++
	}
	return n, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// QueueStats implements shared.QueueStater for the whole outbox (every
// shard, whichever connector delivers it): New counts the entries of the
// shards' streams, Oldest is the oldest of those (a retry keeps no order).
func (o *Outbox) QueueStats(ctx context.Context) (shared.QueueStats, error) {
	var st shared.QueueStats
	pipe := o.rdb.Pipeline()
	lens := make([]*redis.IntCmd, o.shards)
	firsts := make([]*redis.XMessageSliceCmd, o.shards)
	for shard := range o.shards {
		lens[shard] = pipe.XLen(ctx, o.stream(shard))
		firsts[shard] = pipe.XRangeN(ctx, o.stream(shard), "-", "+", 1)
	}
	retrying := pipe.ZCard(ctx, o.key("retry"))
	dead := pipe.ZCard(ctx, o.key("dead"))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return st, unavailable(err, "count the webhook outbox")
	}
	for shard := range o.shards {
		st.New += int(lens[shard].Val())
		if msgs := firsts[shard].Val(); len(msgs) == 1 {
			ms, _, _ := strings.Cut(msgs[0].ID, "-")
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				if t := time.UnixMilli(n); st.Oldest.IsZero() || t.Before(st.Oldest) {
					st.Oldest = t
				}
			}
		}
	}
	st.Retrying, st.Dead = int(retrying.Val()), int(dead.Val())
	return st, nil
}
