package redisbus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/webhook"
)

// hookSink records the webhook-id of each accepted delivery; fail makes it
// answer 500.
type hookSink struct {
	mu   sync.Mutex
	ids  []string
	fail atomic.Bool
	srv  *httptest.Server
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fail.Load() {
			w.WriteHeader(500)
			return
		}
		s.mu.Lock()
		s.ids = append(s.ids, r.Header.Get("webhook-id"))
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hookSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

func hookRows(t *testing.T, url string) shared.Store {
	rows, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rows.Close() })
	if err := rows.Create(t.Context(), &shared.Session{Name: "n", Token: "tok", Os: "linux", Webhook: url}); err != nil {
		t.Fatal(err)
	}
	return rows
}

func runWorker(t *testing.T, o *Outbox, rows shared.Store, schedule []time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := webhook.New(webhook.Config{Outbox: o, Rows: rows, Schedule: schedule, Timeout: 2 * time.Second})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func appendEvents(t *testing.T, o *Outbox, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		ev := &shared.Event{ID: fmt.Sprintf("evt_%d", i), Token: "tok", Class: shared.EventMessage, Type: "Message",
			Data: json.RawMessage(`{}`), Time: time.Now().UTC()}
		if err := o.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != int64(i+1) {
			t.Fatalf("Seq %d, want %d", ev.Seq, i+1)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisOutboxDeliversInOrderOnce(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	sink := newHookSink(t)
	o := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "c1"})
	appendEvents(t, o, 0, 20)
	// A redelivered event (same ID) is not queued again.
	if err := o.Append(t.Context(), &shared.Event{ID: "evt_3", Token: "tok", Type: "Message", Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	runWorker(t, o, hookRows(t, sink.srv.URL), nil)
	waitUntil(t, "20 deliveries", func() bool { return len(sink.got()) >= 20 })
	time.Sleep(100 * time.Millisecond)
	got := sink.got()
	if len(got) != 20 {
		t.Fatalf("%d deliveries, want 20", len(got))
	}
	for i, id := range got {
		if id != fmt.Sprintf("evt_%d", i) {
			t.Fatalf("delivery %d is %s: out of order", i, id)
		}
	}
	if n, _ := rdb.XLen(t.Context(), o.stream(0)).Result(); n != 0 {
		t.Errorf("%d entries left in the stream", n)
	}
}

func TestRedisOutboxRetriesBuriesAndReplays(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	sink := newHookSink(t)
	sink.fail.Store(true)
	o := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "c1"})
	runWorker(t, o, hookRows(t, sink.srv.URL), []time.Duration{10 * time.Millisecond, 10 * time.Millisecond})
	appendEvents(t, o, 0, 2)
	var dead []shared.Delivery
	waitUntil(t, "2 dead letters", func() bool {
		dead, _ = o.Failed(t.Context(), "", 10)
		return len(dead) == 2
	})
	if dead[0].Attempts != 3 || dead[0].LastError != "receiver answered 500" || dead[0].Seq != 1 {
		t.Fatalf("dead letter %+v", dead[0])
	}
	if other, _ := o.Failed(t.Context(), "other-token", 10); len(other) != 0 {
		t.Fatalf("Failed(other-token) = %d", len(other))
	}
	sink.fail.Store(false)
	if n, err := o.Replay(t.Context(), "", []string{"evt_1"}); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	waitUntil(t, "the replayed event", func() bool { return len(sink.got()) == 1 })
	if got := sink.got()[0]; got != "evt_1" {
		t.Fatalf("replayed %s", got)
	}
	if dead, _ = o.Failed(t.Context(), "tok", 10); len(dead) != 1 || dead[0].ID != "evt_0" {
		t.Fatalf("dead letters after the replay: %+v", dead)
	}
}

func TestRedisOutboxTakesOverADeadConsumer(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	sink := newHookSink(t)
	dead := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "dead"})
	appendEvents(t, dead, 0, 3)
	// The dead consumer read the entries and never ended them.
	if ds, err := dead.Next(t.Context(), 10, 10*time.Millisecond); err != nil || len(ds) != 3 {
		t.Fatalf("Next = %d, %v", len(ds), err)
	}
	alive := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "alive"})
	alive.claimIdle = 200 * time.Millisecond
	time.Sleep(300 * time.Millisecond) // the entries are now idle longer than claimIdle
	runWorker(t, alive, hookRows(t, sink.srv.URL), nil)
	waitUntil(t, "the dead consumer's events", func() bool { return len(sink.got()) == 3 })
}

