package redisbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shard ownership.
//
// A Server owns a shard while it holds the shard's lease: the key
// <prefix>:lease:{<shard>} with the value "<consumerID>:<epoch>" and a PX
// TTL of LeaseTTL. Acquiring is SET NX PX done in a Lua script that also
// INCRs <prefix>:epoch:{<shard>}, so every acquisition has a new value and a
// Server that lost its lease can neither renew it (renewal is a
// check-and-PEXPIRE on the exact value) nor run commands (beginScript checks
// the exact value before marking a command as started).
//
// Policy: every balance interval (LeaseTTL/15, 1 s by default) each Server
// heartbeats its membership in <prefix>:members (a ZSET of consumer IDs
// scored by the time they were last seen), drops the members not seen for
// LeaseTTL/3, and takes its fair share from the live ones: ordered by
// consumer ID, the member at rank i gets Shards/n shards, one more if
// i < Shards%n, so that the shares add up to Shards. A Server above its
// share releases the excess at once (gracefully: see release), and a
// Server below it acquires free shards up to it; so N Servers started
// together converge within a few balance intervals, a joiner gets its share
// as soon as the others have released theirs, and the shards of a dead
// Server (one not seen for LeaseTTL/3 has no share any more) are taken as
// soon as its leases expire. A fresh Server heartbeats once before it
// acquires anything, so that peers starting at the same moment see each
// other before the first of them takes every shard. Leases are renewed
// every LeaseTTL/3; a Server that cannot renew a lease before it would
// expire treats it as lost and releases the shard (OnRelease) before
// another Server can acquire it.

var (
	// acquireScript: KEYS lease, epoch; ARGV consumerID, ttl ms.
	// Returns the new epoch, or 0 when the lease is held.
	acquireScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch`)

	// renewScript: KEYS lease; ARGV value, ttl ms. Returns 1 if renewed.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

	// releaseScript: KEYS lease; ARGV value. Deletes the lease if held.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

	// beginScript: KEYS lease, done; ARGV value, marker, ttl s.
	// Returns {-1} if the lease is not held, {1} if the done marker was set
	// (run the command), {0, existing} if it already existed.
	beginScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then return {1} end
return {0, redis.call('GET', KEYS[2]) or ''}`)
)

// lease is a held shard lease.
type lease struct {
	shard int
	epoch int64
	value string // "<consumerID>:<epoch>"
	// validUntil (unix ns) is when the lease expires at the latest as far
	// as this process knows: the send time of the last successful renewal
	// plus LeaseTTL.
	validUntil atomic.Int64
}

// tryAcquire takes the lease of shard if it is free; nil if it is held.
func (s *Server) tryAcquire(ctx context.Context, shard int) (*lease, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	start := time.Now()
	epoch, err := acquireScript.Run(ctx, s.rdb,
		[]string{s.keys.lease(shard), s.keys.epoch(shard)},
		s.cfg.ConsumerID, s.cfg.LeaseTTL.Milliseconds()).Int64()
	if err != nil {
		return nil, fmt.Errorf("failed to acquire lease of shard %d: %w", shard, err)
	}
	if epoch == 0 {
		return nil, nil
	}
	l := &lease{shard: shard, epoch: epoch, value: s.cfg.ConsumerID + ":" + strconv.FormatInt(epoch, 10)}
	l.validUntil.Store(start.Add(s.cfg.LeaseTTL).UnixNano())
	return l, nil
}

// renew extends l. It reports ErrLeaseLost when another holder has it.
func (s *Server) renew(ctx context.Context, l *lease) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	start := time.Now()
	n, err := renewScript.Run(ctx, s.rdb, []string{s.keys.lease(l.shard)},
		l.value, s.cfg.LeaseTTL.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("failed to renew lease of shard %d: %w", l.shard, err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	l.validUntil.Store(start.Add(s.cfg.LeaseTTL).UnixNano())
	return nil
}

// expiring reports whether l may expire before the next renewal could
// extend it: then the shard must be released now.
func (s *Server) expiring(l *lease) bool {
	next := time.Now().Add(s.renewInterval() + s.cfg.RedisTimeout)
	return next.UnixNano() >= l.validUntil.Load()
}

// releaseLease deletes l if it is still held.
func (s *Server) releaseLease(l *lease) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	err := releaseScript.Run(ctx, s.rdb, []string{s.keys.lease(l.shard)}, l.value).Err()
	if err != nil {
		return fmt.Errorf("failed to release lease of shard %d: %w", l.shard, err)
	}
	return nil
}

