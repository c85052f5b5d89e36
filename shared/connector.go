package shared

import (
	"context"
	"time"
)

// Session states, as Status.State reports them.
const (
	StateDisconnected = "disconnected" // no client is running for the token
	StateConnecting   = "connecting"   // a client is dialling or reconnecting
	StateQR           = "qr"           // connected, waiting for a phone to scan the QR code
	StatePairing      = "pairing"      // a pairing code was issued, waiting for the phone
	StateConnected    = "connected"    // connected and logged in
	StateLoggedOut    = "logged_out"   // WhatsApp or the user unlinked the device
	StateReplaced     = "replaced"     // another socket took over the device (StreamReplaced)
	StateBanned       = "banned"       // WhatsApp temporarily banned the account
	StateOutdated     = "outdated"     // WhatsApp rejected the announced client version
	StateFailed       = "failed"       // the last connect attempt failed; LastError says why
)

// Status is the live state of a session's WhatsApp client.
type Status struct {
	Connected bool   `json:"connected"`
	LoggedIn  bool   `json:"loggedIn"`
	JID       string `json:"jid"`
	State     string `json:"state"`
	// LastError is a client-safe description of the last failure, if any.
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since"`
	// HasQR is true while a QR code can be fetched.
	HasQR bool `json:"hasQR"`
}

// ConnectOptions are the fields of /session/connect and /session/pair.
type ConnectOptions struct {
	// Immediate answers as soon as the client is started; otherwise Connect
	// waits (bounded) until the client is connected or a QR code is ready.
	Immediate bool
	// Phone, when set and the device is not linked, asks for a pairing code
	// for this number (international format, digits only).
	Phone string
}

// ConnectResult is what Connect and Pair answer.
type ConnectResult struct {
	Status Status
	// LinkingCode is the pairing code to enter on the phone, when one was
	// asked for.
	LinkingCode string
}

// Connector is the seam between the HTTP functions and whatever holds the
// WhatsApp sockets: the connector itself in the all-in-one process, a Redis
// Streams client in distributed mode. Every method takes the session token;
// the row must exist in the Store. A behaviour that differs between the two
// implementations is a bug.
type Connector interface {
	// Connect starts or restores the token's WhatsApp client. It is
	// idempotent: connecting a running session answers its state and never
	// opens a second socket. Returns EUNAVAILABLE if WhatsApp cannot be
	// reached (the session is then left disconnected, and a later Connect
	// works).
	Connect(ctx context.Context, token string, opts ConnectOptions) (ConnectResult, error)
	// Pair starts the client if needed and asks for a pairing code for
	// opts.Phone. Returns ErrAlreadyLoggedIn if the device is linked and
	// connected.
	Pair(ctx context.Context, token string, opts ConnectOptions) (ConnectResult, error)
	// Status answers the live state; it never waits on WhatsApp.
	Status(ctx context.Context, token string) (Status, error)
	// Statuses answers the live state of many tokens, in order.
	Statuses(ctx context.Context, tokens []string) ([]Status, error)
	// QR returns the current QR code string. Returns ErrAlreadyLoggedIn when
	// logged in, ErrNoSession when no client runs, and ECONFLICT when no
	// code is available yet.
	QR(ctx context.Context, token string) (string, error)
	// Disconnect closes the socket and keeps the device linked. Returns
	// ErrNoSession when no client runs.
	Disconnect(ctx context.Context, token string) error
	// Logout unlinks the device from the phone and deletes its keys.
	// Returns ErrNotLoggedIn when the session is not logged in.
	Logout(ctx context.Context, token string) error
	// Delete stops the client, logs the device out if it is linked and
	// deletes its keys. The caller deletes the row afterwards.
	Delete(ctx context.Context, token string) error
}
