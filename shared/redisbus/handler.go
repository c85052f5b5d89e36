package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Reading a shard's stream and running its commands.
//
// A command is run at most once: beginScript sets its done marker (NX,
// fenced by the lease) before it runs, and a redelivered or doubly claimed
// command whose marker exists is not run again: it gets the stored reply
// re-sent, or, while the marker says pending (it runs elsewhere, or its
// runner died), is acked and dropped. A command whose deadline has passed is
// acked and dropped without running: its caller has already answered.

// message is one stream entry to run.
type message struct {
	streamID string
	cmd      command
}

// readLoop reads sr's stream until sr.ctx ends.
func (s *Server) readLoop(sr *shardRun) {
	defer close(sr.readerDone)
	stream := s.keys.stream(sr.shard)
	var backoff time.Duration
	for !s.createGroup(sr, stream) {
		backoff = nextBackoff(backoff, s.cfg.MaxBackoff)
		if !sleep(sr.ctx, backoff) {
			return
		}
	}
	s.reclaim(sr, stream)
	lastClaim := time.Now()
	backoff = 0
	for sr.ctx.Err() == nil {
		if s.frozen.Load() {
			sleep(sr.ctx, 10*time.Millisecond)
			continue
		}
		if time.Since(lastClaim) >= s.cfg.ClaimInterval {
			s.reclaim(sr, stream)
			lastClaim = time.Now()
		}
		// Not sr.ctx: a read cut short could leave commands delivered to
		// this consumer and never dispatched. ReadBlock bounds the call.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadBlock+s.cfg.RedisTimeout)
		res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    consumerGroup,
			Consumer: s.cfg.ConsumerID,
			Streams:  []string{stream, ">"},
			Count:    s.cfg.ReadCount,
			Block:    s.cfg.ReadBlock,
		}).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			backoff = 0
			continue
		case err != nil:
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				s.createGroup(sr, stream) // the stream was deleted
			}
			backoff = nextBackoff(backoff, s.cfg.MaxBackoff)
			s.log.Warn("redisbus: read failed; retrying", "shard", sr.shard, "err", err, "backoff", backoff)
			sleep(sr.ctx, backoff)
			continue
		}
		backoff = 0
		for _, st := range res {
			for _, m := range st.Messages {
				s.dispatch(sr, stream, m)
			}
		}
	}
}

// createGroup creates the consumer group from the start of the stream, so
// that commands queued before any Server ran are seen (and dropped if
// expired). It reports success.
func (s *Server) createGroup(sr *shardRun, stream string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	err := s.rdb.XGroupCreateMkStream(ctx, stream, consumerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		s.log.Warn("redisbus: failed to create consumer group", "shard", sr.shard, "err", err)
		return false
	}
	return true
}

// reclaim takes over the commands pending with any consumer for longer than
// ClaimMinIdle, and dispatches them.
func (s *Server) reclaim(sr *shardRun, stream string) {
	start := "0-0"
	for sr.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   stream,
			Group:    consumerGroup,
			Consumer: s.cfg.ConsumerID,
			MinIdle:  s.cfg.ClaimMinIdle,
			Start:    start,
			Count:    100,
		}).Result()
		cancel()
		if err != nil {
			s.log.Warn("redisbus: reclaim failed", "shard", sr.shard, "err", err)
			return
		}
		if len(msgs) > 0 {
			s.log.Info("redisbus: reclaimed stale commands", "shard", sr.shard, "count", len(msgs))
		}
		for _, m := range msgs {
			s.dispatch(sr, stream, m)
		}
		if next == "0-0" || next == "" {
			return
		}
		start = next
	}
}

// queueKey names a queue of commands run one at a time, in stream order:
// one per token and ordered lane (sends); a command of an unordered lane
// (lifecycle, which the connector serialises itself) has a queue of its
// own, so that a disconnect or delete can interrupt a hung connect.
type queueKey struct {
	token string
	lane  shared.Lane
	entry string // the stream id, for an unordered lane
}