// TestRedisOutboxClaimsALeftMemberAtOnce: with Alive (Server.Member), the
// entries of a consumer that stopped heartbeating (a killed connector) are
// taken over at the next Next, not ClaimIdle later; those of a live member
// are not.
func TestRedisOutboxClaimsALeftMemberAtOnce(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	srv := NewServer(rdb, &connectortest.Fake{}, ServerConfig{Prefix: prefix, LeaseTTL: 3 * time.Second})
	seen := func(consumer string, at time.Time) {
		if err := rdb.ZAdd(t.Context(), srv.keys.members(), redis.Z{Score: float64(at.UnixMilli()), Member: consumer}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	seen("busy", time.Now())
	busy := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "busy", Alive: srv.Member})
	appendEvents(t, busy, 0, 3)
	if ds, err := busy.Next(t.Context(), 10, 10*time.Millisecond); err != nil || len(ds) != 3 {
		t.Fatalf("Next = %d, %v", len(ds), err)
	}
	next := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "next", Alive: srv.Member})
	if ds, err := next.Next(t.Context(), 10, 10*time.Millisecond); err != nil || len(ds) != 0 {
		t.Fatalf("a live member's entries were taken: Next = %d, %v", len(ds), err)
	}
	// busy's last heartbeat is older than LeaseTTL/3: it is dead.
	seen("busy", time.Now().Add(-2*time.Second))
	next.claimedAt = map[int]time.Time{}
	ds, err := next.Next(t.Context(), 10, 10*time.Millisecond)
	if err != nil || len(ds) != 3 {
		t.Fatalf("a dead member's entries: Next = %d, %v; want the 3 at once", len(ds), err)
	}
	for i, d := range ds {
		if d.ID != fmt.Sprintf("evt_%d", i) {
			t.Errorf("claimed %d is %s", i, d.ID)
		}
	}
}

// TestRedisOutboxDeliversOwnedShardsOnly: a connector delivers the first
// attempts of the shards it owns, so one process makes a token's first
// attempts in order; the owner of the other shard delivers the rest.
func TestRedisOutboxDeliversOwnedShardsOnly(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	sink := newHookSink(t)
	// Tokens tok (its shard) and another in the other shard.
	other := "tok-other"
	for i := 0; ShardOf(other, 2) == ShardOf("tok", 2); i++ {
		other = fmt.Sprint("tok-other-", i)
	}
	mine := ShardOf("tok", 2)
	rows := hookRows(t, sink.srv.URL)
	if err := rows.Create(t.Context(), &shared.Session{Name: "n2", Token: other, Os: "linux", Webhook: sink.srv.URL}); err != nil {
		t.Fatal(err)
	}
	a := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "a", Shards: 2, Owned: func() []int { return []int{mine} }})
	for i, token := range []string{"tok", other, "tok", other} {
		ev := &shared.Event{ID: fmt.Sprintf("evt_%d", i), Token: token, Type: "Message", Data: json.RawMessage(`{}`), Time: time.Now()}
		if err := a.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	runWorker(t, a, rows, nil)
	waitUntil(t, "the owned shard's events", func() bool { return len(sink.got()) == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := sink.got(); len(got) != 2 || got[0] != "evt_0" || got[1] != "evt_2" {
		t.Fatalf("the owner of shard %d delivered %v", mine, got)
	}
	b := NewOutbox(rdb, OutboxConfig{Prefix: prefix, Consumer: "b", Shards: 2, Owned: func() []int { return []int{1 - mine} }})
	runWorker(t, b, rows, nil)
	waitUntil(t, "the other shard's events", func() bool { return len(sink.got()) == 4 })
}
