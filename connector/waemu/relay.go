package waemu

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleMessage relays a client's <message> to each addressed device as
// <message from id t type> with that device's <enc>, then acks the sender.
func (s *Server) handleMessage(c *conn, node *waBinary.Node) {
	sender := s.authedDevice(c)
	id, _ := node.Attrs["id"].(string)
	to, _ := node.Attrs["to"].(types.JID)
	if sender == nil || id == "" {
		return
	}
	typ, _ := node.Attrs["type"].(string)
	if typ == "" {
		typ = "text"
	}
	t := strconv.FormatInt(time.Now().Unix(), 10)
	s.mu.Lock()
	pushName := sender.acct.pushName
	s.mu.Unlock()
	// Children every recipient gets beside its <enc>: the sender's device identity (for
	// pkmsg) and <meta> (e.g. polltype). Edits and revokes keep their edit attribute.
	var shared []waBinary.Node
	for _, child := range node.GetChildren() {
		if child.Tag == "device-identity" || child.Tag == "meta" {
			shared = append(shared, child)
		}
	}
	edit, _ := node.Attrs["edit"].(string)
	deliver := func(target types.JID, encs []waBinary.Node) {
		attrs := waBinary.Attrs{"from": sender.jid, "id": id, "t": t, "type": typ}
		if edit != "" {
			attrs["edit"] = edit
		}
		if pushName != "" {
			attrs["notify"] = pushName
		}
		if target.User == sender.jid.User {
			attrs["recipient"] = to
		}
		content := append(append([]waBinary.Node{}, encs...), shared...)
		s.deliver(target, waBinary.Node{Tag: "message", Attrs: attrs, Content: content}, true)
	}
	if participants, ok := node.GetOptionalChildByTag("participants"); ok {
		for _, p := range participants.GetChildren() {
			jid, ok := p.Attrs["jid"].(types.JID)
			if p.Tag == "to" && ok {
				deliver(jid, p.GetChildrenByTag("enc"))
			}
		}
	} else if encs := node.GetChildrenByTag("enc"); len(encs) > 0 && !to.IsEmpty() {
		deliver(to, encs)
	}
	_ = c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "message", "id": id, "from": to, "t": t}})
}

// handleReceipt relays a client's <receipt> to the device (or all devices of the user)
// it is addressed to. Inactive receipts arrive as plain delivery receipts.
func (s *Server) handleReceipt(c *conn, node *waBinary.Node) {
	sender := s.authedDevice(c)
	id, _ := node.Attrs["id"].(string)
	to, ok := node.Attrs["to"].(types.JID)
	if sender == nil || id == "" || !ok {
		return
	}
	s.receipted(sender, node)
	typ, _ := node.Attrs["type"].(string)
	attrs := waBinary.Attrs{"from": sender.jid, "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10)}
	if typ != "" && typ != "inactive" {
		attrs["type"] = typ
	}
	for _, k := range []string{"participant", "recipient"} {
		if v, ok := node.Attrs[k]; ok {
			attrs[k] = v
		}
	}
	out := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if children := node.GetChildren(); len(children) > 0 {
		out.Content = children
	}
	s.deliver(to, out, true)
	ack := waBinary.Attrs{"class": "receipt", "id": id, "from": to}
	if typ != "" {
		ack["type"] = typ
	}
	_ = c.send(waBinary.Node{Tag: "ack", Attrs: ack})
}

// handleChatState relays <chatstate to><composing/></chatstate> to the target's devices.
func (s *Server) handleChatState(c *conn, node *waBinary.Node) {
	sender := s.authedDevice(c)
	to, ok := node.Attrs["to"].(types.JID)
	if sender == nil || !ok {
		return
	}
	s.deliver(to, waBinary.Node{
		Tag:     "chatstate",
		Attrs:   waBinary.Attrs{"from": sender.jid.ToNonAD()},
		Content: node.GetChildren(),
	}, false)
}

// deliver sends a node to the authenticated sockets of the devices a JID names. With
// queue set, devices without a socket keep it until they log in. It returns how many
// sockets got the node.
func (s *Server) deliver(target types.JID, node waBinary.Node, queue bool) int {
	s.mu.Lock()
	var conns []*conn
	wakeContact := false
	for _, d := range s.targetsLocked(target) {
		if len(d.conns) == 0 {
			if queue && len(d.pending) < s.cfg.MaxPending {
				d.pending = append(d.pending, node)
				wakeContact = wakeContact || d.contact
			}
			continue
		}
		for c := range d.conns {
			conns = append(conns, c)
		}
		if node.Tag == "message" && len(d.unacked) < s.cfg.MaxPending {
			d.unacked = append(d.unacked, node)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.send(node) == nil {
			n++
		}
	}
	if wakeContact {
		go s.reconnectContact(s.currentRunCtx())
	}
	return n
}

// receipted forgets the messages a device's receipt acknowledges: its id and
// the ids of its <list><item id/></list>.
func (s *Server) receipted(d *device, receipt *waBinary.Node) {
	ids := map[string]bool{}
	if id, ok := receipt.Attrs["id"].(string); ok {
		ids[id] = true
	}
	if list, ok := receipt.GetOptionalChildByTag("list"); ok {
		for _, item := range list.GetChildrenByTag("item") {
			if id, ok := item.Attrs["id"].(string); ok {
				ids[id] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := d.unacked[:0]
	for _, n := range d.unacked {
		if id, _ := n.Attrs["id"].(string); !ids[id] {
			kept = append(kept, n)
		}
	}
	clear(d.unacked[len(kept):])
	d.unacked = kept
}
