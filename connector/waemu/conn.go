package waemu

import (
	"context"
	"crypto/cipher"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// handshake stages of a conn.
const (
	stageHello = iota
	stageFinish
	stageTransport
)

// conn is one websocket connection. Its reader runs in the HTTP handler goroutine;
// writes may come from any goroutine and are serialized by wmu.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	contact bool // set at creation: the socket was dialed by the built-in contact

	// Reader-goroutine state.
	fr          frameReader
	stage       int
	noise       *noiseState
	ephemeral   *keys.KeyPair
	readKey     cipher.AEAD
	readCounter uint32

	// Set by the reader before the conn is published in Server maps (under s.mu).
	clientStatic [32]byte
	reg          *waWa6.ClientPayload_DevicePairingRegistrationData
	refs         []string
	code         *codeRequest
	dev          *device // guarded by s.mu

	pairing atomic.Bool // a pairing (QR or code) is in progress on this socket

	wmu          sync.Mutex
	writeKey     cipher.AEAD
	writeCounter uint32

	waitMu  sync.Mutex
	waiters map[string]chan *waBinary.Node
}

// serveHTTP accepts websocket upgrades on any path and serves the socket.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		s.serveMedia(w, r)
		return
	}
	_, isContact := s.contactAddrs.LoadAndDelete(r.RemoteAddr)
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Warnf("Websocket upgrade failed: %v", err)
		return
	}
	ws.SetReadLimit(socket.FrameMaxSize + 64)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, ws: ws, ctx: ctx, cancel: cancel, contact: isContact, waiters: make(map[string]chan *waBinary.Node)}

	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		cancel()
		_ = ws.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	s.notifyLocked()
	s.mu.Unlock()

	defer s.handlers.Done()
	defer s.dropConn(c)
	c.run()
}

// run reads frames until the socket closes.
func (c *conn) run() {
	defer c.close()
	hsTimer := time.AfterFunc(handshakeTimeout, c.close)
	defer hsTimer.Stop()
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageBinary {
			continue
		}
		frames, err := c.fr.push(data)
		if err != nil {
			c.s.log.Warnf("Closing socket: %v", err)
			return
		}
		for _, f := range frames {
			if err := c.handleFrame(f); err != nil {
				c.s.log.Warnf("Closing socket: %v", err)
				return
			}
			if c.stage == stageTransport {
				hsTimer.Stop()
			}
		}
	}
}

// handleFrame processes one decrypted-or-handshake frame in the reader goroutine.
func (c *conn) handleFrame(frame []byte) error {
	switch c.stage {
	case stageHello:
		return c.handleClientHello(frame)
	case stageFinish:
		return c.handleClientFinish(frame)
	}
	plaintext, err := c.readKey.Open(frame[:0], generateIV(c.readCounter), frame, nil)
	c.readCounter++
	if err != nil {
		return fmt.Errorf("failed to decrypt frame: %w", err)
	}
	unpacked, err := waBinary.Unpack(plaintext)
	if err != nil {
		return fmt.Errorf("failed to unpack frame: %w", err)
	}
	node, err := waBinary.Unmarshal(unpacked)
	if err != nil {
		return fmt.Errorf("failed to decode node: %w", err)
	}
	c.s.handleNode(c, node)
	return nil
}

func (c *conn) handleClientHello(frame []byte) error {
	var msg waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &msg); err != nil {
		return fmt.Errorf("failed to parse client hello: %w", err)
	}
	clientEph := msg.GetClientHello().GetEphemeral()
	if len(clientEph) != 32 {
		return fmt.Errorf("client hello has no ephemeral key")
	}
	ns, err := newNoiseState(c.fr.headerSeen)
	if err != nil {
		return err
	}
	c.noise = ns
	c.ephemeral = keys.NewKeyPair()
	ns.authenticate(clientEph)
	ns.authenticate(c.ephemeral.Pub[:])
	if err = ns.mixSharedSecret(*c.ephemeral.Priv, [32]byte(clientEph)); err != nil {
		return err
	}
	staticCT := ns.encrypt(c.s.static.Pub[:])
	if err = ns.mixSharedSecret(*c.s.static.Priv, [32]byte(clientEph)); err != nil {
		return err
	}
	certCT := ns.encrypt(c.s.certChain)
	resp, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: c.ephemeral.Pub[:],
		Static:    staticCT,
		Payload:   certCT,
	}})
	if err != nil {
		return fmt.Errorf("failed to marshal server hello: %w", err)
	}
	c.stage = stageFinish
	return c.writeRaw(encodeFrame(resp))
}

