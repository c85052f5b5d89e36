// Package waemu is a WhatsApp multi-device server emulator for tests.
//
// The real, unmodified whatsmeow client talks to it on 127.0.0.1: point the client's
// HTTP clients at Server.HTTPClient (or any client whose dialer reaches Server.Addr)
// and set whatsmeow.WACertPubKey to Server.RootPublicKey. The emulator speaks the
// Noise_XX_25519_AESGCM_SHA256 handshake over a plain websocket, pairs clients by QR
// code or pair code, logs registered devices in, answers every iq, relays messages,
// receipts, chat states, presences and call stanzas between devices, and has a
// built-in contact (a real whatsmeow client) that sends and receives every message kind.
//
// The same listener is the media host: media_conn hands out a host name, and plain HTTP
// requests (the clients' dialers reach the emulator whatever the URL says) upload
// encrypted media (POST /mms/<type>/<token>, kept in memory, capped by
// Config.MaxMediaSize and Config.MaxMediaTotal), download it (GET of the URL or direct
// path) and fetch profile pictures. ContactInbox records what the contact received,
// with the SHA-256 of the media it downloaded and decrypted; MediaObjects lists the
// uploads and CallRejects the calls devices rejected. Production code never imports it.
package waemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
)

const (
	// defaultAddr is the listen address used when Config.Addr is empty.
	defaultAddr = "127.0.0.1:0"
	// firstPhone is the first phone number handed out by ScanQR.
	firstPhone = 15550000001
	// firstLID is the first LID user number handed out to accounts.
	firstLID = 100000000000001
	// streamErrorDelay is how long a socket stays open after a stream error or failure,
	// so that the client handles the node before it sees the close.
	streamErrorDelay = time.Second
	// writeTimeout bounds each websocket write.
	writeTimeout = 10 * time.Second
	// handshakeTimeout closes sockets that don't finish the Noise handshake in time.
	handshakeTimeout = 20 * time.Second
	// DefaultMaxPending bounds the offline queue of each device.
	DefaultMaxPending = 1000
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address, default "127.0.0.1:0". After the first Start the
	// actual address is kept, so Stop followed by Start listens on the same port.
	Addr string
	// RootKey is the optional private seed of the root signing key, to keep the same
	// root public key across processes; nil makes a random one.
	RootKey *[32]byte
	// Log receives the emulator's logs; nil is silent.
	Log waLog.Logger
	// MaxMediaSize caps one uploaded (encrypted) media object; 0 means
	// DefaultMaxMediaSize (100 MiB). Larger uploads get HTTP 413.
	MaxMediaSize int64
	// MaxMediaTotal caps the uploaded media kept in memory; 0 means DefaultMaxMediaTotal
	// (1 GiB). Past it the oldest objects are forgotten.
	MaxMediaTotal int64
	// MaxPending bounds the messages kept for each device while it is
	// offline, and those it got but did not receipt; 0 means
	// DefaultMaxPending. Past it, new ones are dropped.
	MaxPending int
}

// Device describes a device registered on the emulator.
type Device struct {
	// JID is the phone-number JID with the device part, e.g. 15550000001:1@s.whatsapp.net.
	JID types.JID
	// LID is the device's LID with the device part.
	LID types.JID
	// Phone is the account's phone number (digits only).
	Phone string
	// Online is true while an authenticated socket of the device is open.
	Online bool
	// Logins counts the successful logins of the device.
	Logins int
	// Replaced counts the logins that found a live socket of the device:
	// two clients held it at once, and the older one was answered
	// StreamReplaced, as WhatsApp does.
	Replaced int
}

// account is a phone number with its primary ("phone") identity key.
type account struct {
	phone      string
	lid        string
	identity   *keys.KeyPair
	rawID      uint32
	nextDevice uint16
	keyIndex   uint32
	pushName   string
	devices    map[uint16]*device

	// presence is the last presence the account announced: "available",
	// "unavailable" or "" (never); lastSeen is when it went unavailable.
	presence string
	lastSeen time.Time
	// subscribers maps subscribed devices to the JID they subscribed with.
	subscribers map[types.JID]types.JID
}

// preKey is a public prekey uploaded by a client.
type preKey struct {
	id  uint32
	pub []byte
	sig []byte
}

// device is a registered companion device.
type device struct {
	jid         types.JID
	lid         types.JID
	acct        *account
	noisePub    [32]byte
	regID       []byte
	identityPub []byte
	signedPre   preKey
	preKeys     []preKey
	logins      int
	replaced    int
	conns       map[*conn]struct{}
	pending     []waBinary.Node
	// unacked are messages a socket of the device got and the device has
	// not receipted yet: as WhatsApp does, they are delivered again at its
	// next login (a client that died before it acked loses nothing).
	unacked []waBinary.Node
	contact bool
}

