package waemu

import (
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// PushPresence sends <presence from> (available, or unavailable with last seen now) to
// the device `to` (or every device of the account when `to` has no device part).
// It returns ErrNotOnline when no authenticated socket got it.
func (s *Server) PushPresence(to, from types.JID, available bool) error {
	attrs := waBinary.Attrs{"from": from.ToNonAD()}
	if !available {
		attrs["type"] = "unavailable"
		attrs["last"] = strconv.FormatInt(time.Now().Unix(), 10)
	}
	return s.push(to, waBinary.Node{Tag: "presence", Attrs: attrs})
}

// PushChatPresence sends <chatstate from><composing/></chatstate> (or <paused/>) to `to`.
func (s *Server) PushChatPresence(to, from types.JID, composing bool) error {
	state := "paused"
	if composing {
		state = "composing"
	}
	return s.push(to, waBinary.Node{
		Tag:     "chatstate",
		Attrs:   waBinary.Attrs{"from": from.ToNonAD()},
		Content: []waBinary.Node{{Tag: state}},
	})
}

// PushCallOffer sends an incoming audio call offer from `from` with the given call id.
func (s *Server) PushCallOffer(to, from types.JID, callID string) error {
	return s.push(to, waBinary.Node{
		Tag: "call",
		Attrs: waBinary.Attrs{
			"from":     from,
			"id":       s.nextID(),
			"t":        strconv.FormatInt(time.Now().Unix(), 10),
			"platform": "android",
			"version":  "2.25.1",
			"notify":   "emu",
		},
		Content: []waBinary.Node{{
			Tag: "offer",
			Attrs: waBinary.Attrs{
				"call-id":      callID,
				"call-creator": from,
				"count":        "0",
			},
			Content: []waBinary.Node{
				{Tag: "audio", Attrs: waBinary.Attrs{"enc": "opus", "rate": "16000"}},
				{Tag: "audio", Attrs: waBinary.Attrs{"enc": "opus", "rate": "8000"}},
			},
		}},
	})
}

func (s *Server) push(to types.JID, node waBinary.Node) error {
	if s.deliver(to, node, false) == 0 {
		return ErrNotOnline
	}
	return nil
}
