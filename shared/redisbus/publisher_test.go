package redisbus

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	if os.Getenv("WAGO_TEST_LOG") == "" {
		redis.SetLogger(discardRedisLog{}) // dial errors are expected in the outage tests
	}
	os.Exit(m.Run())
}

// runPublisher runs p until the returned stop is called or the test ends.
func runPublisher(tb testing.TB, p *StatePublisher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			tb.Errorf("StatePublisher.Run: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	tb.Cleanup(stop)
	return stop
}

func testPublisherConfig(prefix string) PublisherConfig {
	return PublisherConfig{
		Prefix:          prefix,
		StatusTTL:       600 * time.Millisecond,
		RefreshInterval: 150 * time.Millisecond,
		Timeout:         200 * time.Millisecond,
		MaxBackoff:      100 * time.Millisecond,
		Logger:          testLogger(),
	}
}

// TestStatusAndQR: Status, Statuses and QR answer from the published keys
// with the documented semantics.
func TestStatusAndQR(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	p := NewStatePublisher(rdb, testPublisherConfig(prefix))
	runPublisher(t, p)
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	st, err := c.Status(ctx, "nobody")
	if err != nil || st != (shared.Status{State: shared.StateDisconnected}) {
		t.Errorf("Status(unknown) = %+v, %v", st, err)
	}
	if _, err := c.QR(ctx, "nobody"); !errors.Is(err, shared.ErrNoSession) {
		t.Errorf("QR(unknown) err = %v, want ErrNoSession", err)
	}

	since := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	waitStatus := func(token, state string) shared.Status {
		t.Helper()
		var st shared.Status
		eventually(t, 2*time.Second, "status "+state, func() bool {
			st, err = c.Status(ctx, token)
			return err == nil && st.State == state
		})
		return st
	}

	p.Publish("tok", shared.Status{State: shared.StateConnecting, Connected: false, Since: since}, "")
	waitStatus("tok", shared.StateConnecting)
	if _, err := c.QR(ctx, "tok"); !errors.Is(err, shared.ErrNoQRYet) || shared.ErrorCode(err) != shared.ECONFLICT {
		t.Errorf("QR(connecting) err = %v, want shared.ErrNoQRYet", err)
	}
	p.Publish("linked", shared.Status{State: shared.StateConnecting, JID: "1@s.whatsapp.net", Since: since}, "")
	waitStatus("linked", shared.StateConnecting)
	if _, err := c.QR(ctx, "linked"); !errors.Is(err, shared.ErrLinkedNoQR) {
		t.Errorf("QR(linked, reconnecting) err = %v, want shared.ErrLinkedNoQR", err)
	}

	want := shared.Status{Connected: true, State: shared.StateQR, Since: since, HasQR: true}
	p.Publish("tok", want, "2@qrcode,abc")
	if got := waitStatus("tok", shared.StateQR); !got.Since.Equal(want.Since) || !got.Connected || !got.HasQR {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
	if code, err := c.QR(ctx, "tok"); err != nil || code != "2@qrcode,abc" {
		t.Errorf("QR = %q, %v", code, err)
	}

	p.Publish("tok", shared.Status{Connected: true, LoggedIn: true, JID: "1@s.whatsapp.net", State: shared.StateConnected}, "")
	waitStatus("tok", shared.StateConnected)
	if _, err := c.QR(ctx, "tok"); !errors.Is(err, shared.ErrAlreadyLoggedIn) {
		t.Errorf("QR(logged in) err = %v, want ErrAlreadyLoggedIn", err)
	}
	if n := rdb.Exists(ctx, keys{prefix}.qr("tok")).Val(); n != 0 {
		t.Errorf("QR key left after the code went away")
	}

	p.Publish("other", shared.Status{State: shared.StateFailed, LastError: "boom"}, "")
	waitStatus("other", shared.StateFailed)
	if _, err := c.QR(ctx, "other"); !errors.Is(err, shared.ErrNoSession) {
		t.Errorf("QR(failed) err = %v, want ErrNoSession", err)
	}

	sts, err := c.Statuses(ctx, []string{"tok", "nobody", "other"})
	if err != nil || len(sts) != 3 || sts[0].State != shared.StateConnected ||
		sts[1].State != shared.StateDisconnected || sts[2].State != shared.StateFailed || sts[2].LastError != "boom" {
		t.Errorf("Statuses = %+v, %v", sts, err)
	}
	if sts, err := c.Statuses(ctx, nil); err != nil || len(sts) != 0 {
		t.Errorf("Statuses(nil) = %v, %v", sts, err)
	}

	p.Forget("tok")
	waitStatus("tok", shared.StateDisconnected)
	if _, err := c.QR(ctx, "tok"); !errors.Is(err, shared.ErrNoSession) {
		t.Errorf("QR(forgotten) err = %v, want ErrNoSession", err)
	}
}

// TestPublisher_Expires: the keys live while the publisher runs and expire
// within StatusTTL once it stops.
func TestPublisher_Expires(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	cfg := testPublisherConfig(prefix)
	p := NewStatePublisher(rdb, cfg)
	stop := runPublisher(t, p)
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	p.Publish("tok", shared.Status{Connected: true, LoggedIn: true, State: shared.StateConnected}, "")
	p.Publish("qr-tok", shared.Status{Connected: true, State: shared.StateQR, HasQR: true}, "code")
	eventually(t, 2*time.Second, "published", func() bool {
		st, _ := c.Status(ctx, "tok")
		return st.Connected
	})
	time.Sleep(3 * cfg.StatusTTL) // refreshed meanwhile
	if st, _ := c.Status(ctx, "tok"); !st.Connected {
		t.Fatalf("status expired while the publisher runs: %+v", st)
	}
	if code, err := c.QR(ctx, "qr-tok"); err != nil || code != "code" {
		t.Fatalf("QR expired while the publisher runs: %q, %v", code, err)
	}

	stop()
	stopped := time.Now()
	eventually(t, 2*cfg.StatusTTL, "status expired", func() bool {
		st, _ := c.Status(ctx, "tok")
		return st.State == shared.StateDisconnected && !st.Connected
	})
	t.Logf("status expired %v after the publisher stopped (StatusTTL %v)", time.Since(stopped), cfg.StatusTTL)
	if _, err := c.QR(ctx, "qr-tok"); !errors.Is(err, shared.ErrNoSession) {
		t.Errorf("QR after expiry err = %v, want ErrNoSession", err)
	}
}

// TestPublisher_RedisOutage: Publish never blocks while Redis is down, and
// the latest state is written when Redis is back.
func TestPublisher_RedisOutage(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	px := startProxy(t, rdb.Options().Addr)
	p := NewStatePublisher(mustClient(t, px.Addr, rdb.Options().DB), testPublisherConfig(prefix))
	runPublisher(t, p)
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	px.Down()
	start := time.Now()
	for i := range 1000 {
		p.Publish("tok", shared.Status{State: shared.StateConnecting, JID: string(rune('a' + i%26))}, "")
	}
	p.Publish("tok", shared.Status{Connected: true, State: shared.StateQR, JID: "last"}, "qr-last")
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("1001 Publish calls took %v with Redis down", d)
	}
	time.Sleep(500 * time.Millisecond)
	if st, _ := c.Status(ctx, "tok"); st.State != shared.StateDisconnected {
		t.Fatalf("status written through a down proxy: %+v", st)
	}
	px.Up()
	eventually(t, 3*time.Second, "latest state written after the outage", func() bool {
		st, _ := c.Status(ctx, "tok")
		code, _ := c.QR(ctx, "tok")
		return st.JID == "last" && code == "qr-last"
	})
}