// Server is a WhatsApp multi-device server emulator. Create it with New, then Start it.
// All methods are safe for concurrent use.
type Server struct {
	cfg       Config
	log       waLog.Logger
	root      *keys.KeyPair
	static    *keys.KeyPair
	certChain []byte
	idCounter atomic.Uint64

	// mu guards everything below.
	mu         sync.Mutex
	addr       string
	srv        *http.Server
	running    bool
	closed     bool
	runCtx     context.Context
	runCancel  context.CancelFunc
	conns      map[*conn]struct{}
	changed    chan struct{}
	accounts   map[string]*account
	lidUsers   map[string]*account
	devices    map[string]*device
	refs       map[string]*conn
	codes      map[string]*codeRequest
	nextPhone  uint64
	nextLID    uint64
	inbox      []InboxMessage
	sent       map[string]*waE2E.Message // by ID: what the contact sent
	contactCli *contactClient
	started    time.Time
	// pictures maps phone numbers to profile pictures; picturePaths maps their paths.
	pictures     map[string]*picture
	picturePaths map[string]*picture
	pictureSeq   uint64
	callRejects  []CallReject

	// media is the media host's object store (own lock).
	media *mediaStore

	// handlers tracks the goroutines serving sockets, so Stop can wait for them.
	handlers sync.WaitGroup
	// contactMu serializes starting, connecting and stopping the built-in contact.
	contactMu sync.Mutex
	// contactAddrs holds local addresses of sockets dialed by the built-in contact.
	contactAddrs sync.Map
}

// New creates an emulator with its root, intermediate and leaf certificates and its
// static Noise key. It does not listen; call Start.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.MaxMediaSize <= 0 {
		cfg.MaxMediaSize = DefaultMaxMediaSize
	}
	if cfg.MaxMediaTotal <= 0 {
		cfg.MaxMediaTotal = DefaultMaxMediaTotal
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	log := cfg.Log
	if log == nil {
		log = waLog.Noop
	}
	var seed [32]byte
	if cfg.RootKey != nil {
		seed = *cfg.RootKey
	} else if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("failed to generate root key: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		root:      clampedKeyPair(seed),
		static:    keys.NewKeyPair(),
		conns:     make(map[*conn]struct{}),
		changed:   make(chan struct{}),
		accounts:  make(map[string]*account),
		lidUsers:  make(map[string]*account),
		devices:   make(map[string]*device),
		refs:      make(map[string]*conn),
		codes:     make(map[string]*codeRequest),
		nextPhone: firstPhone,
		nextLID:   firstLID,
		started:   time.Now(),
		media:     newMediaStore(),
	}
	s.resetProfilesLocked()
	chain, err := buildCertChain(s.root, s.static)
	if err != nil {
		return nil, err
	}
	s.certChain = chain
	return s, nil
}

// Start listens on the configured address (after a Stop: the same address as before)
// and serves websocket connections on any path.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrNotRunning
	}
	if s.running {
		return ErrAlreadyRunning
	}
	addr := s.addr
	if addr == "" {
		addr = s.cfg.Addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.runCtx, s.runCancel = context.WithCancel(context.Background())
	s.running = true
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Errorf("Emulator HTTP server stopped: %v", err)
		}
	}(s.srv)
	if s.contactCli != nil {
		go s.reconnectContact(s.runCtx)
	}
	s.log.Infof("WhatsApp emulator listening on %s", s.addr)
	return nil
}

// Stop closes the listener and every socket but keeps all state (accounts, devices,
// uploaded prekeys, the contact), so a later Start serves the same devices.
func (s *Server) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	s.runCancel()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()

	s.disconnectContact()
	_ = srv.Close()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.handlers.Wait()
}

// Close stops the server and forgets all state; the server can't be started again.
func (s *Server) Close() {
	s.Stop()
	s.closeContact()
	s.mu.Lock()
	s.closed = true
	s.accounts = make(map[string]*account)
	s.lidUsers = make(map[string]*account)
	s.devices = make(map[string]*device)
	s.refs = make(map[string]*conn)
	s.codes = make(map[string]*codeRequest)
	s.inbox = nil
	s.callRejects = nil
	s.resetProfilesLocked()
	s.mu.Unlock()
	s.media.reset()
}

