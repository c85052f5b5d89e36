// Package connectortest provides the one fake shared.Connector for unit
// tests of the parts that call or serve the seam (the HTTP functions, the
// Redis transport). The real connector is proven end to end in e2e/.
package connectortest

import (
	"context"
	"sync"

	"github.com/wago-gw/wago/shared"
)

// Fake is a shared.Connector whose ops run the functions registered with
// On. An op without one answers its zero result; a nil StatusFn answers a
// disconnected session, a nil QRFn shared.ErrNoSession.
type Fake struct {
	StatusFn func(ctx context.Context, token string) (shared.Status, error)
	QRFn     func(ctx context.Context, token string) (string, error)

	// opsLock guards ops.
	opsLock sync.Mutex
	ops     map[string]func(ctx context.Context, token string, req any) (any, error)
}

var _ shared.Connector = (*Fake)(nil)

// On makes f run fn for op, and returns f.
func On[Req, Res any](f *Fake, op *shared.Op[Req, Res], fn func(ctx context.Context, token string, req Req) (Res, error)) *Fake {
	f.opsLock.Lock()
	defer f.opsLock.Unlock()
	if f.ops == nil {
		f.ops = map[string]func(context.Context, string, any) (any, error){}
	}
	f.ops[op.Name()] = func(ctx context.Context, token string, req any) (any, error) {
		return fn(ctx, token, req.(Req))
	}
	return f
}

// Invoke implements shared.Invoker.
func (f *Fake) Invoke(ctx context.Context, token string, op shared.OpInfo, req any) (any, error) {
	f.opsLock.Lock()
	fn := f.ops[op.Name()]
	f.opsLock.Unlock()
	if fn == nil {
		return op.DecodeResult(nil)
	}
	return fn(ctx, token, req)
}

// Status implements shared.Live.
func (f *Fake) Status(ctx context.Context, token string) (shared.Status, error) {
	if f.StatusFn == nil {
		return shared.Status{State: shared.StateDisconnected}, nil
	}
	return f.StatusFn(ctx, token)
}

// Statuses implements shared.Live with Status for each token.
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

// QR implements shared.Live.
func (f *Fake) QR(ctx context.Context, token string) (string, error) {
	if f.QRFn == nil {
		return "", shared.ErrNoSession
	}
	return f.QRFn(ctx, token)
}
