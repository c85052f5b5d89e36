package connector

import (
	"context"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wago-gw/wago/shared"
)

// session is the connector's side of one token: at most one whatsmeow
// client, and the live state derived from that client's events.
type session struct {
	token string
	logID string

	// opLock serialises the lifecycle operations (connect, pair,
	// disconnect, logout, delete) of this token, so that two requests can
	// never open two sockets for one device.
	opLock sync.Mutex

	// stateLock guards the fields below.
	stateLock sync.Mutex
	client    *whatsmeow.Client
	// gen numbers clients; events of a client that is no longer current
	// carry an older gen and are ignored.
	gen      uint64
	stopQR   context.CancelFunc
	status   shared.Status
	qr       string
	code     string        // the last pairing code, while pairing
	changed  chan struct{} // closed and replaced on every change
	onChange func(token string, st shared.Status, qr string)
}

func newSession(token string, onChange func(string, shared.Status, string)) *session {
	return &session{
		token:    token,
		logID:    shared.LogID(token),
		status:   shared.Status{State: shared.StateDisconnected, Since: time.Now().UTC()},
		changed:  make(chan struct{}),
		onChange: onChange,
	}
}

// snapshot returns the status and the current QR code.
func (s *session) snapshot() (shared.Status, string, *whatsmeow.Client) {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.status, s.qr, s.client
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

// attach makes cli the current client and returns its generation.
func (s *session) attach(cli *whatsmeow.Client, stopQR context.CancelFunc) uint64 {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	s.gen++
	s.client, s.stopQR, s.qr, s.code = cli, stopQR, "", ""
	s.status = shared.Status{State: shared.StateConnecting, Since: time.Now().UTC()}
	if cli.Store.ID != nil {
		s.status.JID = cli.Store.ID.String()
	}
	s.notifyLocked()
	return s.gen
}

// detach forgets the client of generation gen (0: the current one), sets
// the final state with fn and returns the client so that the caller can
// disconnect it outside the lock. It returns nil if gen is not current.
func (s *session) detach(gen uint64, fn func(st *shared.Status)) *whatsmeow.Client {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if gen != 0 && gen != s.gen {
		return nil
	}
	cli, stop := s.client, s.stopQR
	s.client, s.stopQR, s.qr, s.code = nil, nil, "", ""
	s.gen++
	if stop != nil {
		stop()
	}
	before := s.status.State
	s.status.Connected, s.status.LoggedIn, s.status.HasQR = false, false, false
	fn(&s.status)
	if s.status.State != before {
		s.status.Since = time.Now().UTC()
	}
	s.notifyLocked()
	return cli
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
