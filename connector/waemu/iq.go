package waemu

import (
	"encoding/binary"
	"strconv"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleIQ answers every get/set iq (unanswered iqs block whatsmeow for 75 s) and
// hands results of server-initiated iqs to their waiters.
func (s *Server) handleIQ(c *conn, node *waBinary.Node) {
	id, _ := node.Attrs["id"].(string)
	typ, _ := node.Attrs["type"].(string)
	if typ == "result" || typ == "error" {
		c.deliverResponse(id, node)
		return
	}
	if id == "" {
		return
	}
	xmlns, _ := node.Attrs["xmlns"].(string)
	var content []waBinary.Node
	var after func()
	errCode := 0
	switch xmlns {
	case "encrypt":
		content = s.iqEncrypt(c, node, typ)
	case "usync":
		content = s.iqUsync(c, node)
	case "md":
		content, after = s.iqMD(c, node)
	case "privacy":
		if typ == "get" {
			content = []waBinary.Node{defaultPrivacy()}
		}
	case "blocklist":
		if typ == "get" {
			content = []waBinary.Node{{Tag: "list"}}
		}
	case "w:m":
		content = s.iqMediaConn(node)
	case "w:profile:picture":
		if typ == "get" {
			content, errCode = s.iqProfilePicture(node)
		}
	default:
		// w:p pings, passive, app state, privacy, blocklist, props...: an empty result.
	}
	attrs := waBinary.Attrs{"type": "result", "id": id, "from": serverJID}
	if to, ok := node.Attrs["to"].(types.JID); ok {
		attrs["from"] = to
	}
	resp := waBinary.Node{Tag: "iq", Attrs: attrs}
	if errCode != 0 {
		attrs["type"] = "error"
		content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": strconv.Itoa(errCode), "text": iqErrorText[errCode]}}}
	}
	if len(content) > 0 {
		resp.Content = content
	}
	if err := c.send(resp); err != nil {
		s.log.Debugf("Failed to answer iq %s: %v", id, err)
	}
	if after != nil {
		after()
	}
}

// iqErrorText is the text WhatsApp puts beside an iq error code (whatsmeow errors.go).
var iqErrorText = map[int]string{400: "bad-request", 401: "not-authorized", 404: "item-not-found"}

// iqMD handles the md namespace: logout and pair-code stages.
func (s *Server) iqMD(c *conn, node *waBinary.Node) ([]waBinary.Node, func()) {
	for _, child := range node.GetChildren() {
		switch child.Tag {
		case "remove-companion-device":
			s.removeCompanion(c, child)
		case "link_code_companion_reg":
			stage, _ := child.Attrs["stage"].(string)
			switch stage {
			case "companion_hello":
				return s.linkCodeHello(c, child), nil
			case "companion_finish":
				return nil, func() { s.linkCodeFinish(c, child) }
			}
		}
	}
	return nil, nil
}

// iqEncrypt handles prekey count, upload, signed prekey rotation and prekey fetches.
func (s *Server) iqEncrypt(c *conn, node *waBinary.Node, typ string) []waBinary.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := c.dev
	if typ == "set" {
		if d != nil {
			storeUploadedKeys(d, node)
		}
		return nil
	}
	for _, child := range node.GetChildren() {
		switch child.Tag {
		case "count":
			n := 0
			if d != nil {
				n = len(d.preKeys)
			}
			return []waBinary.Node{{Tag: "count", Attrs: waBinary.Attrs{"value": n}}}
		case "key":
			return []waBinary.Node{{Tag: "list", Content: s.preKeyBundlesLocked(child)}}
		}
	}
	return nil
}

// storeUploadedKeys records a prekey upload (<list>, <skey>, <identity>) or a signed
// prekey rotation (<rotate><skey>).
func storeUploadedKeys(d *device, node *waBinary.Node) {
	for _, child := range node.GetChildren() {
		switch child.Tag {
		case "list":
			for _, k := range child.GetChildren() {
				if pk, ok := parsePreKey(k); ok {
					d.preKeys = append(d.preKeys, pk)
				}
			}
		case "skey":
			if pk, ok := parsePreKey(child); ok {
				d.signedPre = pk
			}
		case "rotate":
			if pk, ok := parsePreKey(child.GetChildByTag("skey")); ok {
				d.signedPre = pk
			}
		case "identity":
			if b, ok := child.Content.([]byte); ok && len(b) == 32 {
				d.identityPub = b
			}
		case "registration":
			if b, ok := child.Content.([]byte); ok && len(b) == 4 {
				d.regID = b
			}
		}
	}
}

func parsePreKey(n waBinary.Node) (preKey, bool) {
	id, _ := n.GetChildByTag("id").Content.([]byte)
	pub, _ := n.GetChildByTag("value").Content.([]byte)
	sig, _ := n.GetChildByTag("signature").Content.([]byte)
	if len(id) == 0 || len(pub) != 32 {
		return preKey{}, false
	}
	return preKey{id: be24(id), pub: pub, sig: sig}, true
}

