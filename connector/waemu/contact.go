package waemu

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	// The contact's whatsmeow store lives in SQLite (driver name "sqlite").
	_ "modernc.org/sqlite"
)

// contactPhone is the phone number of the built-in contact (its device is device 0).
const contactPhone = "15550000000"

// contactPushName is the push name the contact's messages carry.
const contactPushName = "WAEmu Contact"

// contactTimeout bounds starting or reconnecting the contact from inside the server.
const contactTimeout = 30 * time.Second

// contactClient is the built-in contact: a real whatsmeow client logged in to the emulator.
type contactClient struct {
	cli       *whatsmeow.Client
	container *sqlstore.Container
	dir       string
	ready     atomic.Bool
	qr        chan string
}

// Contact returns the built-in contact's JID (15550000000@s.whatsapp.net). The contact
// is a real whatsmeow client in this process (store in a temp dir, removed by Close),
// paired as device 0 of that number; it starts on first use (a usync or message to it,
// or SendTextFromContact) and is not counted by Sockets or listed by Devices. It needs
// whatsmeow.WACertPubKey == RootPublicKey and sets it if it differs, so processes that
// run several emulators at once should give them the same Config.RootKey.
func (s *Server) Contact() types.JID {
	return types.NewJID(contactPhone, types.DefaultUserServer)
}

// SendTextFromContact makes the contact send a text to `to` (a user JID) and returns
// the message ID once the emulator acked it.
func (s *Server) SendTextFromContact(ctx context.Context, to types.JID, text string) (string, error) {
	return s.SendMessageFromContact(ctx, to, &waE2E.Message{Conversation: proto.String(text)})
}

// SendMessageFromContact makes the contact send any message to `to` (a user JID) with
// whatsmeow's SendMessage and returns the message ID once the emulator acked it.
func (s *Server) SendMessageFromContact(ctx context.Context, to types.JID, msg *waE2E.Message) (string, error) {
	cli, err := s.ensureContact(ctx)
	if err != nil {
		return "", err
	}
	resp, err := cli.SendMessage(ctx, to.ToNonAD(), msg)
	if err != nil {
		return "", fmt.Errorf("contact failed to send message: %w", err)
	}
	s.recordSent(resp.ID, msg)
	return resp.ID, nil
}

// recordSent keeps what the contact sent, for ContactSent.
func (s *Server) recordSent(id string, msg *waE2E.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[string]*waE2E.Message{}
	}
	s.sent[id] = msg
}

// ContactSent returns the message the contact sent with id (media fields
// included, so that a test can download what a device received), or nil.
func (s *Server) ContactSent(id string) *waE2E.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[id]
}

// ContactInbox returns what the contact received so far, oldest first.
func (s *Server) ContactInbox() []InboxMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]InboxMessage(nil), s.inbox...)
}

