package waemu

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// qrRefCount is how many refs a pair-device iq carries (whatsmeow shows one QR per ref).
const qrRefCount = 6

// startRegistration handles a registration client payload: it remembers the client's
// keys and sends <pair-device> with fresh refs.
func (s *Server) startRegistration(c *conn, reg *waWa6.ClientPayload_DevicePairingRegistrationData) {
	refs := make([]string, qrRefCount)
	content := make([]waBinary.Node, qrRefCount)
	for i := range refs {
		buf := make([]byte, 24)
		_, _ = rand.Read(buf)
		refs[i] = "2@" + base64.RawURLEncoding.EncodeToString(buf)
		content[i] = waBinary.Node{Tag: "ref", Content: []byte(refs[i])}
	}
	s.mu.Lock()
	c.reg = reg
	c.refs = refs
	for _, ref := range refs {
		s.refs[ref] = c
	}
	s.mu.Unlock()
	_ = c.send(waBinary.Node{
		Tag:     "iq",
		Attrs:   waBinary.Attrs{"from": serverJID, "type": "set", "id": s.nextID(), "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: content}},
	})
}

// ScanQR plays the phone scanning a QR code string (ref,noisePub,identityPub,advSecret)
// of a new phone number: it sends pair-success to the socket that showed the ref, waits
// for pair-device-sign and returns the new device JID (e.g. 15550000001:1@s.whatsapp.net).
// The client then gets stream error 515 and logs in again by itself.
func (s *Server) ScanQR(ctx context.Context, qr string) (types.JID, error) {
	return s.scan(ctx, qr, "", false)
}

// ScanQRAs is ScanQR by the phone with the given number; scanning twice with the same
// number links a second device to the same account.
func (s *Server) ScanQRAs(ctx context.Context, qr, phone string) (types.JID, error) {
	return s.scan(ctx, qr, normalizePhone(phone), false)
}

func (s *Server) scan(ctx context.Context, qr, phone string, contact bool) (types.JID, error) {
	parts := strings.Split(strings.TrimSpace(qr), ",")
	if len(parts) != 4 {
		return types.EmptyJID, ErrInvalidQR
	}
	noisePub, err1 := base64.StdEncoding.DecodeString(parts[1])
	identityPub, err2 := base64.StdEncoding.DecodeString(parts[2])
	advSecret, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || len(noisePub) != 32 || len(identityPub) != 32 {
		return types.EmptyJID, ErrInvalidQR
	}
	s.mu.Lock()
	c, ok := s.refs[parts[0]]
	if !ok {
		s.mu.Unlock()
		return types.EmptyJID, ErrUnknownQR
	}
	if c.reg == nil || !bytes.Equal(noisePub, c.clientStatic[:]) || !bytes.Equal(identityPub, c.reg.GetEIdent()) {
		s.mu.Unlock()
		return types.EmptyJID, ErrQRMismatch
	}
	if !c.pairing.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return types.EmptyJID, ErrPairingInProgress
	}
	acct := s.accountLocked(phone)
	devID := acct.nextDevice
	acct.nextDevice++
	if contact {
		devID = 0
		acct.pushName = contactPushName
	}
	s.mu.Unlock()
	jid, err := s.completePairing(ctx, c, acct, devID, advSecret, identityPub, contact)
	if err != nil {
		c.pairing.Store(false)
	}
	return jid, err
}

// completePairing sends pair-success signed by the account's identity key and keyed
// with the adv secret, waits for pair-device-sign, registers the device and sends the
// 515 stream error that makes the client log in.
func (s *Server) completePairing(ctx context.Context, c *conn, acct *account, devID uint16, advSecret, companionIdentity []byte, contact bool) (types.JID, error) {
	jid := types.JID{User: acct.phone, Device: devID, Server: types.DefaultUserServer}
	lid := types.JID{User: acct.lid, Device: devID, Server: types.HiddenUserServer}
	s.mu.Lock()
	keyIndex := acct.keyIndex
	acct.keyIndex++
	s.mu.Unlock()

	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:     proto.Uint32(acct.rawID),
		Timestamp: proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:  proto.Uint32(keyIndex),
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("failed to marshal device identity: %w", err)
	}
	accountSig := sign(acct.identity, concat(whatsmeow.AdvAccountSignaturePrefix, details, companionIdentity))
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details:             details,
		AccountSignatureKey: acct.identity.Pub[:],
		AccountSignature:    accountSig,
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("failed to marshal signed device identity: %w", err)
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	container, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{
		Details:     signed,
		HMAC:        mac.Sum(nil),
		AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("failed to marshal device identity container: %w", err)
	}

	id := s.nextID()
	respCh := c.expect(id)
	defer c.unexpect(id)
	err = c.send(waBinary.Node{
		Tag:   "iq",
		Attrs: waBinary.Attrs{"from": serverJID, "type": "set", "id": id, "xmlns": "md"},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": "android"}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
		}}},
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("failed to send pair-success: %w", err)
	}
	var resp *waBinary.Node
	select {
	case resp = <-respCh:
	case <-c.ctx.Done():
		return types.EmptyJID, ErrSocketClosed
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	}
	if typ, _ := resp.Attrs["type"].(string); typ != "result" {
		return types.EmptyJID, fmt.Errorf("%w: %s", ErrPairRejected, resp.XMLString())
	}
	signNode, ok := resp.GetOptionalChildByTag("pair-device-sign", "device-identity")
	raw, _ := signNode.Content.([]byte)
	var devIdentity waAdv.ADVSignedDeviceIdentity
	if !ok || proto.Unmarshal(raw, &devIdentity) != nil {
		return types.EmptyJID, fmt.Errorf("%w: malformed pair-device-sign", ErrPairRejected)
	}
	msg := concat(whatsmeow.AdvDeviceSignaturePrefix, details, companionIdentity, acct.identity.Pub[:])
	if !verify(companionIdentity, msg, devIdentity.GetDeviceSignature()) {
		return types.EmptyJID, fmt.Errorf("%w: bad device signature", ErrPairRejected)
	}

	d := &device{
		jid:         jid,
		lid:         lid,
		acct:        acct,
		noisePub:    c.clientStatic,
		regID:       c.reg.GetERegid(),
		identityPub: companionIdentity,
		signedPre: preKey{
			id:  be24(c.reg.GetESkeyID()),
			pub: c.reg.GetESkeyVal(),
			sig: c.reg.GetESkeySig(),
		},
		conns:   make(map[*conn]struct{}),
		contact: contact,
	}
	s.mu.Lock()
	if old, ok := s.devices[deviceKey(acct.phone, devID)]; ok {
		for _, oc := range s.unregisterLocked(old) {
			go oc.close()
		}
	}
	s.devices[deviceKey(acct.phone, devID)] = d
	acct.devices[devID] = d
	for _, ref := range c.refs {
		delete(s.refs, ref)
	}
	if c.code != nil && s.codes[c.code.phone] == c.code {
		delete(s.codes, c.code.phone)
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Infof("Paired device %s", jid)
	c.sendThenClose(waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "515"}})
	return jid, nil
}

// normalizePhone keeps only the digits of a phone number.
func normalizePhone(phone string) string {
	var b strings.Builder
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// be24 decodes a big-endian integer of up to 4 bytes.
func be24(b []byte) uint32 {
	var v uint32
	for _, x := range b {
		v = v<<8 | uint32(x)
	}
	return v
}
