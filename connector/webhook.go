package connector

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wago-gw/wago/shared"
)

// Webhook events: each whatsmeow event that the session's subscription
// selects becomes a shared.Event appended to the outbox before whatsmeow's
// handler returns, so that WhatsApp gets its receipt only once the event is
// durable. The handler never waits on a receiver: delivery workers read
// the outbox (see shared/webhook).

func init() {
	handle(shared.OpReloadSession, (*Manager).reloadSession)
}

// appendTimeout bounds how long one event waits for the outbox; past it
// the event is not acknowledged and WhatsApp delivers it again.
const appendTimeout = 10 * time.Second

// reloadSession applies new webhook settings to the token's running
// session, if any.
func (m *Manager) reloadSession(_ context.Context, token string, hs shared.WebhookSettings) (shared.Empty, error) {
	if s := m.lookup(token); s != nil {
		s.setWebhook(hs)
	}
	return shared.Empty{}, nil
}

// setWebhook records the webhook settings that select the session's events.
func (s *session) setWebhook(hs shared.WebhookSettings) {
	hs.Events = append([]string(nil), hs.Events...)
	s.webhook.Store(&hs)
}

// eventHandler returns the whatsmeow event handler of client generation
// gen of s, whose row is row: it appends the event to the outbox, then
// updates the session state. It answers false (no receipt: WhatsApp
// delivers the event again) when the outbox cannot take the event.
// SynchronousAck makes whatsmeow wait for it on notifications and calls
// too, not only on messages; the decrypted event buffer keeps a message's
// plaintext (in the key store, in the ratchet's transaction) until the
// handler succeeded, so that a redelivered message can still be decrypted,
// and answers a message already handled as such.
func (m *Manager) eventHandler(s *session, gen uint64, cli *whatsmeow.Client, row *shared.Session) whatsmeow.EventHandlerWithSuccessStatus {
	s.setWebhook(shared.WebhookSettings{Webhook: row.Webhook, Events: row.Events})
	if m.cfg.Outbox != nil {
		cli.SynchronousAck = true
		cli.EnableDecryptedEventBuffer = true
	}
	return func(evt any) bool {
		ok := m.emit(s, evt)
		m.handleEvent(s, gen, cli, evt)
		return ok
	}
}

// emit appends evt to the outbox if the session has a webhook and its
// subscription selects evt. It reports whether the event may be
// acknowledged.
func (m *Manager) emit(s *session, evt any) bool {
	if m.cfg.Outbox == nil {
		return true
	}
	hs := s.webhook.Load()
	if hs == nil || hs.Webhook == "" {
		return true
	}
	ev, ok := describeEvent(s.token, evt)
	if !ok || !shared.SubscribedTo(hs.Events, ev.Class, typeName(evt)) {
		return true
	}
	data, err := json.Marshal(evt)
	if err != nil {
		m.log.Error("could not encode a webhook event", "session", s.logID, "type", ev.Type, "err", err)
		return true // it will never encode: acknowledging loses nothing more
	}
	ev.Data = data
	ctx, cancel := context.WithTimeout(m.ctx, appendTimeout)
	defer cancel()
	if err := m.cfg.Outbox.Append(ctx, ev); err != nil {
		m.log.Error("could not queue a webhook event; WhatsApp will deliver it again", "session", s.logID, "type", ev.Type, "err", err)
		return false
	}
	return true
}

// emitQR queues the QR event of a new code.
func (m *Manager) emitQR(s *session, code string) {
	m.emit(s, &events.QR{Codes: []string{code}})
}

// typeName is the whatsmeow type name of evt ("Message", "Receipt", ...).
func typeName(evt any) string {
	t := reflect.TypeOf(evt)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

// describeEvent returns the event of evt without its data, or false when
// evt is not a type that webhooks carry.
func describeEvent(token string, evt any) (*shared.Event, bool) {
	typ := typeName(evt)
	class, known := shared.EventTypes[typ]
	if !known {
		return nil, false
	}
	ev := &shared.Event{Token: token, Class: class, Type: typ, Time: time.Now().UTC()}
	switch evt := evt.(type) {
	case *events.Message:
		if evt.Info.Chat.Server == types.NewsletterServer {
			ev.Class = shared.EventNewsletter
		}
		ev.ID = derivedID(token, "Message", evt.Info.Chat.String(), evt.Info.Sender.String(), evt.Info.ID)
	case *events.UndecryptableMessage:
		ev.ID = derivedID(token, typ, evt.Info.Chat.String(), evt.Info.Sender.String(), evt.Info.ID)
	case *events.Receipt:
		ev.Type = "ReadReceipt" // WaGo's name
		switch evt.Type {
		case types.ReceiptTypeDelivered:
			ev.State = "Delivered"
		case types.ReceiptTypeRead:
			ev.State = "Read"
		case types.ReceiptTypeReadSelf:
			ev.State = "ReadSelf"
		}
		ev.ID = derivedID(token, typ, evt.Chat.String(), evt.Sender.String(), string(evt.Type),
			strconv.FormatInt(evt.Timestamp.UnixNano(), 10), strings.Join(evt.MessageIDs, ","))
	case *events.Presence:
		ev.State = "online"
		if evt.Unavailable {
			ev.State = "offline"
		}
	case *events.CallOffer:
		ev.ID = derivedID(token, typ, evt.CallID)
	case *events.CallTerminate:
		ev.ID = derivedID(token, typ, evt.CallID)
	}
	if ev.ID == "" {
		ev.ID = randomID()
	}
	return ev, true
}

// idEncoding spells event IDs: lower-case base32 without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// derivedID is the ID of an event that WhatsApp may deliver twice (a
// message redelivered after a crash): a digest of the token and what
// identifies the event, so both deliveries are one event. The token
// cannot be read back from it.
func derivedID(token string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(token))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return "evt_" + idEncoding.EncodeToString(h.Sum(nil)[:20])
}

// randomID is the ID of an event that happens once.
func randomID() string {
	var b [20]byte
	rand.Read(b[:])
	return "evt_" + idEncoding.EncodeToString(b[:])
}
