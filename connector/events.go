package connector

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wago-gw/wago/shared"
)

// handleEvent turns one whatsmeow event of client generation gen into
// session state. It runs on the client's event goroutine and must return
// quickly: it only updates memory, and writes the row on the rare events
// that change what is stored.
func (m *Manager) handleEvent(s *session, gen uint64, cli *whatsmeow.Client, evt any) {
	switch evt := evt.(type) {
	case *events.Connected:
		jid := ""
		if cli.Store.ID != nil {
			jid = cli.Store.ID.String()
		}
		s.update(gen, func(st *shared.Status) {
			st.Connected, st.LoggedIn, st.JID = true, cli.IsLoggedIn(), jid
			st.State, st.LastError = shared.StateConnected, ""
		})
		m.metrics.logins.Inc()
		m.log.Info("session connected", "session", s.logID)
	case *events.PairSuccess:
		jid := evt.ID.String()
		s.update(gen, func(st *shared.Status) { st.JID = jid })
		m.metrics.pairings.WithLabelValues("success").Inc()
		m.saveRow(s, shared.SessionUpdate{JID: &jid, AutoConnect: shared.Ptr(true)})
		m.log.Info("device linked", "session", s.logID, "platform", evt.Platform)
	case *events.PairError:
		s.update(gen, func(st *shared.Status) { st.LastError = "pairing failed: scan a new QR code" })
		m.metrics.pairings.WithLabelValues("failure").Inc()
		m.log.Warn("pairing failed", "session", s.logID, "err", evt.Error)
	case *events.Message:
		m.metrics.received.Inc()
	case *events.Disconnected:
		m.metrics.reconnects.Inc()
		s.update(gen, func(st *shared.Status) {
			st.Connected, st.LoggedIn = false, false
			if st.State == shared.StateConnected {
				st.State = shared.StateConnecting
			}
		})
	case *events.KeepAliveTimeout:
		m.log.Debug("keepalive timeout", "session", s.logID, "count", evt.ErrorCount)
	case *events.LoggedOut:
		m.permanent(s, gen, cli, shared.StateLoggedOut, "logged out from WhatsApp: scan a new QR code", true)
	case *events.StreamReplaced:
		m.permanent(s, gen, cli, shared.StateReplaced, "another client connected with this device", false)
	case *events.TemporaryBan:
		m.permanent(s, gen, cli, shared.StateBanned, "temporarily banned by WhatsApp: "+evt.String(), false)
	case *events.ClientOutdated:
		m.permanent(s, gen, cli, shared.StateOutdated, "WhatsApp rejected the client version: set WAGO_WA_VERSION to the current one", false)
	case *events.ConnectFailure:
		m.permanent(s, gen, cli, shared.StateFailed, "WhatsApp refused the connection: "+evt.Reason.String(), false)
	case events.PermanentDisconnect:
		m.permanent(s, gen, cli, shared.StateFailed, evt.PermanentDisconnectDescription(), false)
	}
}

// permanent ends a client that whatsmeow will not reconnect. A logged-out
// device's keys are already gone, so its JID is cleared too.
func (m *Manager) permanent(s *session, gen uint64, cli *whatsmeow.Client, state, why string, unlinked bool) {
	detached := s.detach(gen, func(st *shared.Status) {
		st.State, st.LastError = state, why
		if unlinked {
			st.JID = ""
		}
	})
	if detached == nil {
		return
	}
	m.metrics.permanent.WithLabelValues(state).Inc()
	m.log.Warn("session stopped", "session", s.logID, "state", state, "reason", why)
	u := shared.SessionUpdate{AutoConnect: shared.Ptr(false)}
	if unlinked {
		u.JID = shared.Ptr("")
	}
	m.saveRow(s, u)
	s.closeLater(detached)
}

// saveRow writes u to the token's row, logging a failure.
func (m *Manager) saveRow(s *session, u shared.SessionUpdate) {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	if _, err := m.store.Update(ctx, s.token, u); err != nil {
		m.log.Error("could not update session row", "session", s.logID, "err", err)
	}
}

// consumeQR follows the QR channel of client generation gen.
func (m *Manager) consumeQR(s *session, gen uint64, ch <-chan whatsmeow.QRChannelItem) {
	for item := range ch {
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			s.setQR(gen, item.Code)
			m.metrics.qrCodes.Inc()
			m.emitQR(s, item.Code)
		case whatsmeow.QRChannelSuccess.Event:
			s.setQR(gen, "")
		case whatsmeow.QRChannelTimeout.Event:
			if cli := s.detach(gen, func(st *shared.Status) {
				st.State, st.LastError = shared.StateDisconnected, "QR code was not scanned in time: call /session/connect again"
			}); cli != nil {
				s.closeLater(cli)
			}
		case whatsmeow.QRChannelEventError:
			s.update(gen, func(st *shared.Status) { st.LastError = "pairing failed: scan a new QR code" })
		case whatsmeow.QRChannelClientOutdated.Event:
			if cli := s.detach(gen, func(st *shared.Status) {
				st.State, st.LastError = shared.StateOutdated, "WhatsApp rejected the client version: set WAGO_WA_VERSION to the current one"
			}); cli != nil {
				s.closeLater(cli)
			}
		}
	}
}
