package connector

import (
	"context"

	"github.com/wago-gw/wago/shared"
)

// The session ops: connect, pair, disconnect, logout and delete.
//
// Each takes the token's opLock, but none holds it while waiting on a dial:
// connect and pair attach a new client under the lock and wait for its
// attempt after releasing it, so disconnect, logout and delete of the same
// token answer while a connect hangs, and cancel it. Delete (and Stop) mark
// the session dead under the lock, after which no client is attached to it
// again; the next op starts from a fresh session and a fresh row read, so a
// deleted token never gets a socket back.

func init() {
	handle(shared.OpConnect, func(m *Manager, ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		return m.connect(ctx, token, opts, false)
	})
	handle(shared.OpPair, (*Manager).pair)
	handle(shared.OpDisconnect, (*Manager).disconnect)
	handle(shared.OpLogout, (*Manager).logout)
	handle(shared.OpDelete, (*Manager).delete)
}

var errShuttingDown = shared.Errorf(shared.EUNAVAILABLE, "connector is shutting down")

// begin takes the opLock of token's live session and reads the row under
// it, so that a delete that finished before is seen. On success the caller
// holds s.opLock.
func (m *Manager) begin(ctx context.Context, token string) (*session, *shared.Session, error) {
	for {
		if m.closing.Load() {
			return nil, nil, errShuttingDown
		}
		s := m.session(token)
		s.opLock.Lock()
		if s.isDead() { // deleted or stopped while we waited: it is forgotten
			s.opLock.Unlock()
			continue
		}
		if ctx.Err() != nil {
			s.opLock.Unlock()
			return nil, nil, stopped(ctx)
		}
		row, err := m.store.Get(ctx, token)
		if err != nil {
			s.opLock.Unlock()
			return nil, nil, err
		}
		return s, row, nil
	}
}

// isDead reports whether s was deleted or stopped.
func (s *session) isDead() bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.dead
}

// connect starts or restores a client. A restore (at start, or when a
// connector gains a shard) keeps retrying in the background while WhatsApp
// cannot be reached; a client's connect fails at once, so that it gets a
// clear answer.
func (m *Manager) connect(ctx context.Context, token string, opts shared.ConnectOptions, restore bool) (shared.ConnectResult, error) {
	s, row, err := m.begin(ctx, token)
	if err != nil {
		return shared.ConnectResult{}, err
	}
	st, _, cli := s.snapshot()
	var a *attempt
	if cli == nil {
		if restore && !row.AutoConnect {
			s.opLock.Unlock()
			return shared.ConnectResult{Status: st}, nil // disconnected meanwhile
		}
		a, err = m.start(ctx, s, row, restore)
	}
	s.opLock.Unlock()
	if err = a.outcome(ctx, err); err != nil {
		st, _, _ = s.snapshot()
		return shared.ConnectResult{Status: st}, err
	}
	if !opts.Immediate || opts.Phone != "" {
		st = s.wait(ctx, m.cfg.WaitTimeout, settled)
	} else {
		st, _, _ = s.snapshot()
	}
	res := shared.ConnectResult{Status: st}
	if opts.Phone != "" && !st.LoggedIn && st.JID == "" {
		code, err := m.pairPhone(ctx, s, opts.Phone)
		if err != nil {
			return res, err
		}
		res.LinkingCode = code
		res.Status, _, _ = s.snapshot()
	}
	return res, nil
}

// pair starts the client if needed and asks for a pairing code.
func (m *Manager) pair(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if opts.Phone == "" {
		return shared.ConnectResult{}, shared.Errorf(shared.EINVALID, "missing Phone")
	}
	s, row, err := m.begin(ctx, token)
	if err != nil {
		return shared.ConnectResult{}, err
	}
	st, _, cli := s.snapshot()
	var a *attempt
	switch {
	case st.LoggedIn:
		err = shared.ErrAlreadyLoggedIn
	case cli == nil && row.JID != "":
		err = shared.Errorf(shared.ECONFLICT, "device already linked: call /session/connect to restore it, or /session/logout first")
	case cli == nil:
		a, err = m.start(ctx, s, row, false)
	case st.JID != "":
		err = shared.Errorf(shared.ECONFLICT, "device already linked")
	}
	s.opLock.Unlock()
	if err = a.outcome(ctx, err); err != nil {
		st, _, _ = s.snapshot()
		return shared.ConnectResult{Status: st}, err
	}
	code, err := m.pairPhone(ctx, s, opts.Phone)
	st, _, _ = s.snapshot()
	return shared.ConnectResult{Status: st, LinkingCode: code}, err
}

