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

// Statuses implements shared.Live.
func (m *Manager) Statuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
	out := make([]shared.Status, len(tokens))
	for i, t := range tokens {
		out[i], _ = m.Status(ctx, t)
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
