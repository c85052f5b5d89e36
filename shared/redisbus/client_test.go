package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
)

var allCodes = []string{
	shared.EINVALID, shared.EUNAUTHORIZED, shared.ENOTFOUND, shared.ECONFLICT, shared.EEXISTS,
	shared.ETOOLARGE, shared.EUNAVAILABLE, shared.ETIMEOUT, shared.EINTERNAL,
}

// call runs op through c and returns its result and error.
func callOp(c *Client, op, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
	ctx := context.Background()
	switch op {
	case OpConnect:
		return c.Connect(ctx, token, opts)
	case OpPair:
		return c.Pair(ctx, token, opts)
	case OpDisconnect:
		return shared.ConnectResult{}, c.Disconnect(ctx, token)
	case OpLogout:
		return shared.ConnectResult{}, c.Logout(ctx, token)
	case OpDelete:
		return shared.ConnectResult{}, c.Delete(ctx, token)
	}
	panic("unknown op " + op)
}

// opFake answers every op with the error that errFor returns, and records
// the calls.
func opFake(errFor func(op, token string) error, calls *atomic.Int64, got chan<- string) *fakeConnector {
	res := shared.ConnectResult{
		Status: shared.Status{
			Connected: true, LoggedIn: true, JID: "123@s.whatsapp.net", State: shared.StateConnected,
			Since: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), HasQR: false,
		},
		LinkingCode: "ABCD-EFGH",
	}
	record := func(op, token string, opts shared.ConnectOptions) {
		calls.Add(1)
		if got != nil {
			got <- fmt.Sprintf("%s %s %v %s", op, token, opts.Immediate, opts.Phone)
		}
	}
	return &fakeConnector{
		ConnectFn: func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
			record(OpConnect, token, opts)
			return res, errFor(OpConnect, token)
		},
		PairFn: func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
			record(OpPair, token, opts)
			return res, errFor(OpPair, token)
		},
		DisconnectFn: func(_ context.Context, token string) error {
			record(OpDisconnect, token, shared.ConnectOptions{})
			return errFor(OpDisconnect, token)
		},
		LogoutFn: func(_ context.Context, token string) error {
			record(OpLogout, token, shared.ConnectOptions{})
			return errFor(OpLogout, token)
		},
		DeleteFn: func(_ context.Context, token string) error {
			record(OpDelete, token, shared.ConnectOptions{})
			return errFor(OpDelete, token)
		},
	}
}

// TestRoundTrip runs every op through Client -> Redis -> Server -> fake and
// checks results, options and every error code.
func TestRoundTrip(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)

	// The token says which error to answer: "<code>-..." or "plain-..." or
	// "sentinel-<n>-..."; anything else succeeds.
	errFor := func(_, token string) error {
		code, _, _ := strings.Cut(token, "-")
		switch {
		case code == "plain":
			return errors.New("secret internal detail")
		case code == "sentinel":
			var n int
			fmt.Sscanf(token, "sentinel-%d", &n)
			return knownErrors[n]
		case code == "ok":
			return nil
		}
		return shared.Wrap(errors.New("secret cause"), code, "message for "+code)
	}
	var calls atomic.Int64
	got := make(chan string, 1)
	srv := NewServer(rdb, opFake(errFor, &calls, got), testServerConfig(prefix))
	runServer(t, srv)
	c := NewClient(rdb, testClientConfig(prefix))

	ops := []string{OpConnect, OpPair, OpDisconnect, OpLogout, OpDelete}
	for _, op := range ops {
		t.Run(op+"/ok", func(t *testing.T) {
			start := time.Now()
			res, err := callOp(c, op, "ok-token-"+op, shared.ConnectOptions{Immediate: true, Phone: "5511999999999"})
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			t.Logf("round trip %v", time.Since(start))
			call := <-got
			wantOpts := "false "
			if op == OpConnect || op == OpPair {
				wantOpts = "true 5511999999999"
				if res.LinkingCode != "ABCD-EFGH" || !res.Status.LoggedIn || res.Status.JID != "123@s.whatsapp.net" ||
					res.Status.State != shared.StateConnected || !res.Status.Since.Equal(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)) {
					t.Errorf("result = %+v", res)
				}
			}
			if want := op + " ok-token-" + op + " " + wantOpts; call != want {
				t.Errorf("connector got %q, want %q", call, want)
			}
		})
		for _, code := range allCodes {
			t.Run(op+"/"+code, func(t *testing.T) {
				_, err := callOp(c, op, code+"-token", shared.ConnectOptions{})
				<-got
				if got, want := shared.ErrorCode(err), code; got != want {
					t.Errorf("code = %q, want %q (err %v)", got, want, err)
				}
				if got, want := shared.ErrorMessage(err), "message for "+code; got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("internal cause crossed the wire: %v", err)
				}
			})
		}
		t.Run(op+"/plain", func(t *testing.T) {
			_, err := callOp(c, op, "plain-token", shared.ConnectOptions{})
			<-got
			if shared.ErrorCode(err) != shared.EINTERNAL || shared.ErrorMessage(err) != "internal error" {
				t.Errorf("err = %v, want EINTERNAL internal error", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("internal cause crossed the wire: %v", err)
			}
		})
		t.Run(op+"/sentinels", func(t *testing.T) {
			for i, want := range knownErrors {
				_, err := callOp(c, op, fmt.Sprintf("sentinel-%d-token", i), shared.ConnectOptions{})
				<-got
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
		})
	}
}