// disconnect closes the socket and keeps the device linked. With no client
// running it answers ErrNoSession and changes nothing.
func (m *Manager) disconnect(ctx context.Context, token string, _ shared.Empty) (shared.Empty, error) {
	s := m.lookup(token)
	if s == nil {
		return shared.Empty{}, shared.ErrNoSession
	}
	s.opLock.Lock()
	defer s.opLock.Unlock()
	cli := s.detach(0, func(st *shared.Status) { st.State, st.LastError = shared.StateDisconnected, "" })
	if cli == nil {
		return shared.Empty{}, shared.ErrNoSession
	}
	waitClosed(s.closeLater(cli), socketCloseWait)
	if _, err := m.store.Update(context.WithoutCancel(ctx), token, shared.SessionUpdate{AutoConnect: shared.Ptr(false)}); err != nil {
		m.log.Warn("could not clear auto-connect", "session", s.logID, "err", err)
	}
	return shared.Empty{}, nil
}

// logout unlinks the device from the phone and deletes its keys. It
// completes even if the caller stops waiting.
func (m *Manager) logout(ctx context.Context, token string, _ shared.Empty) (shared.Empty, error) {
	s := m.lookup(token)
	if s == nil {
		return shared.Empty{}, shared.ErrNotLoggedIn
	}
	ctx = context.WithoutCancel(ctx)
	s.opLock.Lock()
	defer s.opLock.Unlock()
	st, _, cli := s.snapshot()
	if cli == nil || !st.LoggedIn {
		return shared.Empty{}, shared.ErrNotLoggedIn
	}
	m.unlink(ctx, s, cli)
	if c := s.detach(0, func(st *shared.Status) { st.State, st.JID, st.LastError = shared.StateLoggedOut, "", "" }); c != nil {
		s.closeLater(c)
	}
	return shared.Empty{}, m.forgetDevice(ctx, s)
}

// forgetDevice clears the row's JID and auto-connect flag.
func (m *Manager) forgetDevice(ctx context.Context, s *session) error {
	_, err := m.store.Update(ctx, s.token, shared.SessionUpdate{JID: shared.Ptr(""), AutoConnect: shared.Ptr(false)})
	return err
}

// delete stops the client, unlinks the device if it is linked (connecting
// just for that if it is offline, within UnlinkTimeout), deletes its keys
// and the row, and forgets the session. It completes even if the caller
// stops waiting.
func (m *Manager) delete(ctx context.Context, token string, _ shared.Empty) (shared.Empty, error) {
	ctx = context.WithoutCancel(ctx)
	s, row, err := m.begin(ctx, token)
	if err != nil {
		return shared.Empty{}, err
	}
	defer s.opLock.Unlock()
	defer m.forget(s)

	st, _, cli := s.snapshot()
	if cli != nil && st.LoggedIn {
		m.unlink(ctx, s, cli) // needs the live connection: before kill
	}
	if cli := s.kill(func(st *shared.Status) { st.State, st.JID, st.LastError = shared.StateDisconnected, "", "" }); cli != nil {
		waitClosed(s.closeLater(cli), socketCloseWait)
	}
	if !st.LoggedIn && row.JID != "" {
		m.unlinkOffline(ctx, s, row)
	}
	if err := m.store.Delete(ctx, token); err != nil && shared.ErrorCode(err) != shared.ENOTFOUND {
		return shared.Empty{}, err
	}
	if m.cfg.OnDelete != nil {
		m.cfg.OnDelete(token)
	}
	return shared.Empty{}, nil
}
