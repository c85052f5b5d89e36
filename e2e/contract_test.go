package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/connector/waemu"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/redisbus"
	"github.com/wago-gw/wago/shared/sqlite"
)

// The Connector contract: one suite, run on the direct implementation (the
// connector itself, as the all-in-one process uses it) and on the Redis one
// (redisbus.Client -> Redis Streams -> redisbus.Server -> the connector), both
// against the emulator. A behaviour that differs between them is a bug.

// contractEnv is one implementation under test.
type contractEnv struct {
	conn  shared.Connector
	store shared.Store
	emu   *waemu.Server
	// wa is what the connector dials: a proxy in front of emu that can
	// freeze like a hung WhatsApp server.
	wa *hangProxy
}

// Timeouts of the contract's connectors: short, so that the hung-server
// cases run quickly.
const (
	contractConnectTimeout = 6 * time.Second
	contractUnlinkTimeout  = 2 * time.Second
)

// newManager runs a connector on emu, dialling addr (the emulator, or a
// proxy in front of it), with a SQLite token store and key store in a temp
// dir.
func newManager(t *testing.T, emu *waemu.Server, addr string, onState func(string, shared.Status, string), onDelete func(string)) (*connector.Manager, shared.Store) {
	t.Helper()
	return openManager(t, t.TempDir(), emu, addr, func(c *connector.Config) { c.OnState, c.OnDelete = onState, onDelete })
}

// openManager runs a connector on the stores in dir (a restart opens the
// same dir again), dialling addr, with the contract's timeouts changed by
// tweak; it closes at the end of the test.
func openManager(t *testing.T, dir string, emu *waemu.Server, addr string, tweak func(*connector.Config)) (*connector.Manager, shared.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	root, err := connector.ParseRootKey(emu.RootPublicKeyHex())
	if err != nil {
		t.Fatal(err)
	}
	cfg := connector.Config{
		Store: store, Container: keys, Hooks: connector.Hooks{Addr: addr, RootKey: root},
		ConnectTimeout: contractConnectTimeout, UnlinkTimeout: contractUnlinkTimeout,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	mgr := connector.New(cfg)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mgr.Close(cctx)
		keys.Close()
		store.Close()
	})
	return mgr, store
}

