// Package connectortest provides a fake shared.Connector for unit tests of
// the parts that call or serve the seam (the HTTP functions, the Redis
// transport). The real connector is proven end to end in e2e/.
package connectortest

import (
	"context"

	"github.com/wago-gw/wago/shared"
)

// Fake is a shared.Connector whose methods call its function fields. A nil
// field answers the zero value, except Status (a disconnected session) and
// QR (shared.ErrNoSession).
type Fake struct {
	ConnectFn    func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	PairFn       func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	StatusFn     func(ctx context.Context, token string) (shared.Status, error)
	QRFn         func(ctx context.Context, token string) (string, error)
	DisconnectFn func(ctx context.Context, token string) error
	LogoutFn     func(ctx context.Context, token string) error
	DeleteFn     func(ctx context.Context, token string) error
}

var _ shared.Connector = (*Fake)(nil)

// Connect implements shared.Connector.
func (f *Fake) Connect(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.ConnectFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.ConnectFn(ctx, token, opts)
}

// Pair implements shared.Connector.
func (f *Fake) Pair(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.PairFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.PairFn(ctx, token, opts)
}

// Status implements shared.Connector.
func (f *Fake) Status(ctx context.Context, token string) (shared.Status, error) {
	if f.StatusFn == nil {
		return shared.Status{State: shared.StateDisconnected}, nil
	}
	return f.StatusFn(ctx, token)
}

// Statuses implements shared.Connector with Status for each token.
func (f *Fake) Statuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
	out := make([]shared.Status, len(tokens))
	for i, t := range tokens {
		st, err := f.Status(ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// QR implements shared.Connector.
func (f *Fake) QR(ctx context.Context, token string) (string, error) {
	if f.QRFn == nil {
		return "", shared.ErrNoSession
	}
	return f.QRFn(ctx, token)
}

// Disconnect implements shared.Connector.
func (f *Fake) Disconnect(ctx context.Context, token string) error {
	if f.DisconnectFn == nil {
		return nil
	}
	return f.DisconnectFn(ctx, token)
}

// Logout implements shared.Connector.
func (f *Fake) Logout(ctx context.Context, token string) error {
	if f.LogoutFn == nil {
		return nil
	}
	return f.LogoutFn(ctx, token)
}

// Delete implements shared.Connector.
func (f *Fake) Delete(ctx context.Context, token string) error {
	if f.DeleteFn == nil {
		return nil
	}
	return f.DeleteFn(ctx, token)
}
