package connector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wago-gw/wago/shared"
)

// Starting, dialling and unlinking whatsmeow clients.

// socketCloseWait bounds how long disconnect and delete wait for a socket
// they close (the close handshake with a hung server can take seconds; the
// socket is closed in the background either way).
const socketCloseWait = 2 * time.Second

// previousSocketWait bounds how long a new client waits for the previous
// socket of its token to close before dialling. The previous client's
// context is already cancelled, which closes its websocket.
const previousSocketWait = 2 * time.Second

// errStoppedMeanwhile answers an op whose session the connector stopped
// while it ran (shutdown, or a shard handed over): the client may retry.
var errStoppedMeanwhile = shared.Errorf(shared.EUNAVAILABLE, "connector stopped the request: try again")

// Dial failures that are not network errors.
var (
	errDialTimeout = errors.New("timed out")
	errInterrupted = errors.New("interrupted")
)

// attempt is one connect attempt of a client: done is closed when it has
// connected (err nil) or failed.
type attempt struct {
	done chan struct{}
	err  error
}

// outcome is err if set (the attempt did not start), else the outcome of
// the attempt a (nil: no attempt was needed).
func (a *attempt) outcome(ctx context.Context, err error) error {
	if err != nil || a == nil {
		return err
	}
	return a.wait(ctx)
}

// wait waits for the attempt's outcome, or until ctx ends.
func (a *attempt) wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return stopped(ctx)
	}
}

// stopped is the error of an op whose context ended: its deadline passed
// (ETIMEOUT), or the connector cancelled it to stop or hand over the shard
// (EUNAVAILABLE: the client may retry at once).
func stopped(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return shared.Wrap(ctx.Err(), shared.ETIMEOUT, "request timed out before WhatsApp answered")
	}
	return shared.Wrap(ctx.Err(), shared.EUNAVAILABLE, "connector stopped the request: try again")
}

// start attaches a new client to s (whose opLock the caller holds), starts
// dialling in the background and returns the attempt; it records that the
// session should be connected, so that it is restored after a restart. With
// retry, a network failure is not one: whatsmeow keeps reconnecting in the
// background (InitialAutoReconnect) and the state says connecting.
func (m *Manager) start(ctx context.Context, s *session, row *shared.Session, retry bool) (*attempt, error) {
	select {
	case <-m.versionReady:
	case <-ctx.Done():
		return nil, stopped(ctx)
	}
	if m.closing.Load() || m.ctx.Err() != nil {
		return nil, errShuttingDown
	}
	dev, err := m.device(ctx, s, row)
	if err != nil {
		s.update(0, func(st *shared.Status) { st.State, st.LastError = shared.StateFailed, "could not read the device keys" })
		return nil, err
	}
	cli := whatsmeow.NewClient(dev, newWALogger(m.log.With("session", s.logID), m.cfg.WhatsmeowLevel.Level()))
	lighten(cli)
	cli.EnableAutoReconnect = true
	cli.InitialAutoReconnect = retry
	useHTTPClient(cli, m.http)

	cctx, cancel := context.WithCancel(m.ctx)
	var qrCh <-chan whatsmeow.QRChannelItem
	if dev.ID == nil {
		if qrCh, err = cli.GetQRChannel(cctx); err != nil {
			cancel()
			return nil, shared.Wrap(err, shared.EINTERNAL, "could not start QR pairing")
		}
	}
	gen, prev, ok := s.attach(cli, cancel)
	if !ok { // stopped meanwhile (shutdown, or the shard moved): a delete holds opLock
		cancel()
		return nil, errStoppedMeanwhile
	}
	m.metrics.connects.Inc()
	cli.AddEventHandlerWithSuccessStatus(m.eventHandler(s, gen, cli, row))
	if qrCh != nil {
		go m.consumeQR(s, gen, qrCh)
	}
	a := &attempt{done: make(chan struct{})}
	go m.dial(cctx, s, gen, cli, prev, a)

	if !row.AutoConnect {
		if _, err := m.store.Update(ctx, s.token, shared.SessionUpdate{AutoConnect: shared.Ptr(true)}); err != nil {
			m.log.Warn("could not record auto-connect", "session", s.logID, "err", err)
		}
	}
	return a, nil
}

