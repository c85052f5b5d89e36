package shared

import "context"

// Connector is the seam between the HTTP functions and whatever holds the
// WhatsApp sockets: the connector itself in the all-in-one process (a
// direct call), a Redis Streams client in distributed mode. It is composed
// of small interfaces: Live reads state without waiting, Invoker runs the
// ops that each area declares (sessions.go; messages, users and calls
// next). Every call takes the session token; the row must exist in the
// Store. A behaviour that differs between the implementations is a bug.
type Connector interface {
	Live
	Invoker
}

// Live reads the live state of sessions. It never waits on WhatsApp or on
// a connector: in distributed mode it reads what the owning connector
// published.
type Live interface {
	// Status answers the live state of token; a token without a client is
	// StateDisconnected.
	Status(ctx context.Context, token string) (Status, error)
	// Statuses answers the live state of many tokens, in order.
	Statuses(ctx context.Context, tokens []string) ([]Status, error)
	// QR returns the current QR code string, with the errors of QRCode.
	QR(ctx context.Context, token string) (string, error)
}

// Invoker runs connector ops. Call is its typed front.
type Invoker interface {
	// Invoke runs op for token with req, a value of the op's request type,
	// and returns a value of its result type. The errors are those the op
	// documents, plus EUNAVAILABLE when the connector cannot be reached and
	// EINTERNAL for an op that the connector does not implement.
	Invoke(ctx context.Context, token string, op OpInfo, req any) (any, error)
}
