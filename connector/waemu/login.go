package waemu

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
)

// login handles a login client payload: a registered device with the same Noise key
// gets <success>, then what was queued for it while offline and <ib><offline count/>;
// anything else gets <failure reason=401>. An older socket of the same device gets
// <stream:error><conflict type=replaced/>.
func (s *Server) login(c *conn, p *waWa6.ClientPayload) {
	user := strconv.FormatUint(p.GetUsername(), 10)
	s.mu.Lock()
	d, ok := s.devices[deviceKey(user, uint16(p.GetDevice()))]
	if !ok || d.noisePub != c.clientStatic {
		s.mu.Unlock()
		s.log.Infof("Refusing login of %s.%d: not registered", user, p.GetDevice())
		c.sendThenClose(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": "401", "location": "emu"}})
		return
	}
	old := make([]*conn, 0, len(d.conns))
	for oc := range d.conns {
		old = append(old, oc)
		oc.dev = nil
		delete(d.conns, oc)
	}
	if len(old) > 0 {
		d.replaced++
	}
	c.dev = d
	d.conns[c] = struct{}{}
	d.logins++
	// What an earlier socket got but never acked comes first, then what
	// was queued while the device was offline.
	pending := append(d.unacked, d.pending...)
	d.pending, d.unacked = nil, nil
	s.notifyLocked()
	s.mu.Unlock()

	for _, oc := range old {
		oc.sendThenClose(waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{
			Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"},
		}}})
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if err := c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":                    now,
		"lid":                  d.lid,
		"location":             "emu",
		"creation":             now,
		"props":                "1",
		"abprops":              "1",
		"companion_enc_static": "emu",
	}}); err != nil {
		s.log.Warnf("Failed to send success to %s: %v", d.jid, err)
		return
	}
	s.log.Infof("Device %s logged in", d.jid)
	for _, n := range pending {
		if err := c.send(n); err != nil {
			return
		}
	}
	_ = c.send(waBinary.Node{Tag: "ib", Content: []waBinary.Node{{
		Tag: "offline", Attrs: waBinary.Attrs{"count": strconv.Itoa(len(pending))},
	}}})
}

// RemoveDevice unlinks a device on the server side: its live sockets get
// <stream:error code=401><conflict type=device_removed/> and later logins get
// <failure reason=401>.
func (s *Server) RemoveDevice(jid types.JID) error {
	s.mu.Lock()
	d, ok := s.devices[deviceKey(jid.User, jid.Device)]
	if !ok {
		s.mu.Unlock()
		return ErrUnknownDevice
	}
	conns := s.unregisterLocked(d)
	s.mu.Unlock()
	for _, c := range conns {
		c.sendThenClose(waBinary.Node{
			Tag:   "stream:error",
			Attrs: waBinary.Attrs{"code": "401"},
			Content: []waBinary.Node{{
				Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"},
			}},
		})
	}
	return nil
}

// unregisterLocked forgets a device and returns its sockets, detached. s.mu must be held.
func (s *Server) unregisterLocked(d *device) []*conn {
	delete(s.devices, deviceKey(d.acct.phone, d.jid.Device))
	delete(d.acct.devices, d.jid.Device)
	conns := make([]*conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
		c.dev = nil
		delete(d.conns, c)
	}
	s.notifyLocked()
	return conns
}

// removeCompanion handles the client's own logout (md remove-companion-device).
func (s *Server) removeCompanion(c *conn, node waBinary.Node) {
	jid, _ := node.Attrs["jid"].(types.JID)
	s.mu.Lock()
	d := c.dev
	if d != nil && (jid.IsEmpty() || (jid.User == d.jid.User && jid.Device == d.jid.Device)) {
		s.unregisterLocked(d)
		s.log.Infof("Device %s logged out", d.jid)
	}
	s.mu.Unlock()
}