// dial connects cli (generation gen of s) on ctx, the client's life, once
// the previous socket of the token is closed. It gives up after
// ConnectTimeout, or when the client is detached (ctx ends); on failure the
// session is left failed, with the cause, and the socket is closed once
// whatsmeow lets go of it.
func (m *Manager) dial(ctx context.Context, s *session, gen uint64, cli *whatsmeow.Client, prev <-chan struct{}, a *attempt) {
	defer close(a.done)
	timer := time.NewTimer(m.cfg.ConnectTimeout)
	defer timer.Stop()
	if !waitClosed(prev, previousSocketWait) {
		m.log.Warn("previous socket still closing; dialling anyway", "session", s.logID)
	}
	errc := make(chan error, 1)
	go func() { errc <- cli.ConnectContext(ctx) }()
	var err error
	pending := true
	select {
	case err = <-errc:
		pending = false
		if err == nil {
			s.markDialed(gen)
			return
		}
	case <-timer.C:
		err = fmt.Errorf("%w after %s", errDialTimeout, m.cfg.ConnectTimeout)
	case <-ctx.Done():
		err = errInterrupted
	}
	cause := dialCause(err)
	m.log.Warn("connect failed", "session", s.logID, "cause", cause, "err", err)
	s.detach(gen, func(st *shared.Status) {
		st.State, st.LastError = shared.StateFailed, "could not connect to WhatsApp: "+cause+"; try again"
	})
	// whatsmeow holds the client's socket lock until ConnectContext returns
	// (the Noise handshake waits up to 20 s whatever the context says).
	s.closeAfter(cli, errc, pending)
	if errors.Is(err, errInterrupted) {
		a.err = shared.Errorf(shared.ECONFLICT, "connect interrupted: the session was disconnected or deleted meanwhile")
		return
	}
	a.err = shared.Wrap(err, shared.EUNAVAILABLE, "could not connect to WhatsApp: "+cause)
}

// closeAfter closes cli's socket in the background, after its pending
// ConnectContext (whose result errc carries) has returned; the channel it
// returns is closed once the socket is.
func (s *session) closeAfter(cli *whatsmeow.Client, errc <-chan error, pending bool) <-chan struct{} {
	done := make(chan struct{})
	s.stateLock.Lock()
	s.closing = done
	s.stateLock.Unlock()
	go func() {
		defer close(done)
		if pending {
			<-errc
		}
		cli.Disconnect()
		s.endContext(cli)
	}()
	return done
}

// dialCause names the class of a dial failure for clients, without
// internals: timed out, DNS, refused, reset, TLS, handshake or HTTP status.
func dialCause(err error) string {
	var (
		dnsErr    *net.DNSError
		status    socket.ErrWithStatusCode
		recordErr tls.RecordHeaderError
		verifyErr *tls.CertificateVerificationError
		authErr   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, errInterrupted):
		return "interrupted by another request"
	case errors.Is(err, errDialTimeout), errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.As(err, &recordErr), errors.As(err, &verifyErr), errors.As(err, &authErr),
		errors.As(err, &hostErr), errors.As(err, &certErr):
		return "TLS handshake failed"
	case errors.As(err, &status):
		return fmt.Sprintf("WhatsApp answered HTTP %d", status.StatusCode)
	case strings.Contains(err.Error(), "noise handshake failed"):
		return "WhatsApp handshake failed"
	}
	return "network error"
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
	s.update(0, func(st *shared.Status) {
		if st.State == shared.StateQR || st.State == shared.StateConnecting {
			st.State = shared.StatePairing
		}
	})
	return code, nil
}

// unlink tells WhatsApp that cli's device is logged out, within
// UnlinkTimeout; when WhatsApp cannot be told, it closes the socket and
// still deletes the keys locally.
func (m *Manager) unlink(ctx context.Context, s *session, cli *whatsmeow.Client) {
	m.metrics.logouts.Inc()
	lctx, cancel := context.WithTimeout(ctx, m.cfg.UnlinkTimeout)
	defer cancel()
	if err := cli.Logout(lctx); err != nil {
		m.log.Warn("logout request failed; deleting the keys locally", "session", s.logID, "err", err)
		s.closeLater(cli)
		m.deleteKeys(ctx, s, cli.Store)
	}
}

// deleteKeys deletes a device's keys from the key store.
func (m *Manager) deleteKeys(ctx context.Context, s *session, dev *store.Device) {
	if dev.ID == nil {
		return
	}
	if err := dev.Delete(ctx); err != nil {
		m.log.Error("could not delete device keys", "session", s.logID, "err", err)
	}
}

// unlinkOffline unlinks a linked device whose client is not running: it
// connects just long enough to log out, within UnlinkTimeout, and deletes
// the keys locally if that fails.
func (m *Manager) unlinkOffline(ctx context.Context, s *session, row *shared.Session) {
	jid, err := types.ParseJID(row.JID)
	if err != nil {
		return
	}
	dev, err := m.keys.GetDevice(ctx, jid)
	if err != nil || dev == nil {
		return
	}
	cli := whatsmeow.NewClient(dev, newWALogger(m.log.With("session", s.logID), max(m.cfg.WhatsmeowLevel.Level(), slog.LevelError)))
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
	// The connection lives only for the unlink.
	cctx, cancel := context.WithTimeout(m.ctx, m.cfg.UnlinkTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- cli.ConnectContext(cctx) }()
	unlinked, pending := false, true
	select {
	case err = <-errc:
		pending = false
		if err == nil {
			select {
			case <-connected:
				unlinked = cli.Logout(cctx) == nil
			case <-cctx.Done():
			}
		}
	case <-cctx.Done():
	}
	if !unlinked {
		m.log.Warn("could not tell WhatsApp that the device is logged out; deleting the keys locally", "session", s.logID)
		m.deleteKeys(ctx, s, dev)
	}
	s.closeAfter(cli, errc, pending)
}
