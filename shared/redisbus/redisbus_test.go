package redisbus

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Test helpers: a real Redis (WAGO_TEST_REDIS_URL, see .ci/redis), a
// function-field fake Connector, servers that stop with the test, and a TCP
// proxy that can take Redis "down" and bring it back.

// MustOpenRedis returns a client of the test Redis. It skips the test when
// WAGO_TEST_REDIS_URL is unset, and fails it instead when CI=true.
func MustOpenRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	url := os.Getenv("WAGO_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("WAGO_TEST_REDIS_URL is not set: start a Redis with .ci/redis")
		}
		tb.Skip("WAGO_TEST_REDIS_URL is not set: start a Redis with .ci/redis")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("WAGO_TEST_REDIS_URL: %v", err)
	}
	return mustClient(tb, opt.Addr, opt.DB)
}

func mustClient(tb testing.TB, addr string, db int) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// testPrefix returns a key prefix unique to the test, and deletes its keys
// when the test ends, so tests can share one Redis with other packages.
func testPrefix(tb testing.TB, rdb *redis.Client) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("test Redis does not answer: %v", err)
	}
	prefix := "wagotest-" + rand.Text()[:10]
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

func testLogger() *slog.Logger {
	if os.Getenv("WAGO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testServerConfig is fast: small shards count, short lease and block times.
func testServerConfig(prefix string) ServerConfig {
	return ServerConfig{
		Prefix:        prefix,
		Shards:        4,
		LeaseTTL:      900 * time.Millisecond,
		ReadBlock:     100 * time.Millisecond,
		ClaimMinIdle:  30 * time.Second,
		ClaimInterval: 200 * time.Millisecond,
		RedisTimeout:  200 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Logger:        testLogger(),
	}
}

func testClientConfig(prefix string) ClientConfig {
	return ClientConfig{
		Prefix:         prefix,
		Shards:         4,
		ConnectTimeout: 3 * time.Second,
		CommandTimeout: 3 * time.Second,
	}
}

// runServer starts srv until the returned stop is called or the test ends.
// stop waits for Run to return.
func runServer(tb testing.TB, srv *Server) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.frozen.Store(false)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Server.Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				tb.Errorf("Server.Run did not return 15 s after its context ended")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// eventually fails the test unless cond holds within d.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeConnector is a shared.Connector whose methods call its fields; a nil
// field answers zero values.
type fakeConnector struct {
	ConnectFn    func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	PairFn       func(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
	DisconnectFn func(ctx context.Context, token string) error
	LogoutFn     func(ctx context.Context, token string) error
	DeleteFn     func(ctx context.Context, token string) error
}

var _ shared.Connector = (*fakeConnector)(nil)

func (f *fakeConnector) Connect(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.ConnectFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.ConnectFn(ctx, token, opts)
}

func (f *fakeConnector) Pair(ctx context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	if f.PairFn == nil {
		return shared.ConnectResult{}, nil
	}
	return f.PairFn(ctx, token, opts)
}

func (f *fakeConnector) Status(context.Context, string) (shared.Status, error) {
	panic("a Server never asks the local connector for Status")
}

func (f *fakeConnector) Statuses(context.Context, []string) ([]shared.Status, error) {
	panic("a Server never asks the local connector for Statuses")
}

func (f *fakeConnector) QR(context.Context, string) (string, error) {
	panic("a Server never asks the local connector for QR")
}

func (f *fakeConnector) Disconnect(ctx context.Context, token string) error {
	if f.DisconnectFn == nil {
		return nil
	}
	return f.DisconnectFn(ctx, token)
}

func (f *fakeConnector) Logout(ctx context.Context, token string) error {
	if f.LogoutFn == nil {
		return nil
	}
	return f.LogoutFn(ctx, token)
}

func (f *fakeConnector) Delete(ctx context.Context, token string) error {
	if f.DeleteFn == nil {
		return nil
	}
	return f.DeleteFn(ctx, token)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// proxy forwards TCP connections to a target; Down closes the listener and
// every connection (Redis "crashes"), Up listens again on the same address.
type proxy struct {
	tb     testing.TB
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	p := &proxy{tb: tb, target: target, conns: make(map[net.Conn]struct{})}
	p.Addr = closedAddr(tb)
	p.Up()
	tb.Cleanup(p.Down)
	return p
}

func (p *proxy) Up() {
	p.tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Down
		if ln, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close(); c.Close() }()
	io.Copy(c, up)
	c.Close()
	up.Close()
}

func (p *proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