// resetProfilesLocked forgets every profile picture but the contact's default one.
func (s *Server) resetProfilesLocked() {
	s.pictures = make(map[string]*picture)
	s.picturePaths = make(map[string]*picture)
	s.setPictureLocked(contactPhone, contactPicture)
}

// contactPicture is the built-in contact's default profile picture.
var contactPicture = newContactPicture()

// Addr returns the listen address ("127.0.0.1:port"); before the first Start it is the
// configured address.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return s.cfg.Addr
	}
	return s.addr
}

// RootPublicKey returns the root certificate public key; set whatsmeow.WACertPubKey to it.
func (s *Server) RootPublicKey() [32]byte {
	return *s.root.Pub
}

// RootPublicKeyHex returns the root public key as 64 hex characters.
func (s *Server) RootPublicKeyHex() string {
	return hex.EncodeToString(s.root.Pub[:])
}

// HTTPClient returns an HTTP client whose every connection (plain or "TLS") dials the
// emulator; give it to SetPreLoginHTTPClient, SetWebsocketHTTPClient and SetMediaHTTPClient.
func (s *Server) HTTPClient() *http.Client {
	return s.httpClient(nil)
}

// Wire points a whatsmeow client at the emulator (pre-login, websocket and media HTTP
// clients). whatsmeow.WACertPubKey must also be set to RootPublicKey, once per process.
func (s *Server) Wire(cli *whatsmeow.Client) {
	hc := s.HTTPClient()
	cli.SetPreLoginHTTPClient(hc)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetMediaHTTPClient(hc)
}

func (s *Server) httpClient(onDial func(net.Conn)) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr())
		if err == nil && onDial != nil {
			onDial(c)
		}
		return c, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DialTLSContext: dial}}
}

// Sockets returns the number of open websocket connections of any kind (pre-login
// and pairing sockets included), not counting the built-in contact's.
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if !c.contact {
			n++
		}
	}
	return n
}

// SocketsFor returns the number of open authenticated sockets of a device. A JID
// without a device part that names no device counts the sockets of all the account's devices.
func (s *Server) SocketsFor(jid types.JID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.targetsLocked(jid) {
		n += len(d.conns)
	}
	return n
}

// WaitSockets waits until pred(Sockets()) is true or ctx ends.
func (s *Server) WaitSockets(ctx context.Context, pred func(n int) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if pred(s.Sockets()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Devices lists the registered devices sorted by JID, not including the built-in contact.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		if d.contact {
			continue
		}
		out = append(out, Device{JID: d.jid, LID: d.lid, Phone: d.acct.phone, Online: len(d.conns) > 0, Logins: d.logins, Replaced: d.replaced})
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return out
}

// notifyLocked wakes WaitSockets callers; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextID returns a fresh id for server-initiated nodes.
func (s *Server) nextID() string {
	return "emu." + strconv.FormatUint(s.idCounter.Add(1), 10)
}

func deviceKey(user string, dev uint16) string {
	return user + ":" + strconv.Itoa(int(dev))
}

// accountLocked returns the account of phone, creating it; an empty phone makes a new
// account with the next free number. s.mu must be held.
func (s *Server) accountLocked(phone string) *account {
	if phone == "" {
		for {
			phone = strconv.FormatUint(s.nextPhone, 10)
			s.nextPhone++
			if _, taken := s.accounts[phone]; !taken {
				break
			}
		}
	}
	if a, ok := s.accounts[phone]; ok {
		return a
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	a := &account{
		phone:      phone,
		lid:        strconv.FormatUint(s.nextLID, 10),
		identity:   keys.NewKeyPair(),
		rawID:      uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3]),
		nextDevice: 1,
		devices:    make(map[uint16]*device),
	}
	s.nextLID++
	s.accounts[phone] = a
	s.lidUsers[a.lid] = a
	return a
}

// targetsLocked resolves a JID (phone number or LID) to devices: the exact device if it
// is registered, otherwise, for a JID without a device part, every device of the account.
// s.mu must be held.
func (s *Server) targetsLocked(jid types.JID) []*device {
	user := jid.User
	if jid.Server == types.HiddenUserServer {
		a, ok := s.lidUsers[jid.User]
		if !ok {
			return nil
		}
		user = a.phone
	}
	if d, ok := s.devices[deviceKey(user, jid.Device)]; ok {
		return []*device{d}
	}
	if jid.Device != 0 {
		return nil
	}
	a, ok := s.accounts[user]
	if !ok {
		return nil
	}
	out := make([]*device, 0, len(a.devices))
	for _, d := range a.devices {
		out = append(out, d)
	}
	return out
}
