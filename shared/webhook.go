package shared

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// The webhooks area: events of a session, the outbox they wait in until a
// receiver has them, and the dead letters of events no receiver took.

// Payload formats of deliveries (Session.WebhookFormat).
const (
	// WebhookFormatForm is WaGo's: a form body with token and jsonData.
	WebhookFormatForm = "form"
	// WebhookFormatJSON is a JSON body: {"type","event","state"?,"token","id","timestamp"}.
	WebhookFormatJSON = "json"
)

// Event is one whatsmeow event of a session, as it waits in the outbox.
type Event struct {
	// ID is the event's stable identity, the webhook-id of every attempt:
	// derived from the message ID for messages and receipts (so a message
	// that WhatsApp redelivers after a crash is one event), random otherwise.
	ID    string `json:"id"`
	Token string `json:"token"`
	// Seq numbers the token's events in the order they happened; the
	// outbox assigns it on Append (1, 2, ...).
	Seq int64 `json:"seq"`
	// Class is the subscription class (EventMessage, ...; "" for types no
	// class carries) and Type the whatsmeow event type name (the "type" of
	// the payload: Receipt is "ReadReceipt", as WaGo names it).
	Class string `json:"class"`
	Type  string `json:"type"`
	// State is WaGo's extra field of receipts (Delivered, Read, ReadSelf)
	// and presence (online, offline).
	State string `json:"state,omitempty"`
	// Data is the whatsmeow event as JSON.
	Data json.RawMessage `json:"data"`
	Time time.Time       `json:"time"`
}

// Delivery is an event in the outbox with its delivery state.
type Delivery struct {
	Event
	// Attempts counts the attempts made so far.
	Attempts int `json:"attempts"`
	// NextAt is when the next attempt is due.
	NextAt time.Time `json:"nextAt"`
	// LastError says why the last attempt failed (no internals of wago;
	// the receiver's status or the network error class).
	LastError string `json:"lastError,omitempty"`
	// Receipt is the outbox's handle of this delivery (a stream entry ID);
	// opaque to the worker.
	Receipt string `json:"-"`
}

// Outbox keeps events until a receiver has them. Append is durable before
// it returns; the delivery worker takes due deliveries with Next and ends
// each with Done, Retry or Bury. Implementations: sqlite (embedded) and
// redisbus (a Redis Stream with a consumer group).
type Outbox interface {
	// Append stores ev, assigning its Seq. An event whose ID is already
	// stored is not stored again (nil error).
	Append(ctx context.Context, ev *Event) error
	// Next returns up to max deliveries that are due, in the order of their
	// tokens' sequences, waiting up to wait for one. A delivery returned is
	// not returned again until it is retried, or until the process that
	// took it is gone.
	Next(ctx context.Context, max int, wait time.Duration) ([]Delivery, error)
	// Done removes a delivered (or dropped) event.
	Done(ctx context.Context, d Delivery) error
	// Retry schedules the next attempt of d at d.NextAt, with d.Attempts
	// and d.LastError recorded.
	Retry(ctx context.Context, d Delivery) error
	// Bury moves d to the dead letters.
	Bury(ctx context.Context, d Delivery) error
	DeadLetters
}

// DeadLetters are the events that failed their last attempt.
type DeadLetters interface {
	// Failed lists up to limit dead letters, oldest first; token filters
	// them when not empty.
	Failed(ctx context.Context, token string, limit int) ([]Delivery, error)
	// Replay moves the dead letters named by ids (all of token's when ids
	// is empty and token is not; every one when both are empty) back to
	// the outbox, due now with their attempts reset, and returns how many.
	Replay(ctx context.Context, token string, ids []string) (int, error)
}

// QueueStats is what an outbox holds: events waiting for their first
// attempt (or in it), events waiting for a retry, dead letters, and when
// the oldest event not yet delivered happened (zero: none).
type QueueStats struct {
	New, Retrying, Dead int
	Oldest              time.Time
}

// QueueStater is an outbox that can count what it holds (for metrics).
type QueueStater interface {
	QueueStats(ctx context.Context) (QueueStats, error)
}

// WebhookSettings is what the connector needs of a row to emit its events.
type WebhookSettings struct {
	Webhook string   `json:"webhook"`
	Events  []string `json:"events"`
}

