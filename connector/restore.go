package connector

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared"
)

// Restore reconnects every session that was connected when the process
// stopped (AutoConnect with a JID), at most RestoreConcurrency at once,
// each starting at a random moment within RestoreJitter of the first (see
// restoreSchedule), through the same per-token path as a connect. keep,
// when non-nil, selects the tokens to restore. It returns when every
// attempt has finished.
func (m *Manager) Restore(ctx context.Context, keep func(token string) bool) (restored, failed int) {
	rows, err := m.store.List(ctx)
	if err != nil {
		m.log.Error("could not list sessions to restore", "err", err)
		return 0, 0
	}
	var restore []*shared.Session
	for _, row := range rows {
		if restorable(row) && (keep == nil || keep(row.Token)) {
			restore = append(restore, row)
		}
	}
	return m.restoreRows(ctx, restore)
}

// restorable reports whether row's session was connected when its client
// stopped.
func restorable(row *shared.Session) bool { return row.AutoConnect && row.JID != "" }

// restoreRows restores the sessions of rows as Restore does, under ctx.
func (m *Manager) restoreRows(ctx context.Context, rows []*shared.Session) (restored, failed int) {
	m.warmLIDs(ctx, rows)
	tokens := make([]string, len(rows))
	for i, row := range rows {
		tokens[i] = row.Token
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		opts = shared.ConnectOptions{Immediate: true}
	)
	// The random delay is waited before a session takes a restore slot,
	// not while holding it: a slot spent sleeping made the jitter cost
	// 1,000 sessions 1,000/32 times half of it (3.1 s of the default
	// 200 ms), for the same spread of the starts.
	start := time.Now()
	for _, r := range restoreSchedule(tokens, m.cfg.RestoreJitter) {
		if d := time.Until(start.Add(r.at)); d > 0 {
			sleep(ctx, d)
		}
		select {
		case m.restoreSlots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return restored, failed
		}
		wg.Add(1)
		go func(token string) {
			defer func() { <-m.restoreSlots; wg.Done() }()
			_, err := m.connect(ctx, token, opts, true)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				m.log.Warn("restore failed", "session", shared.LogID(token), "err", err)
				m.restoreLater(ctx, token, m.cfg.RestoreRetry)
			} else {
				restored++
			}
		}(r.token)
	}
	wg.Wait()
	return restored, failed
}

// warmLIDs reads the LID of every phone number of rows in a few batched
// queries, into the key store's cache of LID mappings. At each login
// whatsmeow stores the device's own mapping (Client.StoreLIDPNMapping),
// which costs a write transaction unless the mapping is already cached:
// with a cold cache, a restore of 1,000 sessions wrote 1,000 unchanged
// rows one by one, each waiting its turn on SQLite's one connection. A
// failure costs only that: the writes happen as before.
func (m *Manager) warmLIDs(ctx context.Context, rows []*shared.Session) {
	var first types.JID // a device's, to reach the store's LID map
	var pns []types.JID
	for _, row := range rows {
		if jid, err := types.ParseJID(row.JID); err == nil && jid.Server == types.DefaultUserServer {
			if len(pns) == 0 {
				first = jid
			}
			pns = append(pns, jid.ToNonAD())
		}
	}
	if len(pns) == 0 {
		return
	}
	// Every stored device of a key store shares its LID map: any one of
	// them leads to it.
	dev, err := m.keys.GetDevice(ctx, first)
	if err != nil || dev == nil || dev.LIDs == nil {
		return
	}
	for batch := range slices.Chunk(pns, lidBatch) {
		if _, err := dev.LIDs.GetManyLIDsForPNs(ctx, batch); err != nil {
			m.log.Warn("could not read the LID mappings of the sessions to restore", "err", err)
			return
		}
	}
}

// lidBatch is how many phone numbers one query of warmLIDs asks for, well
// under the bound parameters of SQLite (32,766) and PostgreSQL (65,535).
const lidBatch = 500

// scheduled is a token to restore and when, after the restore's start.
type scheduled struct {
	token string
	at    time.Duration
}

