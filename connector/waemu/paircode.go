package waemu

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
)

// linkCodeIterations is the PBKDF2 iteration count whatsmeow uses for pair codes.
const linkCodeIterations = 2 << 16

// codeRequest is a pending pair-code registration (stage companion_hello).
type codeRequest struct {
	c       *conn
	phone   string
	wrapped []byte // salt(32) || iv(16) || AES-CTR(companion ephemeral pub)
	ref     []byte
	finish  chan waBinary.Node
}

// linkCodeHello handles <link_code_companion_reg stage=companion_hello> and returns
// the content of the iq result.
func (s *Server) linkCodeHello(c *conn, reg waBinary.Node) []waBinary.Node {
	jid, _ := reg.Attrs["jid"].(types.JID)
	wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
	refBuf := make([]byte, 24)
	_, _ = rand.Read(refBuf)
	req := &codeRequest{
		c:       c,
		phone:   jid.User,
		wrapped: wrapped,
		ref:     []byte(base64.RawURLEncoding.EncodeToString(refBuf)),
		finish:  make(chan waBinary.Node, 1),
	}
	s.mu.Lock()
	c.code = req
	s.codes[req.phone] = req
	s.mu.Unlock()
	return []waBinary.Node{{
		Tag:     "link_code_companion_reg",
		Content: []waBinary.Node{{Tag: "link_code_pairing_ref", Content: req.ref}},
	}}
}

// linkCodeFinish handles <link_code_companion_reg stage=companion_finish>.
func (s *Server) linkCodeFinish(c *conn, reg waBinary.Node) {
	s.mu.Lock()
	req := c.code
	s.mu.Unlock()
	if req == nil {
		return
	}
	select {
	case req.finish <- reg:
	default:
	}
}

// EnterPairCode plays the phone of `phone` entering the 8-character code that the
// client got from PairPhone: it sends the primary hello notification, decrypts the
// companion_finish key bundle, derives the adv secret and completes the pairing like a
// QR scan. It returns the new device JID.
func (s *Server) EnterPairCode(ctx context.Context, phone, code string) (types.JID, error) {
	phone = normalizePhone(phone)
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	s.mu.Lock()
	req, ok := s.codes[phone]
	if !ok {
		s.mu.Unlock()
		return types.EmptyJID, ErrNoPendingCode
	}
	c := req.c
	if !c.pairing.CompareAndSwap(false, true) {
		s.mu.Unlock()
		return types.EmptyJID, ErrPairingInProgress
	}
	acct := s.accountLocked(phone)
	s.mu.Unlock()
	jid, err := s.enterPairCode(ctx, req, acct, code)
	if err != nil {
		c.pairing.Store(false)
	}
	return jid, err
}

func (s *Server) enterPairCode(ctx context.Context, req *codeRequest, acct *account, code string) (types.JID, error) {
	if len(req.wrapped) != 80 {
		return types.EmptyJID, fmt.Errorf("malformed wrapped companion ephemeral key")
	}
	companionEph, err := linkCodeCTR(code, req.wrapped[:32], req.wrapped[32:48], req.wrapped[48:80])
	if err != nil {
		return types.EmptyJID, err
	}
	primaryEph := keys.NewKeyPair()
	salt, iv := make([]byte, 32), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	wrappedPrimary, err := linkCodeCTR(code, salt, iv, primaryEph.Pub[:])
	if err != nil {
		return types.EmptyJID, err
	}
	err = req.c.send(waBinary.Node{
		Tag: "notification",
		Attrs: waBinary.Attrs{
			"from": serverJID,
			"id":   s.nextID(),
			"type": "link_code_companion_reg",
			"t":    strconv.FormatInt(time.Now().Unix(), 10),
		},
		Content: []waBinary.Node{{
			Tag:   "link_code_companion_reg",
			Attrs: waBinary.Attrs{"stage": "primary_hello"},
			Content: []waBinary.Node{
				{Tag: "link_code_pairing_ref", Content: req.ref},
				{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: concat(salt, iv, wrappedPrimary)},
				{Tag: "primary_identity_pub", Content: acct.identity.Pub[:]},
			},
		}},
	})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("failed to send primary hello: %w", err)
	}
	var finish waBinary.Node
	select {
	case finish = <-req.finish:
	case <-req.c.ctx.Done():
		return types.EmptyJID, ErrSocketClosed
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	}
	bundle, _ := finish.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	if len(bundle) < 32+12+16 {
		return types.EmptyJID, fmt.Errorf("malformed key bundle")
	}
	ephShared, err := curve25519.X25519(primaryEph.Priv[:], companionEph)
	if err != nil {
		return types.EmptyJID, ErrWrongCode
	}
	bundleKey := hkdfutil.SHA256(ephShared, bundle[:32], []byte("link_code_pairing_key_bundle_encryption_key"), 32)
	block, err := aes.NewCipher(bundleKey)
	if err != nil {
		return types.EmptyJID, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return types.EmptyJID, err
	}
	plain, err := gcm.Open(nil, bundle[32:44], bundle[44:], nil)
	if err != nil || len(plain) != 96 {
		return types.EmptyJID, ErrWrongCode
	}
	companionIdentity, primaryIdentity, advRandom := plain[:32], plain[32:64], plain[64:96]
	if !bytes.Equal(primaryIdentity, acct.identity.Pub[:]) || !bytes.Equal(companionIdentity, req.c.reg.GetEIdent()) {
		return types.EmptyJID, fmt.Errorf("key bundle names other identities")
	}
	identityShared, err := curve25519.X25519(acct.identity.Priv[:], companionIdentity)
	if err != nil {
		return types.EmptyJID, err
	}
	advSecret := hkdfutil.SHA256(concat(ephShared, identityShared, advRandom), nil, []byte("adv_secret"), 32)
	s.mu.Lock()
	devID := acct.nextDevice
	acct.nextDevice++
	s.mu.Unlock()
	return s.completePairing(ctx, req.c, acct, devID, advSecret, companionIdentity, false)
}

// linkCodeCTR encrypts or decrypts 32 bytes with AES-CTR keyed by PBKDF2(code, salt).
func linkCodeCTR(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, linkCodeIterations, 32)
	if err != nil {
		return nil, fmt.Errorf("failed to derive link code key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}
