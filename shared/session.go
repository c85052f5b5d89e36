// Package shared holds what the HTTP functions and the connector both speak:
// the domain types (Session, Status, ConnectOptions), the errors with codes,
// and the two interfaces between the parts: Store (token rows) and Connector
// (the seam to whatever holds the WhatsApp sockets). Adapters live in
// subpackages named for what they adapt (sqlite, dynamo, redisbus).
package shared

import (
	"context"
	"strings"
	"time"
)

// Session is one token row: one token, one linked WhatsApp device.
type Session struct {
	Name    string   `json:"name"`
	Token   string   `json:"token"`
	Os      string   `json:"os"`
	Webhook string   `json:"webhook"`
	Events  []string `json:"events"`
	// WebhookSecret signs the token's deliveries (a whsec_ secret); empty:
	// the global secret, if any. It is never shown to clients.
	WebhookSecret string `json:"-"`
	// WebhookFormat is the payload format of the token's deliveries
	// (WebhookFormatForm or WebhookFormatJSON); empty: the global one.
	WebhookFormat string `json:"webhookFormat,omitempty"`
	// JID is the linked device's JID, empty until a phone scans the QR code
	// (or enters the pairing code) and again after a logout.
	JID string `json:"jid"`
	// AutoConnect is true while the session should be connected: it is set
	// by connect and cleared by disconnect, logout and a permanent
	// disconnect. Sessions with AutoConnect and a JID reconnect by
	// themselves when a connector starts.
	AutoConnect bool      `json:"autoConnect"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// EventsString returns the subscription as WaGo shows it: comma-separated.
func (s *Session) EventsString() string { return strings.Join(s.Events, ",") }

// SessionUpdate names the fields of a row to change; nil fields stay.
type SessionUpdate struct {
	Webhook       *string
	WebhookSecret *string
	WebhookFormat *string
	Events        []string // nil: unchanged; empty non-nil: cleared
	JID           *string
	AutoConnect   *bool
}

// Store keeps token rows. Implementations: sqlite (embedded) and dynamo
// (distributed). Every write is durable before it returns.
type Store interface {
	// Create stores a new row and stamps s with what was stored: a
	// non-zero CreatedAt is kept, a zero one set to now; UpdatedAt is set.
	// Returns EEXISTS (ErrAlreadyExists) if its Name or its Token is taken,
	// EINVALID if either is empty.
	Create(ctx context.Context, s *Session) error
	// Get returns the row for token. Returns ENOTFOUND (ErrSessionNotFound)
	// if there is none; an empty token never matches.
	Get(ctx context.Context, token string) (*Session, error)
	// List returns every row, oldest first, in a new slice. The rows are
	// the caller's to read, not to change: a store may share them with
	// its own memory (the embedded one does: a list of 1,000 rows is read
	// often, and copying each row was most of its cost).
	List(ctx context.Context) ([]*Session, error)
	// Update changes the named fields and returns the new row. Returns
	// ENOTFOUND if there is no row for token.
	Update(ctx context.Context, token string, u SessionUpdate) (*Session, error)
	// Delete removes the row. Returns ENOTFOUND if there is none.
	Delete(ctx context.Context, token string) error
	// Close releases the store's resources.
	Close() error
}

// Apply changes s in place as u says and stamps UpdatedAt with now.
func (u SessionUpdate) Apply(s *Session, now time.Time) {
	if u.Webhook != nil {
		s.Webhook = *u.Webhook
	}
	if u.WebhookSecret != nil {
		s.WebhookSecret = *u.WebhookSecret
	}
	if u.WebhookFormat != nil {
		s.WebhookFormat = *u.WebhookFormat
	}
	if u.Events != nil {
		s.Events = append([]string{}, u.Events...)
	}
	if u.JID != nil {
		s.JID = *u.JID
	}
	if u.AutoConnect != nil {
		s.AutoConnect = *u.AutoConnect
	}
	s.UpdatedAt = now
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	c := *s
	c.Events = append([]string(nil), s.Events...)
	return &c
}

// Ptr returns a pointer to v: handy for SessionUpdate literals.
func Ptr[T any](v T) *T { return &v }
