// Package connector owns the whatsmeow clients: token -> client, connect,
// pair, disconnect, logout, delete and restore, and the live state derived
// from each client's events. In the all-in-one process it is the
// shared.Connector the HTTP functions call directly; in distributed mode a
// Redis Streams server calls it.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wago-gw/wago/shared"
)

// Config configures a Manager.
type Config struct {
	// Store holds the token rows; the manager records JIDs and the
	// AutoConnect flag in it.
	Store shared.Store
	// Container holds the whatsmeow devices (keys).
	Container *sqlstore.Container
	// Log receives the manager's logs; nil discards them.
	Log *slog.Logger
	// Hooks point whatsmeow at a test server; zero in production.
	Hooks Hooks
	// WAVersion is the WhatsApp Web version to announce; empty: fetch the
	// current one at start (FetchWAVersion), else whatsmeow's built-in one.
	WAVersion      string
	FetchWAVersion bool
	// ConnectTimeout bounds dialling and the Noise handshake. Default 20 s.
	ConnectTimeout time.Duration
	// WaitTimeout bounds how long a non-immediate connect, and a pair,
	// waits for the client to connect or show a QR code. Default 10 s.
	WaitTimeout time.Duration
	// RestoreConcurrency bounds the sessions restored at once. Default 32.
	RestoreConcurrency int
	// RestoreJitter is the largest random delay before each restore, so
	// that a fleet of restarts does not reconnect in lock step. Default 200 ms.
	RestoreJitter time.Duration
	// OnState, when set, is called on every change of a session's state,
	// in order, with the stateLock held: it must not block.
	OnState func(token string, st shared.Status, qr string)
	// OnDelete, when set, is called after Delete has forgotten a token.
	OnDelete func(token string)
}

func (c *Config) setDefaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 20 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 10 * time.Second
	}
	if c.RestoreConcurrency <= 0 {
		c.RestoreConcurrency = 32
	}
	if c.RestoreJitter < 0 {
		c.RestoreJitter = 0
	} else if c.RestoreJitter == 0 {
		c.RestoreJitter = 200 * time.Millisecond
	}
}

// Manager is the connector: it holds at most one whatsmeow client per token.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	store shared.Store
	keys  *sqlstore.Container

	// ctx is the life of every connection; cancel ends them all.
	ctx    context.Context
	cancel context.CancelFunc
	// versionReady is closed once the announced version is settled.
	versionReady chan struct{}
	// http is shared by every whatsmeow client.
	http *http.Client

	// sessionsLock guards sessions.
	sessionsLock sync.RWMutex
	sessions     map[string]*session
}

var _ shared.Connector = (*Manager)(nil)

// New returns a Manager. It installs the hooks and starts settling the
// WhatsApp Web version in the background; it connects nothing (see Restore).
func New(cfg Config) *Manager {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: cfg.Log, store: cfg.Store, keys: cfg.Container,
		ctx: ctx, cancel: cancel,
		versionReady: make(chan struct{}),
		http:         cfg.Hooks.httpClient(),
		sessions:     map[string]*session{},
	}
	cfg.Hooks.install()
	go resolveVersion(ctx, cfg.WAVersion, cfg.FetchWAVersion && cfg.Hooks.Addr == "", m.log, m.versionReady)
	return m
}

// session returns the token's session, creating it if needed.
func (m *Manager) session(token string) *session {
	m.sessionsLock.RLock()
	s := m.sessions[token]
	m.sessionsLock.RUnlock()
	if s != nil {
		return s
	}
	m.sessionsLock.Lock()
	defer m.sessionsLock.Unlock()
	if s = m.sessions[token]; s == nil {
		s = newSession(token, m.cfg.OnState)
		m.sessions[token] = s
	}
	return s
}

func (m *Manager) lookup(token string) *session {
	m.sessionsLock.RLock()
	defer m.sessionsLock.RUnlock()
	return m.sessions[token]
}

// Connect implements shared.Connector.
func (m *Manager) Connect(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	return m.connect(ctx, token, opts, false)
}

