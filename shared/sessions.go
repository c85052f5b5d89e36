package shared

import "time"

// The sessions area: the lifecycle of a token's WhatsApp client.

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

// ClientRunning reports whether state is one in which a WhatsApp client
// runs for the token.
func ClientRunning(state string) bool {
	switch state {
	case StateConnecting, StateQR, StatePairing, StateConnected:
		return true
	}
	return false
}

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
	Immediate bool `json:"immediate,omitempty"`
	// Phone, when set and the device is not linked, asks for a pairing code
	// for this number (international format, digits only).
	Phone string `json:"phone,omitempty"`
}

// ConnectResult is what Connect and Pair answer.
type ConnectResult struct {
	Status Status `json:"status"`
	// LinkingCode is the pairing code to enter on the phone, when one was
	// asked for.
	LinkingCode string `json:"linkingCode,omitempty"`
}

// The session ops.
var (
	// OpConnect starts or restores the token's WhatsApp client. It is
	// idempotent: connecting a running session answers its state and never
	// opens a second socket. Returns ErrSessionNotFound for an unknown (or
	// deleted) token, and EUNAVAILABLE if WhatsApp cannot be reached within
	// the connect timeout (the session is then left failed, and a later
	// connect works).
	OpConnect = NewOp[ConnectOptions, ConnectResult]("session.connect", LaneLifecycle, Dials())
	// OpPair starts the client if needed and asks for a pairing code for
	// the Phone of the options. Returns ErrAlreadyLoggedIn if the device is
	// linked and connected, ECONFLICT if it is linked but not connected.
	OpPair = NewOp[ConnectOptions, ConnectResult]("session.pair", LaneLifecycle, Dials())
	// OpDisconnect closes the socket and keeps the device linked. Returns
	// ErrNoSession, changing nothing, when no client runs.
	OpDisconnect = NewOp[Empty, Empty]("session.disconnect", LaneLifecycle)
	// OpLogout unlinks the device from the phone and deletes its keys.
	// Returns ErrNotLoggedIn when the session is not logged in.
	OpLogout = NewOp[Empty, Empty]("session.logout", LaneLifecycle)
	// OpDelete stops the client, logs the device out if it is linked,
	// deletes its keys and deletes the row. It completes even if the caller
	// stops waiting. Returns ErrSessionNotFound for an unknown token.
	OpDelete = NewOp[Empty, Empty]("session.delete", LaneLifecycle)
)

// Errors of QRCode.
var (
	// ErrNoQRYet: a client runs but WhatsApp has not sent a code yet.
	ErrNoQRYet = Errorf(ECONFLICT, "no QR code available yet: retry in a moment")
	// ErrLinkedNoQR: the device is linked and reconnecting: no code is needed.
	ErrLinkedNoQR = Errorf(ECONFLICT, "device is linked: no QR code is needed, wait for the session to reconnect")
)

// QRCode answers /session/qr from a session's status and its current code:
// ErrAlreadyLoggedIn when logged in, ErrNoSession when no client runs,
// ErrLinkedNoQR when a linked device is reconnecting, ErrNoQRYet while a
// client runs without a code. Every Live implementation answers with it.
func QRCode(st Status, code string) (string, error) {
	switch {
	case st.LoggedIn:
		return "", ErrAlreadyLoggedIn
	case !ClientRunning(st.State):
		return "", ErrNoSession
	case code == "" && st.JID != "":
		return "", ErrLinkedNoQR
	case code == "":
		return "", ErrNoQRYet
	}
	return code, nil
}
