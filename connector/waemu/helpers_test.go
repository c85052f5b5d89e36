package waemu

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// testRootKey is shared by every test server, so whatsmeow.WACertPubKey (process
// global) is set once.
var testRootKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

func TestMain(m *testing.M) {
	s, err := New(Config{RootKey: &testRootKey})
	if err != nil {
		panic(err)
	}
	whatsmeow.WACertPubKey = s.RootPublicKey()
	os.Exit(m.Run())
}

// testLog returns a logger for debugging when WAEMU_DEBUG is set.
func testLog(module string) waLog.Logger {
	if os.Getenv("WAEMU_DEBUG") != "" {
		return waLog.Stdout(module, "DEBUG", false)
	}
	return nil
}

// mustStartServer starts an emulator that is closed when the test ends.
func mustStartServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Config{RootKey: &testRootKey, Log: testLog("Emu")})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// mustOpenStore opens a whatsmeow SQLite store in a file.
func mustOpenStore(tb testing.TB, path string) *sqlstore.Container {
	tb.Helper()
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	c, err := sqlstore.New(context.Background(), "sqlite", dsn, waLog.Noop)
	if err != nil {
		tb.Fatalf("sqlstore.New: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// eventLog records a client's events.
type eventLog struct {
	mu     sync.Mutex
	events []any
}

func (l *eventLog) add(evt any) {
	l.mu.Lock()
	l.events = append(l.events, evt)
	l.mu.Unlock()
}

// find returns the first recorded event that matches.
func (l *eventLog) find(match func(any) bool) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if match(e) {
			return e
		}
	}
	return nil
}

func (l *eventLog) count(match func(any) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if match(e) {
			n++
		}
	}
	return n
}

// waitEvent waits until an event matches.
func (l *eventLog) waitEvent(tb testing.TB, what string, match func(any) bool) any {
	tb.Helper()
	var found any
	waitFor(tb, what, func() bool {
		found = l.find(match)
		return found != nil
	})
	return found
}

func isType[T any](evt any) bool {
	_, ok := evt.(T)
	return ok
}

// waitFor polls cond until it is true or 15 s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newClient makes a whatsmeow client for a device, wired to the emulator.
func newClient(tb testing.TB, s *Server, dev *store.Device) (*whatsmeow.Client, *eventLog) {
	tb.Helper()
	log := testLog("Client")
	if log == nil {
		log = waLog.Noop
	}
	cli := whatsmeow.NewClient(dev, log)
	s.Wire(cli)
	events := &eventLog{}
	cli.AddEventHandler(events.add)
	tb.Cleanup(cli.Disconnect)
	return cli, events
}

// pairedClient pairs a new client by QR code and waits until it is connected.
func pairedClient(tb testing.TB, s *Server, dbPath string) (*whatsmeow.Client, *eventLog, types.JID) {
	tb.Helper()
	container := mustOpenStore(tb, dbPath)
	cli, evts := newClient(tb, s, container.NewDevice())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qrCh, err := cli.GetQRChannel(context.Background())
	if err != nil {
		tb.Fatalf("GetQRChannel: %v", err)
	}
	if err := cli.Connect(); err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	var code string
	select {
	case item := <-qrCh:
		if item.Event != whatsmeow.QRChannelEventCode {
			tb.Fatalf("first QR channel item is %q, want a code", item.Event)
		}
		code = item.Code
	case <-ctx.Done():
		tb.Fatal("no QR code")
	}
	jid, err := s.ScanQR(ctx, code)
	if err != nil {
		tb.Fatalf("ScanQR: %v", err)
	}
	evts.waitEvent(tb, "Connected", isType[*events.Connected])
	waitFor(tb, "logged in", cli.IsLoggedIn)
	return cli, evts, jid
}

func dbPath(tb testing.TB, name string) string {
	return filepath.Join(tb.TempDir(), name+".db")
}
