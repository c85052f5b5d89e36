package connector

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wago-gw/wago/shared"
)

// Sending messages (shared.OpSend).

func init() {
	handle(shared.OpSend, (*Manager).send)
}

// sentCacheSize is how many sent message IDs a session remembers, so that
// a retried send of the same ID answers the first result without sending.
const sentCacheSize = 4096

// SentLog remembers the message IDs that clients chose and each token sent,
// beyond one session's memory: shared by every connector
// (redisbus.SentLog), a retry that lands on another connector after a
// failover does not send again either. (An ID the API drew cannot be
// retried by a client; a redelivered command is stopped by the transport.)
type SentLog interface {
	// Sent returns the result of the message id that token sent, if known.
	Sent(ctx context.Context, token, id string) (shared.SendResult, bool, error)
	// RecordSent remembers that token sent the message id with res.
	RecordSent(ctx context.Context, token, id string, res shared.SendResult) error
}

// outbox is a session's send lane: sends run one at a time, in order, and
// the IDs sent last are remembered.
type outbox struct {
	lock  sync.Mutex // held for a whole send
	sent  map[string]shared.SendResult
	order []string // oldest first, at most sentCacheSize
}

// remember records the result of a sent ID; the caller holds lock.
func (o *outbox) remember(id string, res shared.SendResult) {
	if o.sent == nil {
		o.sent = make(map[string]shared.SendResult)
	}
	if len(o.order) >= sentCacheSize {
		delete(o.sent, o.order[0])
		o.order = o.order[1:]
	}
	o.sent[id] = res
	o.order = append(o.order, id)
}

// reconnectWait bounds how long an op waits for a linked session that is
// reconnecting (or waiting for its restore) before it answers 503.
const reconnectWait = 10 * time.Second

// errReconnecting answers an op of a linked session that is not connected
// yet, but will be: the client may retry.
var errReconnecting = shared.Errorf(shared.EUNAVAILABLE, "session is reconnecting to WhatsApp: try again")

// loggedIn returns the session and client of token when the device is
// logged in: ErrNoSession when no client runs, ErrNotLoggedIn when the
// device is not linked. A linked session that is reconnecting, or whose
// restore has not run yet (a connector that just took the shard over), is
// waited for, up to reconnectWait and ctx, and answers 503 past it: a
// client told "not logged in" would fetch a QR code for nothing.
func (m *Manager) loggedIn(ctx context.Context, token string) (*session, *whatsmeow.Client, error) {
	deadline := time.Now().Add(reconnectWait)
	for {
		s := m.lookup(token)
		var (
			st  shared.Status
			cli *whatsmeow.Client
		)
		if s != nil {
			st, _, cli = s.snapshot()
		}
		switch {
		case cli != nil && st.LoggedIn && cli.IsLoggedIn():
			return s, cli, nil
		case cli != nil && st.JID != "" && st.State == shared.StateConnecting:
		case s == nil && m.restorePending(ctx, token):
		case cli == nil:
			return nil, nil, shared.ErrNoSession
		default:
			return nil, nil, shared.ErrNotLoggedIn
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return nil, nil, errReconnecting
		}
		if s != nil && cli != nil {
			s.wait(ctx, left, func(st shared.Status) bool { return st.LoggedIn || st.State != shared.StateConnecting })
		} else {
			sleep(ctx, min(left, 100*time.Millisecond))
		}
	}
}

