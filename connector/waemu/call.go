package waemu

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// CallReject is a call reject a device sent (whatsmeow's Client.RejectCall).
type CallReject struct {
	// CallID is the rejected call's id (the call-id of the offer).
	CallID string `json:"call_id"`
	// From is the rejecting device (with its device part).
	From types.JID `json:"from"`
	// To is the JID the reject was addressed to: the caller.
	To types.JID `json:"to"`
	// CallCreator is the call-creator the reject names.
	CallCreator types.JID `json:"call_creator"`
	// Time is when the emulator got the reject.
	Time time.Time `json:"time"`
}

// CallRejects returns the call rejects devices sent, oldest first.
func (s *Server) CallRejects() []CallReject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CallReject(nil), s.callRejects...)
}

// handleCall handles a client's <call to id><reject call-id call-creator count/></call>
// (whatsmeow call.go RejectCall) and other call stanzas: rejects are recorded, the
// stanza is relayed to the addressee's online devices as <call from id t>, and the
// sender gets <ack class=call>.
func (s *Server) handleCall(c *conn, node *waBinary.Node) {
	sender := s.authedDevice(c)
	id, _ := node.Attrs["id"].(string)
	to, ok := node.Attrs["to"].(types.JID)
	if sender == nil || !ok {
		return
	}
	now := time.Now()
	children := node.GetChildren()
	ackType := ""
	for _, child := range children {
		ackType = child.Tag
		if child.Tag != "reject" {
			continue
		}
		callID, _ := child.Attrs["call-id"].(string)
		creator, _ := child.Attrs["call-creator"].(types.JID)
		s.mu.Lock()
		s.callRejects = append(s.callRejects, CallReject{CallID: callID, From: sender.jid, To: to, CallCreator: creator, Time: now})
		s.mu.Unlock()
		s.log.Infof("Device %s rejected call %s from %s", sender.jid, callID, to)
	}
	if len(children) > 0 {
		s.deliver(to, waBinary.Node{
			Tag: "call",
			Attrs: waBinary.Attrs{
				"from": sender.jid,
				"id":   s.nextID(),
				"t":    strconv.FormatInt(now.Unix(), 10),
			},
			Content: children,
		}, false)
	}
	if id != "" {
		ack := waBinary.Attrs{"class": "call", "id": id, "from": to}
		if ackType != "" {
			ack["type"] = ackType
		}
		_ = c.send(waBinary.Node{Tag: "ack", Attrs: ack})
	}
}