// dispatch queues one entry behind the earlier commands of its token and
// lane. It never blocks: a slot is taken when the command starts (work).
func (s *Server) dispatch(sr *shardRun, stream string, m redis.XMessage) {
	cmd, err := parseCommand(m.Values)
	if err != nil {
		s.log.Error("redisbus: dropping a malformed command", "shard", sr.shard, "entry", m.ID, "err", err)
		s.ack(stream, m.ID)
		return
	}
	sr.queuesLock.Lock()
	defer sr.queuesLock.Unlock()
	if _, dup := sr.inflight[m.ID]; dup {
		return
	}
	if sr.closed {
		// Read after the shard was released: a graceful release waits for
		// the reader, so only a lost lease gets here (a reader that ran
		// on after its process was paused).
		go s.handBack(sr, stream, message{streamID: m.ID, cmd: cmd})
		return
	}
	sr.inflight[m.ID] = struct{}{}
	key := queueKey{token: cmd.Token, lane: cmd.Op.Lane()}
	if !key.lane.Ordered() {
		key.entry = m.ID
	}
	q, busy := sr.queues[key]
	sr.queues[key] = append(q, message{streamID: m.ID, cmd: cmd})
	if !busy {
		sr.handlers.Add(1)
		go s.work(sr, stream, key)
	}
}

// work runs the queued commands of one token and lane one by one until
// none is left. Each takes one of the MaxInFlight slots while it runs; a
// command that cannot get a slot before its deadline is dropped (its caller
// has answered 503).
func (s *Server) work(sr *shardRun, stream string, key queueKey) {
	defer sr.handlers.Done()
	for {
		sr.queuesLock.Lock()
		q := sr.queues[key]
		if len(q) == 0 {
			delete(sr.queues, key)
			sr.queuesLock.Unlock()
			return
		}
		m := q[0]
		q[0] = message{}
		sr.queues[key] = q[1:]
		sr.queuesLock.Unlock()

		switch {
		case sr.hctx.Err() != nil:
			s.handBack(sr, stream, m)
		case time.Now().After(m.cmd.Deadline):
			s.log.Info("redisbus: dropping a command past its deadline", "shard", sr.shard, "cmd", m.cmd.ID, "op", m.cmd.Op.Name(), "late", time.Since(m.cmd.Deadline))
			s.ack(stream, m.streamID)
		case s.takeSlot(sr, m.cmd.Deadline):
			s.handle(sr, stream, m)
			<-s.sem
		case sr.hctx.Err() == nil:
			s.log.Info("redisbus: dropping a command that found no free slot before its deadline", "shard", sr.shard, "cmd", m.cmd.ID)
			s.ack(stream, m.streamID)
		}
		sr.queuesLock.Lock()
		delete(sr.inflight, m.streamID)
		sr.queuesLock.Unlock()
	}
}

// takeSlot takes a slot for a command with deadline; it reports false when
// the deadline passes or the shard's handlers are cancelled first.
func (s *Server) takeSlot(sr *shardRun, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
	case <-t.C:
		return false
	case <-sr.hctx.Done():
		return false
	}
	if sr.hctx.Err() != nil { // cancelled as the slot came: do not start
		<-s.sem
		return false
	}
	return true
}

// handle runs one command at most once and replies; it acks the entry only
// once the reply is written.
func (s *Server) handle(sr *shardRun, stream string, m message) {
	cmd := m.cmd
	log := s.log.With("shard", sr.shard, "cmd", cmd.ID, "op", cmd.Op.Name())
	if time.Now().After(cmd.Deadline) {
		log.Info("redisbus: dropping a command past its deadline", "late", time.Since(cmd.Deadline))
		s.ack(stream, m.streamID)
		return
	}
	started, existing, err := s.begin(sr.lease, cmd.ID)
	switch {
	case errors.Is(err, ErrLeaseLost):
		// It never started (the marker is set after the lease check):
		// queue it again for the new owner, which would otherwise see it
		// only after ClaimMinIdle.
		log.Warn("redisbus: not running a command: shard lease lost; requeueing it")
		if s.requeue(stream, cmd) {
			s.ack(stream, m.streamID)
		}
		if !sr.lost.Load() && !sr.leaseDeleted.Load() {
			s.lose(sr)
		}
		return
	case err != nil:
		log.Warn("redisbus: not running a command", "err", err)
		return // left pending: reclaimed later
	case !started && strings.HasPrefix(existing, pendingMarker):
		log.Warn("redisbus: dropping a command that already started", "by", strings.TrimPrefix(existing, pendingMarker))
		s.ack(stream, m.streamID)
		return
	case !started:
		log.Info("redisbus: re-sending the reply of a command already run")
		s.writeReply(sr, cmd, []byte(existing), false, stream, m.streamID)
		return
	}

	data, err := json.Marshal(s.run(sr.hctx, cmd))
	if err != nil { // a reply always encodes
		data = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	s.writeReply(sr, cmd, data, true, stream, m.streamID)
}

// run calls the local connector under the command's deadline; a panic is an
// EINTERNAL reply.
func (s *Server) run(parent context.Context, cmd command) (rep reply) {
	ctx, cancel := context.WithDeadline(parent, cmd.Deadline)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("redisbus: command panicked", "cmd", cmd.ID, "op", cmd.Op.Name(), "panic", p)
			rep = newReply(nil, fmt.Errorf("panic: %v", p))
		}
	}()
	req, err := cmd.Op.DecodeRequest(cmd.Req)
	if err != nil {
		return newReply(nil, shared.Wrap(err, shared.EINVALID, "malformed request"))
	}
	if blob := blobOf(req); blob != nil && blob.Ref != "" {
		if err := s.fetchBlob(ctx, blob); err != nil {
			return newReply(nil, err)
		}
	}
	res, err := s.local.Invoke(ctx, cmd.Token, cmd.Op, req)
	if err != nil && shared.ErrorCode(err) == shared.EINTERNAL {
		s.log.Error("redisbus: command failed", "cmd", cmd.ID, "op", cmd.Op.Name(), "err", err)
	}
	return newReply(res, err)
}