// restorePending reports whether token, which has no session here, is a
// linked session that should be connected: its restore has not run yet
// (this process just started, or its connector just took the shard over).
func (m *Manager) restorePending(ctx context.Context, token string) bool {
	row, err := m.store.Get(ctx, token)
	return err == nil && row.AutoConnect && row.JID != ""
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// send sends one message, at most once per ID and token.
func (m *Manager) send(ctx context.Context, token string, req shared.SendRequest) (shared.SendResult, error) {
	s, cli, err := m.loggedIn(ctx, token)
	if err != nil {
		return shared.SendResult{}, err
	}
	to, err := types.ParseJID(req.To)
	if err != nil || to.User == "" {
		return shared.SendResult{}, shared.Errorf(shared.EINVALID, "invalid recipient")
	}
	s.outbox.lock.Lock()
	defer s.outbox.lock.Unlock()
	if res, ok := s.outbox.sent[req.ID]; ok && req.ID != "" {
		return res, nil
	}
	if log := m.cfg.SentLog; log != nil && req.IDFromClient {
		res, ok, err := log.Sent(ctx, token, req.ID)
		if err != nil {
			return shared.SendResult{}, err // unsure: sending could duplicate
		}
		if ok {
			s.outbox.remember(req.ID, res)
			return res, nil
		}
	}
	msg, err := m.buildMessage(ctx, cli, req)
	if err != nil {
		return shared.SendResult{}, err
	}
	resp, err := cli.SendMessage(ctx, to, msg, whatsmeow.SendRequestExtra{ID: req.ID})
	if err != nil {
		return shared.SendResult{}, m.sendError(ctx, s, err)
	}
	m.metrics.sent.Inc()
	res := shared.SendResult{ID: resp.ID, Timestamp: resp.Timestamp.Unix()}
	s.outbox.remember(resp.ID, res)
	if log := m.cfg.SentLog; log != nil && req.IDFromClient {
		if err := log.RecordSent(context.WithoutCancel(ctx), token, resp.ID, res); err != nil {
			m.log.Warn("could not record a sent message; a retry on another connector may send it again", "session", s.logID, "err", err)
		}
	}
	return res, nil
}

// sendError maps a whatsmeow send failure to a client-safe error.
func (m *Manager) sendError(ctx context.Context, s *session, err error) error {
	m.metrics.sendErrors.Inc()
	m.log.Warn("send failed", "session", s.logID, "err", err)
	switch {
	case ctx.Err() != nil:
		return stopped(ctx)
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn):
		return shared.ErrNotLoggedIn
	case errors.Is(err, whatsmeow.ErrServerReturnedError):
		return shared.Wrap(err, shared.EINVALID, "WhatsApp refused the message")
	case errors.Is(err, whatsmeow.ErrMessageTimedOut):
		return shared.Wrap(err, shared.EUNAVAILABLE, "WhatsApp did not acknowledge the message in time")
	}
	return shared.Wrap(err, shared.EUNAVAILABLE, "could not send the message")
}

// buildMessage turns req into the WhatsApp message to send.
func (m *Manager) buildMessage(ctx context.Context, cli *whatsmeow.Client, req shared.SendRequest) (*waE2E.Message, error) {
	switch req.Kind {
	case shared.KindText:
		ci := contextInfo(req)
		if ci == nil {
			return &waE2E.Message{Conversation: proto.String(req.Text)}, nil
		}
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(req.Text), ContextInfo: ci}}, nil
	case shared.KindLocation:
		if req.Location == nil {
			break
		}
		return &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude:  proto.Float64(req.Location.Latitude),
			DegreesLongitude: proto.Float64(req.Location.Longitude),
			Name:             nonEmpty(req.Location.Name),
			ContextInfo:      contextInfo(req),
		}}, nil
	case shared.KindContact:
		if req.Contact == nil {
			break
		}
		return &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
			DisplayName: proto.String(req.Contact.Name),
			Vcard:       proto.String(req.Contact.Vcard),
			ContextInfo: contextInfo(req),
		}}, nil
	case shared.KindPoll:
		if req.Poll == nil {
			break
		}
		return cli.BuildPollCreation(req.Poll.Question, req.Poll.Options, req.Poll.MaxAnswer), nil
	case shared.KindImage, shared.KindVideo, shared.KindAudio, shared.KindDocument, shared.KindSticker:
		return m.buildMedia(ctx, cli, req)
	}
	return nil, shared.Errorf(shared.EINVALID, "invalid message: kind %q without its body", req.Kind)
}

// contextInfo is the quote and mentions of req, or nil.
func contextInfo(req shared.SendRequest) *waE2E.ContextInfo {
	if req.Reply == nil && len(req.Mentions) == 0 {
		return nil
	}
	ci := &waE2E.ContextInfo{MentionedJID: req.Mentions}
	if req.Reply != nil {
		ci.StanzaID = proto.String(req.Reply.ID)
		ci.Participant = nonEmpty(req.Reply.Participant)
		ci.QuotedMessage = &waE2E.Message{Conversation: proto.String("")}
	}
	return ci
}

// nonEmpty is s as an optional protobuf string: nil when empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
