package redisbus

import (
	"errors"
	"fmt"

	"github.com/wago-gw/wago/shared"
)

// Client-safe messages of the errors the Client answers on its own.
const (
	MsgNoReply     = "connector did not answer in time"
	MsgUnavailable = "session service unavailable"
)

// ErrNoReply is what a Client answers when no connector replied before the
// command's deadline (no connector runs, or it is overloaded). The command is
// then never run: a Server drops commands whose deadline has passed.
var ErrNoReply = shared.Errorf(shared.EUNAVAILABLE, MsgNoReply)

// Internal errors; they never reach an HTTP client.
var (
	// ErrInvalidConfig wraps every error that a config's Validate returns.
	ErrInvalidConfig = errors.New("redisbus: invalid config")
	// ErrMalformedCommand is a stream entry a Server cannot decode; it is
	// acked and dropped.
	ErrMalformedCommand = errors.New("redisbus: malformed command")
	// ErrLeaseLost means the Server no longer holds a shard's lease.
	ErrLeaseLost = errors.New("redisbus: shard lease lost")
)

// unavailable wraps a Redis failure as the client-safe EUNAVAILABLE error.
func unavailable(err error, doing string) error {
	return shared.Wrap(fmt.Errorf("failed to %s: %w", doing, err), shared.EUNAVAILABLE, MsgUnavailable)
}