// writeReply pushes data on the command's reply list, when store is set
// keeps it in the done marker for redeliveries, and then acks the stream
// entry, all in one round trip. It retries until the command's deadline
// and reports success; on failure the entry stays pending, which the done
// marker makes harmless.
func (s *Server) writeReply(sr *shardRun, cmd command, data []byte, store bool, stream, entry string) bool {
	var backoff time.Duration
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		pipe := s.rdb.Pipeline()
		if store {
			pipe.Set(ctx, s.keys.done(sr.shard, cmd.ID), data, s.cfg.DoneTTL)
		}
		pipe.LPush(ctx, s.keys.reply(cmd.ID), data)
		pipe.Expire(ctx, s.keys.reply(cmd.ID), s.cfg.ReplyTTL)
		pipe.XAck(ctx, stream, consumerGroup, entry) // after the reply, in the same round trip
		_, err := pipe.Exec(ctx)
		cancel()
		if err == nil {
			return true
		}
		backoff = nextBackoff(backoff, time.Second)
		if time.Now().Add(backoff).After(cmd.Deadline) {
			s.log.Error("redisbus: failed to write a reply; giving up", "shard", sr.shard, "cmd", cmd.ID, "err", err)
			return false
		}
		s.log.Warn("redisbus: failed to write a reply; retrying", "shard", sr.shard, "cmd", cmd.ID, "err", err)
		time.Sleep(backoff)
	}
}

// handBack gives up a command of a released shard that never started: a
// graceful release leaves it pending, for the next owner to reclaim; after
// a lost lease it is queued again at once, since the next owner already
// reads the stream (and would otherwise see it only after ClaimMinIdle).
func (s *Server) handBack(sr *shardRun, stream string, m message) {
	if !sr.lost.Load() {
		return
	}
	if s.requeue(stream, m.cmd) {
		s.ack(stream, m.streamID)
	}
}

// requeue adds cmd again at the end of stream and reports success.
func (s *Server) requeue(stream string, cmd command) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: cmd.values()}).Err(); err != nil {
		s.log.Warn("redisbus: requeue failed; the command stays pending", "cmd", cmd.ID, "err", err)
		return false
	}
	return true
}

// ack acknowledges a stream entry; on failure it stays pending and is
// reclaimed later, which the done marker makes harmless.
func (s *Server) ack(stream, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
	defer cancel()
	if err := s.rdb.XAck(ctx, stream, consumerGroup, id).Err(); err != nil {
		s.log.Warn("redisbus: ack failed", "entry", id, "err", err)
	}
}

// blobOf returns the Blob of a request that carries one, or nil.
func blobOf(req any) *shared.Blob {
	if bc, ok := req.(shared.BlobCarrier); ok {
		return bc.BlobField()
	}
	return nil
}

// fetchBlob replaces a blob's reference with the bytes the Client kept
// under it, and deletes the key: the command runs at most once.
func (s *Server) fetchBlob(ctx context.Context, blob *shared.Blob) error {
	if !strings.HasPrefix(blob.Ref, s.keys.blobPrefix()) {
		return shared.Errorf(shared.EINVALID, "malformed request: foreign blob reference")
	}
	data, err := s.rdb.GetDel(ctx, blob.Ref).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return shared.Errorf(shared.EINVALID, "the request's media expired before the connector took it: send it again")
	case err != nil:
		return unavailable(err, "read the request's media")
	}
	blob.Data, blob.Ref = data, ""
	return nil
}
