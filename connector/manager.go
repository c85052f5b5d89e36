// Package connector owns the whatsmeow clients: token -> client, connect,
// pair, disconnect, logout, delete and restore, and the live state derived
// from each client's events. In the all-in-one process it is the
// shared.Connector the HTTP functions call directly; in distributed mode a
// Redis Streams server calls it.
//
// Files by feature: manager.go (configuration, the registry of sessions,
// the op table, shutdown), session.go (one token's state), lifecycle.go
// (connect, pair, disconnect, logout, delete), restore.go, live.go (status
// and QR), events.go (whatsmeow events -> state), whatsapp.go (the
// WhatsApp-side settings and test hooks).
package connector

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/keystore"
)

// Config configures a Manager.
type Config struct {
	// Store holds the token rows; the manager records JIDs and the
	// AutoConnect flag in it, and deletes rows on delete.
	Store shared.Store
	// Container holds the whatsmeow devices (keys): whatsmeow's sqlstore
	// (SQLite, PostgreSQL) or any store that passes shared/keystoretest.
	Container keystore.Store
	// Log receives the manager's logs; nil discards them.
	Log *slog.Logger
	// WhatsmeowLevel is the level from which whatsmeow's own logs pass into
	// Log; nil: warnings and errors.
	WhatsmeowLevel slog.Leveler
	// Registerer receives the connector's metrics (metrics.go); nil: none.
	Registerer prometheus.Registerer
	// Hooks point whatsmeow at a test server; zero in production.
	Hooks Hooks
	// WAVersion is the WhatsApp Web version to announce; empty: fetch the
	// current one at start (FetchWAVersion), else whatsmeow's built-in one.
	WAVersion      string
	FetchWAVersion bool
	// ConnectTimeout bounds a connect attempt: dialling, the Noise
	// handshake and waiting for the previous socket of the token to close.
	// A connect or pair against a hung server answers within it. Default 20 s.
	ConnectTimeout time.Duration
	// WaitTimeout bounds how long a non-immediate connect, and a pair,
	// waits for the client to connect or show a QR code. Default 10 s.
	WaitTimeout time.Duration
	// UnlinkTimeout bounds telling WhatsApp that a device is logged out (on
	// logout and delete, including the connect a delete of an offline
	// device needs); past it the keys are deleted locally. Default 5 s.
	UnlinkTimeout time.Duration
	// RestoreConcurrency bounds the sessions restored at once (over every
	// restore of the process). Default 32.
	RestoreConcurrency int
	// RestoreJitter is the largest random delay before each restore starts
	// (waited before it takes a RestoreConcurrency slot), so that a fleet
	// of restarts does not reconnect in lock step. Default 200 ms.
	RestoreJitter time.Duration
	// RestoreRetry is the first delay before a restore that could not reach
	// WhatsApp in time is tried again (then doubling, up to 5 min).
	// Default 30 s.
	RestoreRetry time.Duration
	// OnState, when set, is called on every change of a session's state,
	// in order, with the stateLock held: it must not block.
	OnState func(token string, st shared.Status, qr string)
	// OnDelete, when set, is called after Delete has forgotten a token.
	OnDelete func(token string)
	// SentLog, when set, remembers sent message IDs beyond this process, so
	// that a retried send with the same ID is not sent again after a
	// failover; each session also remembers its last 4096 in memory.
	SentLog SentLog
	// Outbox, when set, receives the events that each session's webhook
	// subscription selects, before whatsmeow acknowledges them.
	Outbox shared.Outbox
}

func (c *Config) setDefaults() {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.WhatsmeowLevel == nil {
		c.WhatsmeowLevel = slog.LevelWarn
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 20 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 10 * time.Second
	}
	if c.UnlinkTimeout <= 0 {
		c.UnlinkTimeout = 5 * time.Second
	}
	if c.RestoreRetry <= 0 {
		c.RestoreRetry = 30 * time.Second
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

// closeGrace bounds how long Stop waits for the sockets it closes.
const closeGrace = 5 * time.Second

// Manager is the connector: it holds at most one whatsmeow client per token.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	store shared.Store
	keys  keystore.Store

	// ctx is the life of every connection; cancel ends them all.
	ctx    context.Context
	cancel context.CancelFunc
	// closing is set when Close starts: no client is started after it.
	closing atomic.Bool
	// versionReady is closed once the announced version is settled.
	versionReady chan struct{}
	// http is shared by every whatsmeow client.
	http *http.Client
	// metrics counts what the connector does (metrics.go).
	metrics *metrics

	// sessionsLock guards sessions.
	sessionsLock sync.RWMutex
	sessions     map[string]*session

	// restoreSlots bounds the restores running at once, over every
	// Restore and shard restore (RestoreConcurrency).
	restoreSlots chan struct{}
}

var _ shared.Connector = (*Manager)(nil)

// New returns a Manager. It installs the hooks and starts settling the
// WhatsApp Web version in the background; it connects nothing (see Restore).
func New(cfg Config) *Manager {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: cfg.Log, store: cfg.Store, keys: cfg.Container,
		ctx: ctx, cancel: cancel, restoreSlots: make(chan struct{}, cfg.RestoreConcurrency),
		versionReady: make(chan struct{}),
		http:         cfg.Hooks.httpClient(),
		sessions:     map[string]*session{},
	}
	m.metrics = newMetrics(cfg.Registerer, m)
	cfg.Hooks.install()
	go resolveVersion(ctx, cfg.WAVersion, cfg.FetchWAVersion && cfg.Hooks.Addr == "", m.log, m.versionReady)
	return m
}

