package connector

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wago-gw/wago/shared"
)

// session is the connector's side of one token: at most one whatsmeow
// client, and the live state derived from that client's events.
//
// Locks: opLock serialises the lifecycle ops of the token, but is never
// held while waiting on WhatsApp to answer a dial, so that disconnect,
// logout and delete answer while a connect hangs; stateLock guards the
// state and is held only for memory updates.
type session struct {
	token string
	logID string

	// opLock serialises connect, pair, disconnect, logout and delete of this
	// token: together with attach refusing a dead session, it makes sure
	// that two requests never open two sockets for one device.
	opLock sync.Mutex
	// outbox is the send lane, independent of opLock: a send never waits
	// behind a connect.
	outbox outbox
	// webhook selects the events that go to the webhook outbox (webhook.go).
	webhook atomic.Pointer[shared.WebhookSettings]

	// stateLock guards the fields below.
	stateLock sync.Mutex
	client    *whatsmeow.Client
	// gen numbers clients; events of a client that is no longer current
	// carry an older gen and are ignored.
	gen uint64
	// cancel ends the current client's context: its dial, its connection
	// and its QR channel.
	cancel context.CancelFunc
	// dialed is the generation whose dial has succeeded.
	dialed uint64
	// lateCancels are the contexts of detached clients that had connected:
	// each ends once the client's socket is closed (closeAfter), because
	// ending it first races whatsmeow's read pump against Disconnect.
	lateCancels map[*whatsmeow.Client]context.CancelFunc
	// dead is set when the session is deleted or stopped: no client is
	// attached to it again, and the manager has forgotten it (or is about
	// to), so the next op starts from a fresh session and a fresh row read.
	dead bool
	// closing is closed when the last detached client's socket is closed.
	closing  chan struct{}
	status   shared.Status
	qr       string
	changed  chan struct{} // closed and replaced on every change
	onChange func(token string, st shared.Status, qr string)
}

// closedChan is a closed channel: nothing to wait for.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newSession(token string, onChange func(string, shared.Status, string)) *session {
	return &session{
		token:    token,
		logID:    shared.LogID(token),
		status:   shared.Status{State: shared.StateDisconnected, Since: time.Now().UTC()},
		closing:  closedChan,
		changed:  make(chan struct{}),
		onChange: onChange,
	}
}

// snapshot returns the status, the current QR code and the current client.
func (s *session) snapshot() (shared.Status, string, *whatsmeow.Client) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.status, s.qr, s.client
}

// current reports whether gen is the current client generation.
func (s *session) current(gen uint64) bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return gen == s.gen
}

// update changes the state of client generation gen (0: whatever is
// current) with fn, and wakes waiters. It reports whether gen was current.
func (s *session) update(gen uint64, fn func(st *shared.Status)) bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if gen != 0 && gen != s.gen {
		return false
	}
	before := s.status
	fn(&s.status)
	s.status.HasQR = s.qr != "" && !s.status.LoggedIn
	if s.status.State != before.State {
		s.status.Since = time.Now().UTC()
	}
	s.notifyLocked()
	return true
}

func (s *session) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	if s.onChange != nil {
		s.onChange(s.token, s.status, s.qr)
	}
}

// setQR records the current QR code of generation gen.
func (s *session) setQR(gen uint64, code string) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if gen != s.gen {
		return
	}
	s.qr = code
	s.status.HasQR = code != "" && !s.status.LoggedIn
	if code != "" && s.status.State == shared.StateConnecting {
		s.status.State = shared.StateQR
		s.status.Since = time.Now().UTC()
	}
	s.notifyLocked()
}

// attach makes cli the current client, whose context cancel ends, and
// returns its generation and the channel that is closed once the previous
// client's socket is closed. It fails on a dead session.
func (s *session) attach(cli *whatsmeow.Client, cancel context.CancelFunc) (uint64, <-chan struct{}, bool) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if s.dead {
		return 0, nil, false
	}
	s.gen++
	s.client, s.cancel, s.qr = cli, cancel, ""
	s.status = shared.Status{State: shared.StateConnecting, Since: time.Now().UTC()}
	if cli.Store.ID != nil {
		s.status.JID = cli.Store.ID.String()
	}
	s.notifyLocked()
	return s.gen, s.closing, true
}

// detach forgets the client of generation gen (0: the current one) and, if
// there was a client, sets the final state with fn. A client still
// dialling has its context ended at once (aborting the dial); a connected
// one when closeLater has closed its socket. It returns the client, whose
// socket the caller closes with closeLater; nil (and no change) if gen is
// not current or no client runs.
func (s *session) detach(gen uint64, fn func(st *shared.Status)) *whatsmeow.Client {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.detachLocked(gen, fn)
}

func (s *session) detachLocked(gen uint64, fn func(st *shared.Status)) *whatsmeow.Client {
	if (gen != 0 && gen != s.gen) || s.client == nil {
		return nil
	}
	cli, cancel := s.client, s.cancel
	s.client, s.cancel, s.qr = nil, nil, ""
	if s.dialed == s.gen { // connected: its context ends after Disconnect
		if s.lateCancels == nil {
			s.lateCancels = map[*whatsmeow.Client]context.CancelFunc{}
		}
		s.lateCancels[cli] = cancel
	} else { // still dialling: end it now, which aborts the dial
		cancel()
	}
	s.gen++
	before := s.status.State
	s.status.Connected, s.status.LoggedIn, s.status.HasQR = false, false, false
	fn(&s.status)
	if s.status.State != before {
		s.status.Since = time.Now().UTC()
	}
	s.notifyLocked()
	return cli
}

// kill marks the session dead, so that no client is attached to it again,
// and detaches the running client, if any, with fn.
func (s *session) kill(fn func(st *shared.Status)) *whatsmeow.Client {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	s.dead = true
	return s.detachLocked(0, fn)
}

// closeLater closes a detached client's socket in the background:
// whatsmeow's Disconnect waits for its socket lock, which a dial to a hung
// server holds for up to 20 s, and for the websocket close handshake. The
// next client of the session waits for it (see attach).
func (s *session) closeLater(cli *whatsmeow.Client) <-chan struct{} {
	return s.closeAfter(cli, nil, false)
}

// wait blocks until done(status) holds, ctx ends or timeout passes, and
// returns the last status.
func (s *session) wait(ctx context.Context, timeout time.Duration, done func(shared.Status) bool) shared.Status {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.stateLock.Lock()
		st, ch := s.status, s.changed
		s.stateLock.Unlock()
		if done(st) {
			return st
		}
		select {
		case <-ch:
		case <-timer.C:
			return st
		case <-ctx.Done():
			return st
		}
	}
}

// settled reports whether a connect attempt has reached a state worth
// answering: connected, showing a QR code, or stopped.
func settled(st shared.Status) bool {
	return st.Connected || st.HasQR || st.State != shared.StateConnecting
}

// waitClosed waits until ch is closed, for at most d; it reports whether it was.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// markDialed records that generation gen connected.
func (s *session) markDialed(gen uint64) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if gen == s.gen {
		s.dialed = gen
	}
}

// endContext ends the context of a detached client whose socket is closed.
func (s *session) endContext(cli *whatsmeow.Client) {
	s.stateLock.Lock()
	cancel := s.lateCancels[cli]
	delete(s.lateCancels, cli)
	s.stateLock.Unlock()
	if cancel != nil {
		cancel()
	}
}
