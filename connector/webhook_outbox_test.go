package connector

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wago-gw/wago/shared"
)

// outboxFunc is a shared.Outbox whose Append calls the function; the rest
// does nothing.
type outboxFunc func(ev *shared.Event)

var _ shared.Outbox = outboxFunc(nil)

func (f outboxFunc) Append(_ context.Context, ev *shared.Event) error { f(ev); return nil }
func (f outboxFunc) Next(context.Context, int, time.Duration) ([]shared.Delivery, error) {
	return nil, nil
}
func (f outboxFunc) Done(context.Context, shared.Delivery) error  { return nil }
func (f outboxFunc) Retry(context.Context, shared.Delivery) error { return nil }
func (f outboxFunc) Bury(context.Context, shared.Delivery) error  { return nil }
func (f outboxFunc) Failed(context.Context, string, int) ([]shared.Delivery, error) {
	return nil, nil
}
func (f outboxFunc) Replay(context.Context, string, []string) (int, error) { return 0, nil }

// failingOutbox refuses every append.
type failingOutbox struct{ outboxFunc }

func (failingOutbox) Append(context.Context, *shared.Event) error {
	return errors.New("disk full")
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