// preKeyBundlesLocked answers <key><user jid/>...</key>, consuming one one-time prekey
// per device. s.mu must be held.
func (s *Server) preKeyBundlesLocked(keyNode waBinary.Node) []waBinary.Node {
	var out []waBinary.Node
	for _, u := range keyNode.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if u.Tag != "user" || !ok {
			continue
		}
		user := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}}
		d := s.exactDeviceLocked(jid)
		if d == nil || len(d.regID) != 4 || d.signedPre.pub == nil {
			user.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}}}
			out = append(out, user)
			continue
		}
		content := []waBinary.Node{
			{Tag: "registration", Content: d.regID},
			{Tag: "type", Content: []byte{5}},
			{Tag: "identity", Content: d.identityPub},
			{Tag: "skey", Content: []waBinary.Node{
				{Tag: "id", Content: id3(d.signedPre.id)},
				{Tag: "value", Content: d.signedPre.pub},
				{Tag: "signature", Content: d.signedPre.sig},
			}},
		}
		if len(d.preKeys) > 0 {
			pk := d.preKeys[0]
			d.preKeys = d.preKeys[1:]
			content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{
				{Tag: "id", Content: id3(pk.id)},
				{Tag: "value", Content: pk.pub},
			}})
		}
		user.Content = content
		out = append(out, user)
	}
	return out
}

// exactDeviceLocked finds the device a JID (phone number or LID) names exactly.
func (s *Server) exactDeviceLocked(jid types.JID) *device {
	user := jid.User
	if jid.Server == types.HiddenUserServer {
		a, ok := s.lidUsers[jid.User]
		if !ok {
			return nil
		}
		user = a.phone
	}
	return s.devices[deviceKey(user, jid.Device)]
}

func id3(id uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	return b[1:]
}

// iqUsync answers usync queries: device lists, contact (on WhatsApp) checks and LIDs.
func (s *Server) iqUsync(c *conn, node *waBinary.Node) []waBinary.Node {
	usync := node.GetChildByTag("usync")
	var queries []string
	query := usync.GetChildByTag("query")
	for _, q := range query.GetChildren() {
		queries = append(queries, q.Tag)
	}
	list := usync.GetChildByTag("list")
	users := list.GetChildren()
	if !c.contact && s.mentionsContact(users) {
		s.ensureContactFromIQ()
	}
	s.mu.Lock()
	out := make([]waBinary.Node, 0, len(users))
	for _, u := range users {
		jid, hasJID := u.Attrs["jid"].(types.JID)
		var contactQuery []byte
		if cn, ok := u.GetOptionalChildByTag("contact"); ok {
			switch v := cn.Content.(type) {
			case []byte:
				contactQuery = v
			case string:
				contactQuery = []byte(v)
			}
			if !hasJID {
				phone := normalizePhone(strings.SplitN(string(contactQuery), "@", 2)[0])
				jid, hasJID = types.NewJID(phone, types.DefaultUserServer), true
			}
		}
		if !hasJID {
			continue
		}
		acct := s.accountForLocked(jid)
		var children []waBinary.Node
		for _, q := range queries {
			switch q {
			case "devices":
				var list []waBinary.Node
				if acct != nil {
					for id := range acct.devices {
						list = append(list, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": int(id)}})
					}
				}
				children = append(children, waBinary.Node{Tag: "devices", Content: []waBinary.Node{
					{Tag: "device-list", Content: list},
				}})
			case "contact":
				typ := "out"
				if acct != nil {
					typ = "in"
				}
				children = append(children, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}, Content: contactQuery})
			case "lid":
				if acct != nil {
					children = append(children, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{
						"val": types.NewJID(acct.lid, types.HiddenUserServer),
					}})
				}
			case "status":
				if n := s.usyncStatusLocked(acct); n != nil {
					children = append(children, *n)
				}
			case "picture":
				if n := s.usyncPictureLocked(acct); n != nil {
					children = append(children, *n)
				}
			}
		}
		out = append(out, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid.ToNonAD()}, Content: children})
	}
	s.mu.Unlock()
	attrs := waBinary.Attrs{}
	for k, v := range usync.Attrs {
		attrs[k] = v
	}
	return []waBinary.Node{{Tag: "usync", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "result"},
		{Tag: "list", Content: out},
	}}}
}

// accountForLocked finds the account of a phone-number or LID JID. s.mu must be held.
func (s *Server) accountForLocked(jid types.JID) *account {
	if jid.Server == types.HiddenUserServer {
		return s.lidUsers[jid.User]
	}
	return s.accounts[jid.User]
}

// defaultPrivacy is the privacy settings answer: everyone may see and add everything.
func defaultPrivacy() waBinary.Node {
	settings := [][2]string{
		{"groupadd", "all"}, {"last", "all"}, {"status", "all"}, {"profile", "all"},
		{"readreceipts", "all"}, {"online", "all"}, {"calladd", "all"},
	}
	cats := make([]waBinary.Node, len(settings))
	for i, kv := range settings {
		cats[i] = waBinary.Node{Tag: "category", Attrs: waBinary.Attrs{"name": kv[0], "value": kv[1]}}
	}
	return waBinary.Node{Tag: "privacy", Content: cats}
}