// restoreSchedule gives each token a random start in [0, jitter) (all 0
// without jitter) and returns them in the order of their starts.
func restoreSchedule(tokens []string, jitter time.Duration) []scheduled {
	out := make([]scheduled, len(tokens))
	for i, t := range tokens {
		out[i].token = t
		if jitter > 0 {
			out[i].at = rand.N(jitter)
		}
	}
	slices.SortStableFunc(out, func(a, b scheduled) int { return cmp.Compare(a.at, b.at) })
	return out
}

// ShardRestorer restores the sessions of the shards a connector gains: the
// shards gained together (while a listing runs, or at once) share one
// listing of the token table, instead of one full listing per shard.
type ShardRestorer struct {
	m       *Manager
	shardOf func(token string) int

	// lock guards pending and listing.
	lock    sync.Mutex
	pending []*shardRestore
	listing bool // a goroutine lists the table for pending
}

// shardRestore is one shard waiting for its restore.
type shardRestore struct {
	ctx   context.Context
	shard int
	done  chan [2]int // restored, failed
}

// NewShardRestorer returns a ShardRestorer of m; shardOf maps a token to
// its shard.
func (m *Manager) NewShardRestorer(shardOf func(token string) int) *ShardRestorer {
	return &ShardRestorer{m: m, shardOf: shardOf}
}

// Restore restores the logged-in sessions of shard as Manager.Restore does,
// under ctx (the connector's ownership of the shard), and returns when
// every attempt has finished.
func (r *ShardRestorer) Restore(ctx context.Context, shard int) (restored, failed int) {
	req := &shardRestore{ctx: ctx, shard: shard, done: make(chan [2]int, 1)}
	r.lock.Lock()
	r.pending = append(r.pending, req)
	if !r.listing {
		r.listing = true
		go r.run()
	}
	r.lock.Unlock()
	res := <-req.done
	return res[0], res[1]
}

// run lists the table once for every batch of pending shards, and starts
// their restores, until none is pending.
func (r *ShardRestorer) run() {
	for {
		// Shards gained together arrive one by one (each OnAcquire in
		// its own goroutine): wait a moment so that one listing serves
		// them all.
		time.Sleep(restoreGather)
		r.lock.Lock()
		batch := r.pending
		r.pending = nil
		if len(batch) == 0 {
			r.listing = false
			r.lock.Unlock()
			return
		}
		r.lock.Unlock()

		restore := make(map[int][]*shared.Session, len(batch))
		ctx, cancel := context.WithTimeout(r.m.ctx, time.Minute)
		rows, err := r.m.store.List(ctx)
		cancel()
		if err != nil {
			r.m.log.Error("could not list sessions to restore", "err", err, "shards", len(batch))
		}
		for _, row := range rows {
			if restorable(row) {
				shard := r.shardOf(row.Token)
				restore[shard] = append(restore[shard], row)
			}
		}
		for _, req := range batch {
			go func() {
				ok, failed := r.m.restoreRows(req.ctx, restore[req.shard])
				req.done <- [2]int{ok, failed}
			}()
		}
	}
}

// restoreGather is how long a ShardRestorer waits for more shards before
// it lists the token table.
const restoreGather = 100 * time.Millisecond

// maxRestoreRetry caps the delay between retries of a failed restore.
const maxRestoreRetry = 5 * time.Minute

// restoreLater retries a restore that failed because WhatsApp could not be
// reached in time (a refused connection already retries inside whatsmeow),
// after delay and then twice as long each time, up to maxRestoreRetry,
// while ctx lives (the process, or the connector's ownership of the
// shard), the session has not been touched since (still failed, no
// client) and its row still asks to be connected.
func (m *Manager) restoreLater(ctx context.Context, token string, delay time.Duration) {
	time.AfterFunc(delay, func() {
		if ctx.Err() != nil || m.closing.Load() {
			return
		}
		if s := m.lookup(token); s != nil {
			if st, _, cli := s.snapshot(); cli != nil || st.State != shared.StateFailed {
				return
			}
		}
		_, err := m.connect(ctx, token, shared.ConnectOptions{Immediate: true}, true)
		if shared.ErrorCode(err) == shared.EUNAVAILABLE {
			m.log.Warn("restore failed again; will retry", "session", shared.LogID(token), "err", err)
			m.restoreLater(ctx, token, min(2*delay, maxRestoreRetry))
		}
	})
}
