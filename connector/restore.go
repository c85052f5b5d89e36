package connector

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wago-gw/wago/shared"
)

// Restore reconnects every session that was connected when the process
// stopped (AutoConnect with a JID), at most RestoreConcurrency at once,
// each after a random delay up to RestoreJitter, through the same per-token
// path as a connect. keep, when non-nil, selects the tokens to restore (a
// connector restores only its shards). It returns when every attempt has
// finished.
func (m *Manager) Restore(ctx context.Context, keep func(token string) bool) (restored, failed int) {
	rows, err := m.store.List(ctx)
	if err != nil {
		m.log.Error("could not list sessions to restore", "err", err)
		return 0, 0
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sem  = make(chan struct{}, m.cfg.RestoreConcurrency)
		opts = shared.ConnectOptions{Immediate: true}
	)
	var tokens []string
	for _, row := range rows {
		if row.AutoConnect && row.JID != "" && (keep == nil || keep(row.Token)) {
			tokens = append(tokens, row.Token)
		}
	}
	for _, token := range tokens {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return restored, failed
		}
		wg.Add(1)
		go func(token string) {
			defer func() { <-sem; wg.Done() }()
			if j := m.cfg.RestoreJitter; j > 0 {
				time.Sleep(rand.N(j))
			}
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
		}(token)
	}
	wg.Wait()
	return restored, failed
}

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