// connect starts or restores a client. A restore (at start, or when a
// connector gains a shard) keeps retrying in the background while WhatsApp
// cannot be reached; a client's connect fails at once, so that it gets a
// clear answer.
func (m *Manager) connect(ctx context.Context, token string, opts shared.ConnectOptions, restore bool) (shared.ConnectResult, error) {
	row, err := m.store.Get(ctx, token)
	if err != nil {
		return shared.ConnectResult{}, err
	}
	s := m.session(token)
	s.opLock.Lock()
	defer s.opLock.Unlock()

	st, _, cli := s.snapshot()
	if cli == nil {
		if restore && !row.AutoConnect {
			return shared.ConnectResult{Status: st}, nil // disconnected meanwhile
		}
		if err := m.launch(ctx, s, row, restore); err != nil {
			st, _, _ = s.snapshot()
			return shared.ConnectResult{Status: st}, err
		}
		if !opts.Immediate || opts.Phone != "" {
			st = s.wait(ctx, m.cfg.WaitTimeout, settled)
		} else {
			st, _, _ = s.snapshot()
		}
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

// Pair implements shared.Connector.
func (m *Manager) Pair(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if opts.Phone == "" {
		return shared.ConnectResult{}, shared.Errorf(shared.EINVALID, "missing Phone")
	}
	row, err := m.store.Get(ctx, token)
	if err != nil {
		return shared.ConnectResult{}, err
	}
	s := m.session(token)
	s.opLock.Lock()
	defer s.opLock.Unlock()

	st, _, cli := s.snapshot()
	if st.LoggedIn {
		return shared.ConnectResult{Status: st}, shared.ErrAlreadyLoggedIn
	}
	if cli == nil {
		if row.JID != "" {
			return shared.ConnectResult{Status: st}, shared.Errorf(shared.ECONFLICT, "device already linked: call /session/connect to restore it, or /session/logout first")
		}
		if err := m.launch(ctx, s, row, false); err != nil {
			st, _, _ = s.snapshot()
			return shared.ConnectResult{Status: st}, err
		}
	} else if st.JID != "" {
		return shared.ConnectResult{Status: st}, shared.Errorf(shared.ECONFLICT, "device already linked")
	}
	code, err := m.pairPhone(ctx, s, opts.Phone)
	st, _, _ = s.snapshot()
	return shared.ConnectResult{Status: st, LinkingCode: code}, err
}

// pairPhone asks WhatsApp for a pairing code once the client shows its
// first QR code (whatsmeow needs the pre-login socket up).
func (m *Manager) pairPhone(ctx context.Context, s *session, phone string) (string, error) {
	st := s.wait(ctx, m.cfg.WaitTimeout, func(st shared.Status) bool {
		return st.HasQR || st.LoggedIn || st.State != shared.StateConnecting && st.State != shared.StateQR && st.State != shared.StatePairing
	})
	_, _, cli := s.snapshot()
	switch {
	case st.LoggedIn:
		return "", shared.ErrAlreadyLoggedIn
	case cli == nil:
		return "", shared.Errorf(shared.EUNAVAILABLE, "WhatsApp connection closed before a pairing code could be requested")
	case !st.HasQR:
		return "", shared.Errorf(shared.ETIMEOUT, "WhatsApp did not offer pairing in time: try again")
	}
	pctx, cancel := context.WithTimeout(ctx, m.cfg.WaitTimeout)
	defer cancel()
	code, err := cli.PairPhone(pctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		m.log.Warn("pair code request failed", "session", s.logID, "err", err)
		if errors.Is(err, whatsmeow.ErrPhoneNumberTooShort) || errors.Is(err, whatsmeow.ErrPhoneNumberIsNotInternational) {
			return "", shared.Errorf(shared.EINVALID, "invalid Phone: use the international format, digits only")
		}
		return "", shared.Wrap(err, shared.EUNAVAILABLE, "WhatsApp refused the pairing code request")
	}
	s.update(0, func(st *shared.Status) { st.State = shared.StatePairing })
	return code, nil
}

// launch starts a client for s and records that the session should be
// connected, so that it is restored after a restart.
func (m *Manager) launch(ctx context.Context, s *session, row *shared.Session, restore bool) error {
	if err := m.start(ctx, s, row, restore); err != nil {
		return err
	}
	if !row.AutoConnect {
		if _, err := m.store.Update(ctx, s.token, shared.SessionUpdate{AutoConnect: shared.Ptr(true)}); err != nil {
			m.log.Warn("could not record auto-connect", "session", s.logID, "err", err)
		}
	}
	return nil
}

// start opens a new client for s (whose opLock the caller holds). On
// failure s is left in StateFailed with the reason, ready for a later try.
// With retry, a network failure is not one: whatsmeow keeps reconnecting
// in the background (InitialAutoReconnect) and the state says connecting.
func (m *Manager) start(ctx context.Context, s *session, row *shared.Session, retry bool) error {
	select {
	case <-m.versionReady:
	case <-ctx.Done():
		return shared.Wrap(ctx.Err(), shared.ETIMEOUT, "connect cancelled")
	}
	if m.ctx.Err() != nil {
		return shared.Errorf(shared.EUNAVAILABLE, "connector is shutting down")
	}
	dev, err := m.device(ctx, s, row)
	if err != nil {
		s.update(0, func(st *shared.Status) { st.State, st.LastError = shared.StateFailed, "could not read the device keys" })
		return err
	}
	cli := whatsmeow.NewClient(dev, newWALogger(m.log.With("session", s.logID), slog.LevelWarn))
	cli.EnableAutoReconnect = true
	cli.InitialAutoReconnect = retry
	useHTTPClient(cli, m.http)

	var (
		qrCh   <-chan whatsmeow.QRChannelItem
		stopQR context.CancelFunc
	)
	if dev.ID == nil {
		var qrCtx context.Context
		qrCtx, stopQR = context.WithCancel(m.ctx)
		if qrCh, err = cli.GetQRChannel(qrCtx); err != nil {
			stopQR()
			return shared.Wrap(err, shared.EINTERNAL, "could not start QR pairing")
		}
	}
	gen := s.attach(cli, stopQR)
	cli.AddEventHandler(func(evt any) { m.handleEvent(s, gen, cli, evt) })
	if qrCh != nil {
		go m.consumeQR(s, gen, qrCh)
	}

	errc := make(chan error, 1)
	go func() { errc <- cli.ConnectContext(m.ctx) }()
	timer := time.NewTimer(m.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case err = <-errc:
	case <-timer.C:
		err = fmt.Errorf("timed out after %s", m.cfg.ConnectTimeout)
		go func() { <-errc; cli.Disconnect() }()
	}
	if err != nil {
		m.log.Warn("connect failed", "session", s.logID, "err", err)
		if c := s.detach(gen, func(st *shared.Status) {
			st.State, st.LastError = shared.StateFailed, "could not connect to WhatsApp: try again later"
		}); c != nil {
			c.Disconnect()
		}
		return shared.Wrap(err, shared.EUNAVAILABLE, "could not connect to WhatsApp")
	}
	return nil
}

// device returns the token's whatsmeow device: the stored one when the row
// has a JID and its keys exist, else a new one.
func (m *Manager) device(ctx context.Context, s *session, row *shared.Session) (*store.Device, error) {
	if row.JID == "" {
		return m.keys.NewDevice(), nil
	}
	jid, err := types.ParseJID(row.JID)
	if err != nil {
		return nil, shared.Wrap(err, shared.EINTERNAL, "stored JID is invalid")
	}
	dev, err := m.keys.GetDevice(ctx, jid)
	if err != nil {
		return nil, shared.Wrap(err, shared.EINTERNAL, "could not read the device keys")
	}
	if dev == nil {
		m.log.Warn("device keys missing: a new QR code is needed", "session", s.logID)
		if _, err := m.store.Update(ctx, s.token, shared.SessionUpdate{JID: shared.Ptr("")}); err != nil {
			return nil, err
		}
		return m.keys.NewDevice(), nil
	}
	return dev, nil
}

// Status implements shared.Connector.
func (m *Manager) Status(_ context.Context, token string) (shared.Status, error) {
	if s := m.lookup(token); s != nil {
		st, _, _ := s.snapshot()
		return st, nil
	}
	return shared.Status{State: shared.StateDisconnected}, nil
}

// Statuses implements shared.Connector.
func (m *Manager) Statuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
	out := make([]shared.Status, len(tokens))
	for i, t := range tokens {
		out[i], _ = m.Status(ctx, t)
	}
	return out, nil
}

// QR implements shared.Connector.
func (m *Manager) QR(_ context.Context, token string) (string, error) {
	s := m.lookup(token)
	if s == nil {
		return "", shared.ErrNoSession
	}
	st, qr, cli := s.snapshot()
	switch {
	case st.LoggedIn:
		return "", shared.ErrAlreadyLoggedIn
	case cli == nil:
		return "", shared.ErrNoSession
	case qr == "" && st.JID != "":
		return "", shared.Errorf(shared.ECONFLICT, "device is linked: no QR code is needed, wait for the session to reconnect")
	case qr == "":
		return "", shared.Errorf(shared.ECONFLICT, "no QR code available yet: retry in a moment")
	}
	return qr, nil
}

// Disconnect implements shared.Connector.
func (m *Manager) Disconnect(ctx context.Context, token string) error {
	s := m.lookup(token)
	if s == nil {
		return shared.ErrNoSession
	}
	s.opLock.Lock()
	defer s.opLock.Unlock()
	cli := s.detach(0, func(st *shared.Status) { st.State, st.LastError = shared.StateDisconnected, "" })
	if cli == nil {
		return shared.ErrNoSession
	}
	cli.Disconnect()
	if _, err := m.store.Update(ctx, token, shared.SessionUpdate{AutoConnect: shared.Ptr(false)}); err != nil {
		m.log.Warn("could not clear auto-connect", "session", s.logID, "err", err)
	}
	return nil
}

// Logout implements shared.Connector.
func (m *Manager) Logout(ctx context.Context, token string) error {
	s := m.lookup(token)
	if s == nil {
		return shared.ErrNotLoggedIn
	}
	s.opLock.Lock()
	defer s.opLock.Unlock()
	st, _, cli := s.snapshot()
	if cli == nil || !st.LoggedIn {
		return shared.ErrNotLoggedIn
	}
	m.logout(ctx, s, cli)
	s.detach(0, func(st *shared.Status) { st.State, st.JID, st.LastError = shared.StateLoggedOut, "", "" })
	return m.forgetDevice(ctx, s)
}

// logout unlinks cli's device from the phone; when WhatsApp cannot be told,
// it still deletes the keys locally.
func (m *Manager) logout(ctx context.Context, s *session, cli *whatsmeow.Client) {
	lctx, cancel := context.WithTimeout(ctx, m.cfg.WaitTimeout)
	defer cancel()
	if err := cli.Logout(lctx); err != nil {
		m.log.Warn("logout request failed; deleting the keys locally", "session", s.logID, "err", err)
		cli.Disconnect()
		if cli.Store.ID != nil {
			if err := cli.Store.Delete(ctx); err != nil {
				m.log.Error("could not delete device keys", "session", s.logID, "err", err)
			}
		}
	}
}

// forgetDevice clears the row's JID and auto-connect flag.
func (m *Manager) forgetDevice(ctx context.Context, s *session) error {
	_, err := m.store.Update(ctx, s.token, shared.SessionUpdate{JID: shared.Ptr(""), AutoConnect: shared.Ptr(false)})
	return err
}

// Delete implements shared.Connector.
func (m *Manager) Delete(ctx context.Context, token string) error {
	row, err := m.store.Get(ctx, token)
	if err != nil {
		return err
	}
	s := m.session(token)
	s.opLock.Lock()
	defer s.opLock.Unlock()
	st, _, cli := s.snapshot()
	switch {
	case cli != nil && st.LoggedIn:
		m.logout(ctx, s, cli)
	case row.JID != "":
		if cli != nil {
			s.detach(0, func(st *shared.Status) {})
			cli.Disconnect()
		}
		m.logoutOffline(ctx, s, row)
	}
	if cli := s.detach(0, func(st *shared.Status) { st.State, st.JID = shared.StateDisconnected, "" }); cli != nil {
		cli.Disconnect()
	}
	m.sessionsLock.Lock()
	delete(m.sessions, token)
	m.sessionsLock.Unlock()
	if m.cfg.OnDelete != nil {
		m.cfg.OnDelete(token)
	}
	return nil
}

// logoutOffline unlinks a linked device whose client is not running: it
// connects just long enough to log out, and deletes the keys locally if
// that fails.
func (m *Manager) logoutOffline(ctx context.Context, s *session, row *shared.Session) {
	jid, err := types.ParseJID(row.JID)
	if err != nil {
		return
	}
	dev, err := m.keys.GetDevice(ctx, jid)
	if err != nil || dev == nil {
		return
	}
	cli := whatsmeow.NewClient(dev, newWALogger(m.log.With("session", s.logID), slog.LevelError))
	cli.EnableAutoReconnect = false
	useHTTPClient(cli, m.http)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	if err := cli.ConnectContext(m.ctx); err == nil {
		select {
		case <-connected:
		case <-time.After(m.cfg.WaitTimeout):
		case <-ctx.Done():
		}
	}
	m.logout(ctx, s, cli)
	cli.Disconnect()
}

// Restore reconnects every session that was connected when the process
// stopped (AutoConnect with a JID), at most RestoreConcurrency at once,
// each after a random delay up to RestoreJitter. keep, when non-nil,
// selects the tokens to restore (a connector restores only its shards). It
// returns when every attempt has finished.
func (m *Manager) Restore(ctx context.Context, keep func(token string) bool) (restored, failed int) {
	rows, err := m.store.List(ctx)
	if err != nil {
		m.log.Error("could not list sessions to restore", "err", err)
		return 0, 0
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sem  = make(chan struct{}, m.cfg.RestoreConcurrency)
		opts = shared.ConnectOptions{Immediate: true}
	)
	for _, row := range rows {
		if !row.AutoConnect || row.JID == "" || (keep != nil && !keep(row.Token)) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return restored, failed
		}
		wg.Add(1)
		go func(token string) {
			defer func() { <-sem; wg.Done() }()
			if j := m.cfg.RestoreJitter; j > 0 {
				time.Sleep(rand.N(j))
			}
			_, err := m.connect(ctx, token, opts, true)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				m.log.Warn("restore failed", "session", shared.LogID(token), "err", err)
			} else {
				restored++
			}
		}(row.Token)
	}
	wg.Wait()
	return restored, failed
}

// Stop disconnects the clients of the tokens keep selects (nil: all),
// without logging them out and without touching their rows (a connector
// that loses a shard calls it, so that another one can take over). It
// returns the tokens it looked at.
func (m *Manager) Stop(keep func(token string) bool) []string {
	var (
		wg     sync.WaitGroup
		tokens []string
	)
	m.sessionsLock.RLock()
	for token, s := range m.sessions {
		if keep != nil && !keep(token) {
			continue
		}
		tokens = append(tokens, token)
		wg.Add(1)
		go func(s *session) {
			defer wg.Done()
			s.opLock.Lock()
			defer s.opLock.Unlock()
			if cli := s.detach(0, func(st *shared.Status) { st.State = shared.StateDisconnected }); cli != nil {
				cli.Disconnect()
			}
		}(s)
	}
	m.sessionsLock.RUnlock()
	wg.Wait()
	return tokens
}

// Close disconnects every client without logging out and without changing
// the rows, so that the next start restores them. It returns when all are
// closed or ctx ends.
func (m *Manager) Close(ctx context.Context) {
	done := make(chan struct{})
	go func() { m.Stop(nil); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.log.Warn("shutdown deadline reached before every client closed")
	}
	m.cancel()
}