func (s *Server) renewInterval() time.Duration { return s.cfg.LeaseTTL / 3 }

// balanceInterval is how often a Server heartbeats and rebalances.
func (s *Server) balanceInterval() time.Duration { return s.cfg.LeaseTTL / 15 }

// heartbeat marks this Server live in the members set and answers the live
// members (seen within LeaseTTL/3), ordered by consumer ID.
func (s *Server) heartbeat(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	now := time.Now()
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, s.keys.members(), redis.Z{Score: float64(now.UnixMilli()), Member: s.cfg.ConsumerID})
	stale := now.Add(-s.renewInterval()).UnixMilli()
	pipe.ZRemRangeByScore(ctx, s.keys.members(), "-inf", "("+strconv.FormatInt(stale, 10))
	live := pipe.ZRange(ctx, s.keys.members(), 0, -1)
	pipe.PExpire(ctx, s.keys.members(), 10*s.cfg.LeaseTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("failed to heartbeat: %w", err)
	}
	members := live.Val()
	slices.Sort(members)
	return members, nil
}

// fairShare is the number of shards the member id should own among the
// live members (sorted): shards/n each, and one more for the first
// shards%n. A member missing from the list counts at the rank it would
// have.
func fairShare(shards int, members []string, id string) int {
	rank, found := slices.BinarySearch(members, id)
	n := len(members)
	if !found {
		n++
	}
	share := shards / n
	if rank < shards%n {
		share++
	}
	return share
}

// leave removes this Server from the members set.
func (s *Server) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	if err := s.rdb.ZRem(ctx, s.keys.members(), s.cfg.ConsumerID).Err(); err != nil {
		s.log.Warn("redisbus: failed to leave the members set", "err", err)
	}
}

// begin marks command id of shard as started, fenced by l. started is true
// when the caller must run it; otherwise existing is the done marker's
// value (a reply JSON, or a pending marker). ErrLeaseLost when l is no
// longer held.
func (s *Server) begin(l *lease, id string) (started bool, existing string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	res, err := beginScript.Run(ctx, s.rdb,
		[]string{s.keys.lease(l.shard), s.keys.done(l.shard, id)},
		l.value, pendingMarker+s.cfg.ConsumerID, int64(s.cfg.DoneTTL/time.Second)).Slice()
	if err != nil {
		return false, "", fmt.Errorf("failed to mark command started: %w", err)
	}
	if len(res) == 0 {
		return false, "", errors.New("failed to mark command started: empty answer")
	}
	switch code, _ := res[0].(int64); code {
	case -1:
		return false, "", ErrLeaseLost
	case 1:
		return true, "", nil
	default:
		if len(res) > 1 {
			existing, _ = res[1].(string)
		}
		return false, existing, nil
	}
}

// pendingMarker starts the done marker's value while a command runs.
const pendingMarker = "pending:"

// OwnerOf returns the lease this Server holds on token's shard
// ("<consumerID>:<epoch>"), or "" when it does not own the shard, lost its
// lease or may have (its last renewal is older than LeaseTTL: a process
// that was paused): a StatePublisher's Owner.
func (s *Server) OwnerOf(token string) string {
	shard := ShardOf(token, s.cfg.Shards)
	s.shardsLock.Lock()
	sr := s.shards[shard]
	s.shardsLock.Unlock()
	if sr == nil || sr.lost.Load() || time.Now().UnixNano() >= sr.lease.validUntil.Load() {
		return ""
	}
	return sr.lease.value
}
