package connector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/shared"
)

// metrics are the connector's counters. They exist whether or not they are
// registered (Config.Registerer), so that counting needs no nil checks.
type metrics struct {
	connects   prometheus.Counter
	qrCodes    prometheus.Counter
	pairings   *prometheus.CounterVec
	logins     prometheus.Counter
	logouts    prometheus.Counter
	reconnects prometheus.Counter
	permanent  *prometheus.CounterVec
	sent       prometheus.Counter
	received   prometheus.Counter
	sendErrors prometheus.Counter
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// newMetrics returns the connector's metrics, registered on reg (nil: not
// registered), with the sessions-by-state gauge read from m at each scrape.
func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	mt := &metrics{
		connects: counter("wago_connects_total", "WhatsApp clients started: connects, pairings and restores."),
		qrCodes:  counter("wago_qr_codes_total", "QR codes shown for pairing."),
		pairings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wago_pairings_total", Help: "Pairings of a phone with a session, by result (success, failure).",
		}, []string{"result"}),
		logins:     counter("wago_logins_total", "Connections logged in to WhatsApp (every Connected event, reconnections included)."),
		logouts:    counter("wago_logouts_total", "Devices logged out through the API (logout and delete of a linked device)."),
		reconnects: counter("wago_reconnects_total", "Connections WhatsApp dropped, after which the client reconnects by itself."),
		permanent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wago_permanent_disconnects_total",
			Help: "Clients WhatsApp ended for good, by reason (the session's state: logged_out, replaced, banned, outdated, failed).",
		}, []string{"reason"}),
		sent:       counter("wago_messages_sent_total", "Messages sent (text, media, location, contact, poll, reaction, edit, revoke)."),
		received:   counter("wago_messages_received_total", "Messages received from WhatsApp."),
		sendErrors: counter("wago_send_errors_total", "Sends WhatsApp did not accept or that failed on the way."),
	}
	if reg != nil {
		reg.MustRegister(mt.connects, mt.qrCodes, mt.pairings, mt.logins, mt.logouts, mt.reconnects,
			mt.permanent, mt.sent, mt.received, mt.sendErrors, sessionsCollector{m})
	}
	return mt
}

// states are the states the sessions gauge always shows.
var states = []string{
	shared.StateDisconnected, shared.StateConnecting, shared.StateQR, shared.StatePairing, shared.StateConnected,
	shared.StateLoggedOut, shared.StateReplaced, shared.StateBanned, shared.StateOutdated, shared.StateFailed,
}

var sessionsDesc = prometheus.NewDesc("wago_sessions", "Sessions this process holds, by state.", []string{"state"}, nil)

// sessionsCollector counts the manager's sessions by state at each scrape.
type sessionsCollector struct{ m *Manager }

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sessionsDesc }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.m.States()
	for _, st := range states {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// States counts the sessions this process holds by state.
func (m *Manager) States() map[string]int {
	m.sessionsLock.RLock()
	list := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		list = append(list, s)
	}
	m.sessionsLock.RUnlock()
	counts := make(map[string]int, len(states))
	for _, s := range list {
		st, _, _ := s.snapshot()
		state := st.State
		if state == "" {
			state = shared.StateDisconnected
		}
		counts[state]++
	}
	return counts
}