// OpReloadSession tells the connector that a token's row changed (its
// webhook or subscription): a running client picks up the new settings at
// once. It answers nil when no client runs.
var OpReloadSession = NewOp[WebhookSettings, Empty]("session.reload", LaneQuery)

// MaxWebhookURL is the longest webhook URL accepted, in bytes.
const MaxWebhookURL = 2048

// CheckWebhookURL validates a receiver's URL, given in field: absolute http
// or https, with a host, without credentials, at most MaxWebhookURL bytes.
// Empty is valid (no webhook).
func CheckWebhookURL(field, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if len(raw) > MaxWebhookURL || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Errorf(EINVALID, "invalid %s: use an http:// or https:// URL of at most %d bytes, without credentials", field, MaxWebhookURL)
	}
	return nil
}

// maxWebhookSecrets bounds the secrets that sign at once (a rotation).
const maxWebhookSecrets = 3

// CheckWebhookSecret validates a Standard Webhooks secret: "whsec_" and the
// base64 of 24 to 64 random bytes; during a rotation, up to three of them
// separated by spaces (each signs every delivery). Empty is valid (the
// global secret).
func CheckWebhookSecret(secret string) error {
	secrets := strings.Fields(secret)
	if len(secrets) > maxWebhookSecrets {
		return Errorf(EINVALID, "invalid Secret: at most %d secrets, separated by spaces", maxWebhookSecrets)
	}
	for _, s := range secrets {
		key, err := WebhookKey(s)
		if err != nil || len(key) < 24 || len(key) > 64 {
			return Errorf(EINVALID, "invalid Secret: use whsec_ followed by the base64 of 24 to 64 random bytes")
		}
	}
	return nil
}

// WebhookKey returns the HMAC key of a whsec_ secret.
func WebhookKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, Errorf(EINVALID, "a webhook secret starts with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, Wrap(err, EINVALID, "a webhook secret is whsec_ and base64")
	}
	return key, nil
}

// CheckWebhookFormat validates a payload format name (empty: the default).
func CheckWebhookFormat(f string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(f)) {
	case "":
		return "", nil
	case WebhookFormatForm:
		return WebhookFormatForm, nil
	case WebhookFormatJSON:
		return WebhookFormatJSON, nil
	}
	return "", Errorf(EINVALID, "invalid Format: use form or json")
}

// Statuses of a DeliveryRecord.
const (
	DeliveryDelivered = "delivered" // the receiver answered 2xx
	DeliveryRetrying  = "retrying"  // an attempt failed; another is scheduled
	DeliveryFailed    = "failed"    // the last attempt failed: a dead letter
	DeliveryDropped   = "dropped"   // no receiver any more (webhook removed, 410, token deleted)
)

// MaxRecentDeliveries is how many records a DeliveryLog keeps per token.
const MaxRecentDeliveries = 20

// DeliveryRecord is how the delivery worker last ended an event of a token:
// what the dashboard lists as the session's last events. It holds no event
// data (message bodies stay out of it).
type DeliveryRecord struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Class     string    `json:"class"`
	Type      string    `json:"type"`
	State     string    `json:"state,omitempty"`
	Time      time.Time `json:"time"` // when the event happened
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError,omitempty"`
	At        time.Time `json:"at"` // when the worker ended the attempt
}

// NewDeliveryRecord is the record of d ended with status.
func NewDeliveryRecord(d Delivery, status string) DeliveryRecord {
	return DeliveryRecord{
		ID: d.ID, Seq: d.Seq, Class: d.Class, Type: d.Type, State: d.State, Time: d.Time,
		Status: status, Attempts: d.Attempts, LastError: d.LastError, At: time.Now().UTC(),
	}
}

// DeliveryLog keeps the last MaxRecentDeliveries records of each token,
// one per event ID (a later record of an event replaces the earlier).
// Implementations: webhook.MemoryLog (embedded) and redisbus.DeliveryLog.
type DeliveryLog interface {
	Record(ctx context.Context, token string, r DeliveryRecord) error
	// Recent lists token's records, newest first.
	Recent(ctx context.Context, token string) ([]DeliveryRecord, error)
}
