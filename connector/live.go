package connector

import (
	"context"

	"github.com/wago-gw/wago/shared"
)

// Status implements shared.Live.
func (m *Manager) Status(_ context.Context, token string) (shared.Status, error) {
	if s := m.lookup(token); s != nil {
		st, _, _ := s.snapshot()
		return st, nil
	}
	return shared.Status{State: shared.StateDisconnected}, nil
}

// Statuses implements shared.Live: the sessions are looked up under one
// read lock of the registry, and each snapshot takes only its session's
// lock.
func (m *Manager) Statuses(_ context.Context, tokens []string) ([]shared.Status, error) {
	found := make([]*session, len(tokens))
	m.sessionsLock.RLock()
	for i, t := range tokens {
		found[i] = m.sessions[t]
	}
	m.sessionsLock.RUnlock()
	out := make([]shared.Status, len(tokens))
	for i, s := range found {
		if s == nil {
			out[i] = shared.Status{State: shared.StateDisconnected}
			continue
		}
		out[i], _, _ = s.snapshot()
	}
	return out, nil
}

// QR implements shared.Live with shared.QRCode.
func (m *Manager) QR(_ context.Context, token string) (string, error) {
	s := m.lookup(token)
	if s == nil {
		return "", shared.ErrNoSession
	}
	st, qr, _ := s.snapshot()
	return shared.QRCode(st, qr)
}