// ensureContact creates, pairs and connects the contact as needed, and returns its
// client once it is connected and logged in.
func (s *Server) ensureContact(ctx context.Context) (*whatsmeow.Client, error) {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	s.mu.Lock()
	running, cc := s.running, s.contactCli
	s.mu.Unlock()
	if !running {
		return nil, ErrNotRunning
	}
	if whatsmeow.WACertPubKey != *s.root.Pub {
		// The contact verifies the emulator's certificates like any client.
		whatsmeow.WACertPubKey = *s.root.Pub
	}
	if cc == nil {
		var err error
		if cc, err = s.newContactClient(ctx); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.contactCli = cc
		s.mu.Unlock()
	}
	cli := cc.cli
	if cc.ready.Load() && cli.IsConnected() && cli.IsLoggedIn() {
		return cli, nil
	}
	if !cli.IsConnected() {
		if err := cli.Connect(); err != nil {
			return nil, fmt.Errorf("contact failed to connect: %w", err)
		}
	}
	if cli.Store.ID == nil {
		select {
		case code := <-cc.qr:
			if _, err := s.scan(ctx, code, contactPhone, true); err != nil {
				return nil, fmt.Errorf("failed to pair the contact: %w", err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cc.ready.Load() || !cli.IsLoggedIn() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("contact did not connect: %w", ctx.Err())
		}
	}
	return cli, nil
}

func (s *Server) newContactClient(ctx context.Context) (*contactClient, error) {
	dir, err := os.MkdirTemp("", "waemu-contact-")
	if err != nil {
		return nil, fmt.Errorf("failed to create contact store directory: %w", err)
	}
	dsn := "file:" + filepath.Join(dir, "contact.db") + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	container, err := sqlstore.New(ctx, "sqlite", dsn, waLog.Noop)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to open contact store: %w", err)
	}
	log := waLog.Noop
	if s.cfg.Log != nil {
		log = s.cfg.Log.Sub("Contact")
	}
	cc := &contactClient{
		cli:       whatsmeow.NewClient(container.NewDevice(), log),
		container: container,
		dir:       dir,
		qr:        make(chan string, 1),
	}
	// The websocket dials are marked as the contact's; media requests use their own
	// client so that no unmarked keep-alive connection carries a contact websocket.
	hc := s.httpClient(func(c net.Conn) { s.contactAddrs.Store(c.LocalAddr().String(), true) })
	cc.cli.SetPreLoginHTTPClient(hc)
	cc.cli.SetWebsocketHTTPClient(hc)
	cc.cli.SetMediaHTTPClient(s.httpClient(nil))
	// SendPresence needs a push name; the contact announces itself available on
	// every connect (see onContactEvent).
	cc.cli.Store.PushName = contactPushName
	cc.cli.AddEventHandler(func(evt any) { s.onContactEvent(cc, evt) })
	return cc, nil
}

func (s *Server) onContactEvent(cc *contactClient, evt any) {
	switch v := evt.(type) {
	case *events.QR:
		if len(v.Codes) > 0 {
			select {
			case cc.qr <- v.Codes[0]:
			default:
			}
		}
	case *events.Connected:
		cc.ready.Store(true)
		go func() {
			ctx, cancel := context.WithTimeout(s.currentRunCtx(), contactTimeout)
			defer cancel()
			if err := cc.cli.SendPresence(ctx, types.PresenceAvailable); err != nil {
				s.log.Debugf("Contact failed to announce its presence: %v", err)
			}
		}()
	case *events.Disconnected, *events.LoggedOut, *events.StreamReplaced:
		cc.ready.Store(false)
	case *events.Message:
		// Media is downloaded here, in whatsmeow's event goroutine: iq answers (the
		// media_conn query) don't go through it, so this does not deadlock.
		e := inboxEntry(s.currentRunCtx(), cc.cli, v)
		s.mu.Lock()
		s.inbox = append(s.inbox, e)
		s.mu.Unlock()
	case *events.ChatPresence:
		s.mu.Lock()
		s.inbox = append(s.inbox, InboxMessage{Kind: InboxChatPresence, From: v.Sender, Time: time.Now(), State: string(v.State), PresenceMedia: string(v.Media)})
		s.mu.Unlock()
	case *events.Receipt:
		s.mu.Lock()
		for _, id := range v.MessageIDs {
			s.inbox = append(s.inbox, InboxMessage{Kind: InboxReceipt, From: v.Sender, ID: id, ReceiptType: string(v.Type), Time: v.Timestamp})
		}
		s.mu.Unlock()
	}
}

// reconnectContact reconnects an already created contact (after Start, or when a
// message is queued for it).
func (s *Server) reconnectContact(ctx context.Context) {
	s.mu.Lock()
	exists := s.contactCli != nil
	s.mu.Unlock()
	if !exists {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, contactTimeout)
	defer cancel()
	if _, err := s.ensureContact(ctx); err != nil && ctx.Err() == nil {
		s.log.Warnf("Failed to reconnect the contact: %v", err)
	}
}

// ensureContactFromIQ starts the contact before answering a query that names it, so
// that its device is listed.
func (s *Server) ensureContactFromIQ() {
	ctx, cancel := context.WithTimeout(s.currentRunCtx(), contactTimeout)
	defer cancel()
	if _, err := s.ensureContact(ctx); err != nil {
		s.log.Warnf("Failed to start the contact: %v", err)
	}
}

// mentionsContact reports whether a usync user list names the contact.
func (s *Server) mentionsContact(users []waBinary.Node) bool {
	for _, u := range users {
		if jid, ok := u.Attrs["jid"].(types.JID); ok && jid.User == contactPhone && jid.Server == types.DefaultUserServer {
			return true
		}
		if cn, ok := u.GetOptionalChildByTag("contact"); ok {
			if b, ok := cn.Content.([]byte); ok && strings.Contains(string(b), contactPhone) {
				return true
			}
		}
	}
	return false
}

// currentRunCtx returns the context of the current run (canceled by Stop).
func (s *Server) currentRunCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return s.runCtx
}

// disconnectContact disconnects the contact's client, keeping its store.
func (s *Server) disconnectContact() {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	s.mu.Lock()
	cc := s.contactCli
	s.mu.Unlock()
	if cc != nil {
		cc.ready.Store(false)
		cc.cli.Disconnect()
	}
}

// closeContact disconnects the contact and deletes its store.
func (s *Server) closeContact() {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	s.mu.Lock()
	cc := s.contactCli
	s.contactCli = nil
	s.mu.Unlock()
	if cc == nil {
		return
	}
	cc.cli.Disconnect()
	_ = cc.container.Close()
	_ = os.RemoveAll(cc.dir)
}
