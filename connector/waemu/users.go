package waemu

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// contactStatus is the built-in contact's "about" text, answered by usync status queries.
const contactStatus = "Hey there! I am using WhatsApp."

// picture is an account's profile picture, served as plain JPEG by the listener.
type picture struct {
	id   string
	data []byte
	path string // direct path without the query
}

// newContactPicture draws the built-in contact's default picture: a 96x96 JPEG.
func newContactPicture() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	for y := 0; y < 96; y++ {
		for x := 0; x < 96; x++ {
			img.Set(x, y, color.RGBA{R: 0x25, G: 0xd3, B: 0x66, A: 0xff})
			if (x-48)*(x-48)+(y-40)*(y-40) < 18*18 || ((x-48)*(x-48)+(y-100)*(y-100) < 42*42 && y > 64) {
				img.Set(x, y, color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff})
			}
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	return buf.Bytes()
}

// SetProfilePicture sets the profile picture (JPEG bytes, served as they are) of the
// account a phone-number or LID JID names; nil removes it. It returns the new picture
// ID. The built-in contact starts with a small generated picture; other accounts start
// without one. ErrUnknownDevice means a LID that names no account.
func (s *Server) SetProfilePicture(user types.JID, jpegData []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	phone := user.User
	if user.Server == types.HiddenUserServer {
		a, ok := s.lidUsers[user.User]
		if !ok {
			return "", ErrUnknownDevice
		}
		phone = a.phone
	}
	return s.setPictureLocked(phone, jpegData), nil
}

// setPictureLocked replaces the picture of a phone number. s.mu must be held.
func (s *Server) setPictureLocked(phone string, data []byte) string {
	if old, ok := s.pictures[phone]; ok {
		delete(s.picturePaths, old.path)
		delete(s.pictures, phone)
	}
	if data == nil {
		return ""
	}
	s.pictureSeq++
	id := strconv.FormatInt(time.Now().Unix(), 10) + strconv.Itoa(int(s.pictureSeq))
	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	p := &picture{id: id, data: append([]byte(nil), data...), path: "/v/t61.24694-24/" + hex.EncodeToString(buf) + "_n.jpg"}
	s.pictures[phone] = p
	s.picturePaths[p.path] = p
	return id
}

// ProfilePicture returns the current profile picture ID and JPEG bytes of the account a
// phone-number or LID JID names ("" and nil when it has none).
func (s *Server) ProfilePicture(user types.JID) (string, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pictureLocked(user)
	if p == nil {
		return "", nil
	}
	return p.id, append([]byte(nil), p.data...)
}

// pictureLocked finds the picture of a known account (the contact counts as known
// before it starts). s.mu must be held.
func (s *Server) pictureLocked(user types.JID) *picture {
	phone := user.User
	if user.Server == types.HiddenUserServer {
		a, ok := s.lidUsers[user.User]
		if !ok {
			return nil
		}
		phone = a.phone
	} else if user.Server != types.DefaultUserServer {
		return nil
	}
	if _, ok := s.accounts[phone]; !ok && phone != contactPhone {
		return nil
	}
	return s.pictures[phone]
}

func pictureURL(p *picture) (url, directPath string) {
	directPath = p.path + "?stp=dst-jpg_s96x96_tt6&ccb=11-4&oh=01_emu&oe=" +
		strconv.FormatInt(time.Now().Add(14*24*time.Hour).Unix(), 16) + "&_nc_sid=5e03e0&_nc_cat=1"
	return "https://" + profileHost + directPath, directPath
}

// iqProfilePicture answers <iq xmlns=w:profile:picture type=get target=jid><picture
// query=url type=image|preview id?/></iq> (whatsmeow user.go GetProfilePictureInfo):
// <picture id url direct_path type/>, <picture status=304/> when the asked id is
// current, and error 404 (ErrProfilePictureNotSet) when there is no picture.
func (s *Server) iqProfilePicture(node *waBinary.Node) ([]waBinary.Node, int) {
	pic, ok := node.GetOptionalChildByTag("picture")
	target, hasTarget := node.Attrs["target"].(types.JID)
	if !ok || !hasTarget {
		return nil, 400
	}
	s.mu.Lock()
	p := s.pictureLocked(target)
	s.mu.Unlock()
	if p == nil {
		return nil, 404
	}
	typ, _ := pic.Attrs["type"].(string)
	if typ == "" {
		typ = "image"
	}
	if existing, _ := pic.Attrs["id"].(string); existing == p.id {
		return []waBinary.Node{{Tag: "picture", Attrs: waBinary.Attrs{"status": "304"}}}, 0
	}
	url, directPath := pictureURL(p)
	return []waBinary.Node{{Tag: "picture", Attrs: waBinary.Attrs{
		"id":          p.id,
		"type":        typ,
		"url":         url,
		"direct_path": directPath,
	}}}, 0
}