// TestClient_NoServer: a command nobody reads answers EUNAVAILABLE at its
// deadline, and a Server started later drops it without running it.
func TestClient_NoServer(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	cfg := testClientConfig(prefix)
	cfg.ConnectTimeout = time.Second
	c := NewClient(rdb, cfg)

	start := time.Now()
	_, err := c.Connect(context.Background(), "tok-1", shared.ConnectOptions{})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) || shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if elapsed < 900*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Errorf("answered after %v, want about 1 s", elapsed)
	}

	var connects, disconnects atomic.Int64
	fake := &fakeConnector{
		ConnectFn: func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
			connects.Add(1)
			return shared.ConnectResult{}, nil
		},
		DisconnectFn: func(context.Context, string) error { disconnects.Add(1); return nil },
	}
	runServer(t, NewServer(rdb, fake, testServerConfig(prefix)))
	// Same token, same shard, read after the expired command.
	if err := c.Disconnect(context.Background(), "tok-1"); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if n := connects.Load(); n != 0 {
		t.Errorf("expired Connect ran %d times", n)
	}
	if n := disconnects.Load(); n != 1 {
		t.Errorf("Disconnect ran %d times", n)
	}
}

// TestClient_CallerDeadline: the caller's context deadline, when sooner,
// bounds the wait.
func TestClient_CallerDeadline(t *testing.T) {
	rdb := MustOpenRedis(t)
	c := NewClient(rdb, testClientConfig(testPrefix(t, rdb)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Logout(ctx, "tok")
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if elapsed := time.Since(start); elapsed > 600*time.Millisecond {
		t.Errorf("answered after %v, want about 300 ms", elapsed)
	}
}

// TestClient_RedisDown: every method answers EUNAVAILABLE quickly.
func TestClient_RedisDown(t *testing.T) {
	MustOpenRedis(t) // the same skip rules as the other tests
	rdb := mustClient(t, closedAddr(t), 0)
	c := NewClient(rdb, ClientConfig{})
	ctx := context.Background()
	checks := map[string]func() error{
		"Connect":    func() error { _, err := c.Connect(ctx, "t", shared.ConnectOptions{}); return err },
		"Pair":       func() error { _, err := c.Pair(ctx, "t", shared.ConnectOptions{}); return err },
		"Disconnect": func() error { return c.Disconnect(ctx, "t") },
		"Logout":     func() error { return c.Logout(ctx, "t") },
		"Delete":     func() error { return c.Delete(ctx, "t") },
		"Status":     func() error { _, err := c.Status(ctx, "t"); return err },
		"Statuses":   func() error { _, err := c.Statuses(ctx, []string{"t", "u"}); return err },
		"QR":         func() error { _, err := c.QR(ctx, "t"); return err },
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := check()
			elapsed := time.Since(start)
			if shared.ErrorCode(err) != shared.EUNAVAILABLE || shared.ErrorMessage(err) != MsgUnavailable {
				t.Errorf("err = %v, want EUNAVAILABLE %q", err, MsgUnavailable)
			}
			if elapsed > 2*time.Second {
				t.Errorf("answered after %v, want < 2 s", elapsed)
			}
			t.Logf("answered in %v", elapsed)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (ClientConfig{}).Validate(); err != nil {
		t.Errorf("zero ClientConfig: %v", err)
	}
	if err := (ServerConfig{}).Validate(); err != nil {
		t.Errorf("zero ServerConfig: %v", err)
	}
	if err := (PublisherConfig{}).Validate(); err != nil {
		t.Errorf("zero PublisherConfig: %v", err)
	}
	bad := []error{
		ClientConfig{Shards: -1}.Validate(),
		ClientConfig{ConnectTimeout: -time.Second}.Validate(),
		ServerConfig{Shards: MaxShards + 1}.Validate(),
		ServerConfig{LeaseTTL: time.Second, RedisTimeout: time.Second}.Validate(),
		PublisherConfig{StatusTTL: time.Second, RefreshInterval: 2 * time.Second}.Validate(),
	}
	for i, err := range bad {
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("bad config %d: err = %v, want ErrInvalidConfig", i, err)
		}
	}
}

func TestShardOf(t *testing.T) {
	// FNV-1a 32 of "a" is 0xe40c292c.
	if got, want := ShardOf("a", 16), int(uint32(0xe40c292c)%16); got != want {
		t.Errorf("ShardOf(a, 16) = %d, want %d", got, want)
	}
	seen := map[int]bool{}
	for i := range 200 {
		s := ShardOf(fmt.Sprintf("token-%d", i), 16)
		if s < 0 || s >= 16 {
			t.Fatalf("shard %d out of range", s)
		}
		seen[s] = true
	}
	if len(seen) != 16 {
		t.Errorf("200 tokens hit %d of 16 shards", len(seen))
	}
}