// handler runs one op on the manager; req is a value of the op's request
// type and the result a value of its result type.
type handler func(m *Manager, ctx context.Context, token string, req any) (any, error)

// handlers is the op table: each feature file registers its ops in init.
var handlers = map[string]handler{}

// handle registers fn as the connector's implementation of op.
func handle[Req, Res any](op *shared.Op[Req, Res], fn func(m *Manager, ctx context.Context, token string, req Req) (Res, error)) {
	if _, dup := handlers[op.Name()]; dup {
		panic("connector: op " + op.Name() + " registered twice")
	}
	handlers[op.Name()] = func(m *Manager, ctx context.Context, token string, req any) (any, error) {
		r, ok := req.(Req)
		if !ok {
			return nil, shared.Errorf(shared.EINTERNAL, "internal error: op %s got a request of type %T", op.Name(), req)
		}
		return fn(m, ctx, token, r)
	}
}

// Invoke implements shared.Invoker.
func (m *Manager) Invoke(ctx context.Context, token string, op shared.OpInfo, req any) (any, error) {
	h := handlers[op.Name()]
	if h == nil {
		return nil, shared.Errorf(shared.EINTERNAL, "internal error: op %s is not implemented", op.Name())
	}
	return h(m, ctx, token, req)
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

// lookup returns the token's session, or nil.
func (m *Manager) lookup(token string) *session {
	m.sessionsLock.RLock()
	defer m.sessionsLock.RUnlock()
	return m.sessions[token]
}

// forget removes s from the registry (if it is still the token's session).
func (m *Manager) forget(s *session) {
	m.sessionsLock.Lock()
	defer m.sessionsLock.Unlock()
	if m.sessions[s.token] == s {
		delete(m.sessions, s.token)
	}
}

// Stop ends the clients of the tokens keep selects (nil: all), without
// logging them out and without touching their rows: a connector that loses
// a shard calls it, so that another one can take over, and Close calls it.
// It does not wait for running ops: each stopped session is marked dead,
// which cancels its dial and refuses any later client, and is forgotten.
// It returns, with the tokens it stopped, once their sockets are closed or
// after closeGrace.
func (m *Manager) Stop(keep func(token string) bool) []string {
	m.sessionsLock.Lock()
	var stopped []*session
	for token, s := range m.sessions {
		if keep == nil || keep(token) {
			stopped = append(stopped, s)
			delete(m.sessions, token)
		}
	}
	m.sessionsLock.Unlock()

	tokens := make([]string, 0, len(stopped))
	var closing []<-chan struct{}
	for _, s := range stopped {
		tokens = append(tokens, s.token)
		if cli := s.kill(func(st *shared.Status) { st.State = shared.StateDisconnected }); cli != nil {
			closing = append(closing, s.closeLater(cli))
		}
	}
	deadline := time.Now().Add(closeGrace)
	for _, ch := range closing {
		if !waitClosed(ch, time.Until(deadline)) {
			m.log.Warn("some sockets were still closing when the stop deadline passed")
			break
		}
	}
	return tokens
}

// Close ends every client without logging out and without changing the
// rows, so that the next start restores them. Shutdown order: refuse new
// clients; mark every session dead and cancel its dial or connection;
// close the sockets (until ctx ends, or closeGrace); end the manager's
// context. Ops still running answer EUNAVAILABLE.
func (m *Manager) Close(ctx context.Context) {
	m.closing.Store(true)
	done := make(chan struct{})
	go func() { m.Stop(nil); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.log.Warn("shutdown deadline reached before every client closed")
	}
	m.cancel()
}
