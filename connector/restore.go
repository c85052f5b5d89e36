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
	for _, row := range rows {
		if !row.AutoConnect || row.JID == "" || (keep != nil && !keep(row.Token)) {
			continue
		}
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
			} else {
				restored++
			}
		}(row.Token)
	}
	wg.Wait()
	return restored, failed
}
