package functions

import (
	"context"

	"github.com/wago-gw/wago/shared"
)

// fakeConnector is a shared.Connector whose methods are function fields; a
// nil field answers the zero value. It serves unit tests of the HTTP layer
// only: the real connector is proven end to end in e2e/.
type fakeConnector struct {
	ConnectFn    func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	PairFn       func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	StatusFn     func(ctx context.Context, token string) (shared.Status, error)
	QRFn         func(ctx context.Context, token string) (string, error)
	DisconnectFn func(ctx context.Context, token string) error
	LogoutFn     func(ctx context.Context, token string) error
	DeleteFn     func(ctx context.Context, token string) error
}

var _ shared.Connector = (*fakeConnector)(nil)

func (f *fakeConnector) Connect(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.ConnectFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.ConnectFn(ctx, token, opts)
}

func (f *fakeConnector) Pair(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.PairFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.PairFn(ctx, token, opts)
}

func (f *fakeConnector) Status(ctx context.Context, token string) (shared.Status, error) {
	if f.StatusFn == nil {
		return shared.Status{State: shared.StateDisconnected}, nil
	}
	return f.StatusFn(ctx, token)
}

func (f *fakeConnector) Statuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
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

func (f *fakeConnector) QR(ctx context.Context, token string) (string, error) {
	if f.QRFn == nil {
		return "", shared.ErrNoSession
	}
	return f.QRFn(ctx, token)
}

func (f *fakeConnector) Disconnect(ctx context.Context, token string) error {
	if f.DisconnectFn == nil {
		return nil
	}
	return f.DisconnectFn(ctx, token)
}

func (f *fakeConnector) Logout(ctx context.Context, token string) error {
	if f.LogoutFn == nil {
		return nil
	}
	return f.LogoutFn(ctx, token)
}

func (f *fakeConnector) Delete(ctx context.Context, token string) error {
	if f.DeleteFn == nil {
		return nil
	}
	return f.DeleteFn(ctx, token)
}
