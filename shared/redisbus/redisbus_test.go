package redisbus

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Test helpers: a real Redis (WAGO_TEST_REDIS_URL, see .ci/redis), servers
// that stop with the test, and a TCP proxy that can take Redis "down" and
// bring it back. The connector behind a Server is always the one fake of
// the seam, connectortest.Fake.

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

// logBuffer collects a logger's output for a test to search.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if os.Getenv("WAGO_TEST_LOG") != "" {
		os.Stderr.Write(p)
	}
	return b.buf.Write(p)
}

// Contains reports whether a line logged so far contains s.
func (b *logBuffer) Contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

// logger returns a logger that writes into b.
func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
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

// patientServerConfig is testServerConfig with room for a loaded machine
// (Redis calls of up to 900 ms, and leases that outlive them), for the
// tests whose subject is not lease timing: with the 200 ms of
// testServerConfig, a stalled Redis call leaves a command pending until
// ClaimMinIdle, and the test fails on a caller's timeout.
func patientServerConfig(prefix string) ServerConfig {
	cfg := testServerConfig(prefix)
	cfg.LeaseTTL = 3 * time.Second
	cfg.RedisTimeout = 900 * time.Millisecond
	return cfg
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
// every connection (Redis "crashes"), Up listens again on the same address;
// while Frozen is set it forwards nothing (Redis hangs) and holds what it
// read.
type proxy struct {
	tb     testing.TB
	Addr   string
	target string
	Frozen atomic.Bool

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
	go func() { p.copy(up, c); up.Close(); c.Close() }()
	p.copy(c, up)
	c.Close()
	up.Close()
}

// copy copies from src to dst, holding each read while p is frozen.
func (p *proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && p.Frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
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