func (c *conn) handleClientFinish(frame []byte) error {
	var msg waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &msg); err != nil {
		return fmt.Errorf("failed to parse client finish: %w", err)
	}
	ns := c.noise
	static, err := ns.decrypt(msg.GetClientFinish().GetStatic())
	if err != nil || len(static) != 32 {
		return fmt.Errorf("failed to decrypt client static key: %v", err)
	}
	c.clientStatic = [32]byte(static)
	if err = ns.mixSharedSecret(*c.ephemeral.Priv, c.clientStatic); err != nil {
		return err
	}
	payloadBytes, err := ns.decrypt(msg.GetClientFinish().GetPayload())
	if err != nil {
		return fmt.Errorf("failed to decrypt client payload: %w", err)
	}
	var payload waWa6.ClientPayload
	if err = proto.Unmarshal(payloadBytes, &payload); err != nil {
		return fmt.Errorf("failed to parse client payload: %w", err)
	}
	read, write, err := ns.split()
	if err != nil {
		return err
	}
	c.readKey = read
	c.wmu.Lock()
	c.writeKey = write
	c.wmu.Unlock()
	c.noise, c.ephemeral = nil, nil
	c.stage = stageTransport
	if reg := payload.GetDevicePairingData(); reg != nil {
		c.s.startRegistration(c, reg)
	} else {
		c.s.login(c, &payload)
	}
	return nil
}

// writeRaw writes one websocket message.
func (c *conn) writeRaw(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(data)
}

func (c *conn) writeLocked(data []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, data)
}

// send encrypts and writes a node. Errors close the socket.
func (c *conn) send(node waBinary.Node) error {
	payload, err := waBinary.Marshal(node)
	if err != nil {
		return fmt.Errorf("failed to marshal %s node: %w", node.Tag, err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeKey == nil {
		return fmt.Errorf("socket is not in transport mode")
	}
	ct := c.writeKey.Seal(nil, generateIV(c.writeCounter), payload, nil)
	c.writeCounter++
	if err = c.writeLocked(encodeFrame(ct)); err != nil {
		go c.close()
		return fmt.Errorf("failed to write %s node: %w", node.Tag, err)
	}
	return nil
}

// sendThenClose sends a terminal node (stream error, failure) and closes the socket a
// little later so the client handles the node before it notices the close.
func (c *conn) sendThenClose(node waBinary.Node) {
	if err := c.send(node); err != nil {
		c.close()
		return
	}
	time.AfterFunc(streamErrorDelay, c.close)
}

// close closes the socket; the reader then unregisters the conn.
func (c *conn) close() {
	c.cancel()
	_ = c.ws.CloseNow()
}

// expect registers a waiter for the response to a server-initiated iq.
func (c *conn) expect(id string) chan *waBinary.Node {
	ch := make(chan *waBinary.Node, 1)
	c.waitMu.Lock()
	c.waiters[id] = ch
	c.waitMu.Unlock()
	return ch
}

// unexpect removes a waiter.
func (c *conn) unexpect(id string) {
	c.waitMu.Lock()
	delete(c.waiters, id)
	c.waitMu.Unlock()
}

// deliverResponse hands an iq result or error to its waiter, if any.
func (c *conn) deliverResponse(id string, node *waBinary.Node) {
	c.waitMu.Lock()
	ch, ok := c.waiters[id]
	delete(c.waiters, id)
	c.waitMu.Unlock()
	if ok {
		ch <- node
	}
}

// dropConn removes a closed conn from every server map.
func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	for _, ref := range c.refs {
		if s.refs[ref] == c {
			delete(s.refs, ref)
		}
	}
	if c.code != nil && s.codes[c.code.phone] == c.code {
		delete(s.codes, c.code.phone)
	}
	var wentAway *account
	if c.dev != nil {
		delete(c.dev.conns, c)
		if acct := c.dev.acct; acct.presence == "available" && !accountOnlineLocked(acct) {
			acct.presence = "unavailable"
			acct.lastSeen = time.Now()
			wentAway = acct
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	if wentAway != nil {
		s.relayPresence(wentAway)
	}
}

// accountOnlineLocked reports whether any device of an account has a socket.
func accountOnlineLocked(acct *account) bool {
	for _, d := range acct.devices {
		if len(d.conns) > 0 {
			return true
		}
	}
	return false
}

// handleNode dispatches a node from a client.
func (s *Server) handleNode(c *conn, node *waBinary.Node) {
	switch node.Tag {
	case "iq":
		s.handleIQ(c, node)
	case "message":
		s.handleMessage(c, node)
	case "receipt":
		s.handleReceipt(c, node)
	case "chatstate":
		s.handleChatState(c, node)
	case "presence":
		s.handlePresence(c, node)
	case "call":
		s.handleCall(c, node)
	default:
		// acks (of notifications, receipts, calls) and the like need no answer.
	}
}

// authedDevice returns the device the conn is logged in as, or nil.
func (s *Server) authedDevice(c *conn) *device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.dev
}

// serverJID is the JID the emulator sends from; it must be a types.JID value.
var serverJID = types.ServerJID