func TestConnectorContract(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		emu := startEmulator(t)
		wa := startHangProxy(t, emu.Addr())
		mgr, store := newManager(t, emu, wa.Addr(), nil, nil)
		runContract(t, contractEnv{conn: mgr, store: store, emu: emu, wa: wa})
	})
	t.Run("redis", func(t *testing.T) {
		url := os.Getenv("WAGO_TEST_REDIS_URL")
		if url == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("WAGO_TEST_REDIS_URL is not set: run the tests with `make test`")
			}
			t.Skip("WAGO_TEST_REDIS_URL is not set")
		}
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		// Two clients, as the API and the connector are two processes: each
		// side blocks connections (BLPOP for replies, XREADGROUP per shard).
		opts.PoolSize = 128
		rdb, apiRedis := redis.NewClient(opts), redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close(); apiRedis.Close() })
		buf := make([]byte, 6)
		rand.Read(buf)
		prefix := "contract-" + hex.EncodeToString(buf)

		emu := startEmulator(t)
		wa := startHangProxy(t, emu.Addr())
		pub := redisbus.NewStatePublisher(rdb, redisbus.PublisherConfig{Prefix: prefix})
		mgr, store := openManager(t, t.TempDir(), emu, wa.Addr(), func(c *connector.Config) {
			c.OnState, c.OnDelete, c.SentLog = pub.Publish, pub.Forget, redisbus.NewSentLog(rdb, prefix)
		})
		srv := redisbus.NewServer(rdb, mgr, redisbus.ServerConfig{Prefix: prefix})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { srv.Run(ctx); done <- struct{}{} }()
		go func() { pub.Run(ctx); done <- struct{}{} }()
		t.Cleanup(func() { cancel(); <-done; <-done })
		runContract(t, contractEnv{conn: redisbus.NewClient(apiRedis, redisbus.ClientConfig{Prefix: prefix}), store: store, emu: emu, wa: wa})
	})
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if shared.ErrorCode(err) != shared.ErrorCode(want) || shared.ErrorMessage(err) != shared.ErrorMessage(want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// eventually polls Status until cond holds.
func (e contractEnv) eventually(t testing.TB, token, what string, cond func(shared.Status) bool) shared.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := e.conn.Status(context.Background(), token)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last status %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// qr polls QR until a code is there; while it waits the only acceptable
// answer is shared.ErrNoQRYet.
func (e contractEnv) qr(t testing.TB, token string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := e.conn.QR(context.Background(), token)
		if err == nil {
			return code
		}
		wantErr(t, "qr while waiting for a code", err, shared.ErrNoQRYet)
		if time.Now().After(deadline) {
			t.Fatalf("no QR code: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e contractEnv) connect(token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	return shared.Call(context.Background(), e.conn, shared.OpConnect, token, opts)
}

func (e contractEnv) pair(token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	return shared.Call(context.Background(), e.conn, shared.OpPair, token, opts)
}

func (e contractEnv) do(op *shared.Op[shared.Empty, shared.Empty], token string) error {
	_, err := shared.Call(context.Background(), e.conn, op, token, shared.Empty{})
	return err
}

// link connects token, scans its QR code and waits until it is logged in.
func (e contractEnv) link(t testing.TB, token string) types.JID {
	t.Helper()
	res, err := e.connect(token, shared.ConnectOptions{})
	if err != nil || res.Status.State != shared.StateQR || !res.Status.HasQR {
		t.Fatalf("connect: %+v %v", res, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid, err := e.emu.ScanQR(ctx, e.qr(t, token))
	if err != nil {
		t.Fatal(err)
	}
	e.eventually(t, token, "logged in", func(s shared.Status) bool { return s.LoggedIn && s.Connected && s.JID == jid.String() })
	return jid
}

func runContract(t *testing.T, e contractEnv) {
	ctx := context.Background()
	const token = "contract-token"
	if err := e.store.Create(ctx, &shared.Session{Name: "contract", Token: token, Os: "linux"}); err != nil {
		t.Fatal(err)
	}

	// Before any connect.
	if _, err := e.connect("no-such-token", shared.ConnectOptions{Immediate: true}); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("connect of an unknown token: %v", err)
	}
	if st, err := e.conn.Status(ctx, token); err != nil || st.Connected || st.LoggedIn || st.State != shared.StateDisconnected {
		t.Fatalf("status before connect: %+v %v", st, err)
	}
	_, err := e.conn.QR(ctx, token)
	wantErr(t, "qr before connect", err, shared.ErrNoSession)
	wantErr(t, "disconnect before connect", e.do(shared.OpDisconnect, token), shared.ErrNoSession)
	wantErr(t, "logout before connect", e.do(shared.OpLogout, token), shared.ErrNotLoggedIn)

	// Connect, QR, scan.
	res, err := e.connect(token, shared.ConnectOptions{})
	if err != nil || res.Status.State != shared.StateQR || !res.Status.HasQR {
		t.Fatalf("connect: %+v %v", res, err)
	}
	code := e.qr(t, token)
	if len(strings.Split(code, ",")) != 4 {
		t.Fatalf("QR code %q", code)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jid, err := e.emu.ScanQR(sctx, code)
	if err != nil {
		t.Fatal(err)
	}
	st := e.eventually(t, token, "logged in", func(s shared.Status) bool { return s.LoggedIn && s.Connected })
	if st.JID != jid.String() || st.State != shared.StateConnected {
		t.Fatalf("status after scan: %+v, want JID %s", st, jid)
	}
	if row, _ := e.store.Get(ctx, token); row.JID != jid.String() || !row.AutoConnect {
		t.Fatalf("row after scan: %+v", row)
	}
	many, err := e.conn.Statuses(ctx, []string{token, "no-such-token"})
	if err != nil || len(many) != 2 || !many[0].LoggedIn || many[1].Connected {
		t.Fatalf("statuses: %+v %v", many, err)
	}

	// Idempotent connect; QR refused.
	res, err = e.connect(token, shared.ConnectOptions{})
	if err != nil || !res.Status.LoggedIn || res.Status.JID != jid.String() {
		t.Fatalf("second connect: %+v %v", res, err)
	}
	if n := e.emu.SocketsFor(jid); n != 1 {
		t.Fatalf("%d sockets after a second connect", n)
	}
	_, err = e.conn.QR(ctx, token)
	wantErr(t, "qr when logged in", err, shared.ErrAlreadyLoggedIn)
	_, err = e.pair(token, shared.ConnectOptions{Phone: "15550001111"})
	wantErr(t, "pair when logged in", err, shared.ErrAlreadyLoggedIn)

	// Disconnect and restore.
	if err := e.do(shared.OpDisconnect, token); err != nil {
		t.Fatal(err)
	}
	e.eventually(t, token, "disconnected", func(s shared.Status) bool { return s.State == shared.StateDisconnected && !s.Connected })
	wantErr(t, "second disconnect", e.do(shared.OpDisconnect, token), shared.ErrNoSession)
	res, err = e.connect(token, shared.ConnectOptions{})
	if err != nil || !res.Status.LoggedIn {
		t.Fatalf("restore: %+v %v", res, err)
	}

	// Logout.
	if err := e.do(shared.OpLogout, token); err != nil {
		t.Fatal(err)
	}
	st = e.eventually(t, token, "logged out", func(s shared.Status) bool { return s.State == shared.StateLoggedOut })
	if st.LoggedIn || st.Connected || st.JID != "" {
		t.Fatalf("status after logout: %+v", st)
	}
	if row, _ := e.store.Get(ctx, token); row.JID != "" || row.AutoConnect {
		t.Fatalf("row after logout: %+v", row)
	}
	wantErr(t, "second logout", e.do(shared.OpLogout, token), shared.ErrNotLoggedIn)

	// Pairing code.
	const phone = "15553334444"
	res, err = e.pair(token, shared.ConnectOptions{Phone: phone})
	if err != nil || len(strings.ReplaceAll(res.LinkingCode, "-", "")) != 8 {
		t.Fatalf("pair: %+v %v", res, err)
	}
	jid2, err := e.emu.EnterPairCode(sctx, phone, res.LinkingCode)
	if err != nil {
		t.Fatal(err)
	}
	e.eventually(t, token, "logged in by code", func(s shared.Status) bool { return s.LoggedIn && s.JID == jid2.String() })

	// Delete logs out and forgets.
	if err := e.do(shared.OpDelete, token); err != nil {
		t.Fatal(err)
	}
	if _, ok := device(e.emu, jid2); ok {
		t.Fatal("delete did not log the device out")
	}
	e.eventually(t, token, "forgotten", func(s shared.Status) bool { return s.State == shared.StateDisconnected && s.JID == "" })
	if _, err := e.store.Get(ctx, token); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("delete left the row: %v", err)
	}
	_, err = e.connect(token, shared.ConnectOptions{Immediate: true})
	wantErr(t, "connect after delete", err, shared.ErrSessionNotFound)
	wantErr(t, "delete after delete", e.do(shared.OpDelete, token), shared.ErrSessionNotFound)
	_, err = e.pair("no-such-token", shared.ConnectOptions{Phone: phone})
	wantErr(t, "pair of an unknown token", err, shared.ErrSessionNotFound)

	t.Run("hung server", func(t *testing.T) { runHungServer(t, e) })
	t.Run("delete racing connects", func(t *testing.T) { runDeleteRace(t, e) })
	t.Run("messaging", func(t *testing.T) { runMessaging(t, e) })
}