// servePicture serves a profile picture by path; it reports whether the path was one.
func (s *Server) servePicture(w http.ResponseWriter, r *http.Request, path string) bool {
	s.mu.Lock()
	p, ok := s.picturePaths[path]
	s.mu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(p.data)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(p.data)
	}
	return true
}

// usyncStatusLocked is the <status> answer for an account (nil: unknown user).
func (s *Server) usyncStatusLocked(acct *account) *waBinary.Node {
	if acct == nil {
		return nil
	}
	if acct.phone == contactPhone {
		return &waBinary.Node{Tag: "status", Attrs: waBinary.Attrs{"t": strconv.FormatInt(s.started.Unix(), 10)}, Content: []byte(contactStatus)}
	}
	return &waBinary.Node{Tag: "status"}
}

// usyncPictureLocked is the <picture> answer for an account (nil: unknown user).
func (s *Server) usyncPictureLocked(acct *account) *waBinary.Node {
	if acct == nil {
		return nil
	}
	if p := s.pictures[acct.phone]; p != nil {
		return &waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{"id": p.id}}
	}
	return &waBinary.Node{Tag: "picture"}
}

// presenceNodeLocked is the <presence> an account's subscribers get: available, or
// unavailable with the last-seen time when known. s.mu must be held.
func presenceNodeLocked(from types.JID, acct *account) waBinary.Node {
	attrs := waBinary.Attrs{"from": from}
	if acct.presence != "available" {
		attrs["type"] = "unavailable"
		if !acct.lastSeen.IsZero() {
			attrs["last"] = strconv.FormatInt(acct.lastSeen.Unix(), 10)
		}
	}
	return waBinary.Node{Tag: "presence", Attrs: attrs}
}

// handlePresence handles a client's <presence>: type available/unavailable (with
// name: the push name relayed messages carry as notify) updates the account's presence
// and tells its subscribers; type subscribe answers with the target's current presence
// and relays its later changes; unsubscribe stops that.
func (s *Server) handlePresence(c *conn, node *waBinary.Node) {
	sender := s.authedDevice(c)
	if sender == nil {
		return
	}
	typ, _ := node.Attrs["type"].(string)
	switch typ {
	case "subscribe", "unsubscribe":
		to, ok := node.Attrs["to"].(types.JID)
		if !ok {
			return
		}
		to = to.ToNonAD()
		if typ == "unsubscribe" {
			s.mu.Lock()
			if acct := s.accountForLocked(to); acct != nil {
				delete(acct.subscribers, sender.jid)
			}
			s.mu.Unlock()
			return
		}
		if to.User == contactPhone && to.Server == types.DefaultUserServer && !c.contact {
			// Start the contact first so that it is known (and online).
			go func() {
				s.ensureContactFromIQ()
				s.subscribePresence(sender, to)
			}()
			return
		}
		s.subscribePresence(sender, to)
	case "", "available", "unavailable":
		name, _ := node.Attrs["name"].(string)
		s.mu.Lock()
		acct := sender.acct
		if name != "" {
			acct.pushName = name
		}
		state := "available"
		if typ == "unavailable" {
			state = "unavailable"
		}
		changed := acct.presence != state
		acct.presence = state
		if state == "unavailable" {
			acct.lastSeen = time.Now()
		}
		s.mu.Unlock()
		if changed {
			s.relayPresence(acct)
		}
	}
}

// subscribePresence records a subscription and sends the target's current presence.
func (s *Server) subscribePresence(sub *device, to types.JID) {
	s.mu.Lock()
	acct := s.accountForLocked(to)
	if acct == nil {
		s.mu.Unlock()
		return
	}
	if acct.subscribers == nil {
		acct.subscribers = make(map[types.JID]types.JID)
	}
	acct.subscribers[sub.jid] = to
	node := presenceNodeLocked(to, acct)
	s.mu.Unlock()
	s.deliver(sub.jid, node, false)
}

// relayPresence sends an account's presence to its subscribers.
func (s *Server) relayPresence(acct *account) {
	type target struct {
		to   types.JID
		node waBinary.Node
	}
	s.mu.Lock()
	targets := make([]target, 0, len(acct.subscribers))
	for sub, as := range acct.subscribers {
		targets = append(targets, target{to: sub, node: presenceNodeLocked(as, acct)})
	}
	s.mu.Unlock()
	for _, t := range targets {
		s.deliver(t.to, t.node, false)
	}
}
