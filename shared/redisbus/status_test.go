package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// TestStatus_FollowsTheLease: statuses are stamped with the publishing
// Server's lease. While it renews, a connected session reads connected
// (long after LeaseTTL/2); once it stops renewing (a killed connector) the
// session reads disconnected within LeaseTTL/2, although its status key
// (TTL one minute) is still there, while a logged-out session still reads
// logged out; when another Server owns the shard, a status left by the
// previous owner is not trusted either; and a publisher whose Server's
// lease may have expired writes nothing. All of it holds with the status
// cache too.
func TestStatus_FollowsTheLease(t *testing.T) {
	t.Run("read", func(t *testing.T) { testStatusFollowsTheLease(t, false) })
	t.Run("cached", func(t *testing.T) { testStatusFollowsTheLease(t, true) })
}

func testStatusFollowsTheLease(t *testing.T, cached bool) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	scfg := testServerConfig(prefix)
	scfg.LeaseTTL = 2 * time.Second
	scfg.RedisTimeout = 300 * time.Millisecond
	scfg.ConsumerID = "A"
	a := NewServer(rdb, &connectortest.Fake{}, scfg)
	runServer(t, a)
	eventually(t, 3*time.Second, "A owns every shard", func() bool { return len(a.Owned()) == 4 })

	pcfg := testPublisherConfig(prefix)
	pcfg.StatusTTL = time.Minute
	pcfg.RefreshInterval = 20 * time.Second
	pcfg.Owner = a.OwnerOf
	p := NewStatePublisher(rdb, pcfg)
	runPublisher(t, p)
	ccfg := testClientConfig(prefix)
	ccfg.LeaseTTL = scfg.LeaseTTL
	c := NewClient(rdb, ccfg)
	if cached {
		c = cachedClient(t, rdb, ccfg)
	}

	connected := shared.Status{Connected: true, LoggedIn: true, JID: "1@s.whatsapp.net", State: shared.StateConnected}
	p.Publish("tok", connected, "")
	p.Publish("gone", shared.Status{State: shared.StateLoggedOut}, "")
	eventually(t, 2*time.Second, "published", func() bool {
		sts, err := c.Statuses(ctx, []string{"tok", "gone"})
		return err == nil && sts[0].Connected && sts[1].State == shared.StateLoggedOut
	})
	time.Sleep(scfg.LeaseTTL) // renewed meanwhile
	if st, err := c.Status(ctx, "tok"); err != nil || !st.Connected {
		t.Fatalf("status of a live owner's session after a lease period: %+v, %v", st, err)
	}

	a.frozen.Store(true) // no renewal any more
	killed := time.Now()
	eventually(t, scfg.LeaseTTL/2+scfg.LeaseTTL/3+500*time.Millisecond, "tok to read disconnected", func() bool {
		st, err := c.Status(ctx, "tok")
		return err == nil && !st.Connected && !st.LoggedIn && st.State == shared.StateDisconnected
	})
	took := time.Since(killed)
	t.Logf("a session of a dead connector reads disconnected %v after it stopped (lease TTL %v)", took.Round(time.Millisecond), scfg.LeaseTTL)
	if rdb.Exists(ctx, keys{prefix}.status("tok")).Val() != 1 {
		t.Fatal("the status key expired: the test proves nothing")
	}
	if lease := rdb.Get(ctx, keys{prefix}.lease(ShardOf("tok", 4))).Val(); lease == "" {
		t.Logf("(the lease had expired too)")
	}
	if st, err := c.Status(ctx, "gone"); err != nil || st.State != shared.StateLoggedOut {
		t.Errorf("a logged-out session of a dead connector: %+v, %v", st, err)
	}
	if _, err := c.QR(ctx, "tok"); !errors.Is(err, shared.ErrNoSession) && !errors.Is(err, shared.ErrLinkedNoQR) {
		t.Errorf("QR of a dead connector's session: %v", err)
	}

	// B takes the shards over; A's stamped status stays untrusted, and B's
	// own is read.
	bcfg := scfg
	bcfg.ConsumerID = "B"
	b := NewServer(rdb, &connectortest.Fake{}, bcfg)
	runServer(t, b)
	eventually(t, 2*scfg.LeaseTTL, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	if st, err := c.Status(ctx, "tok"); err != nil || st.Connected {
		t.Fatalf("a status written under A's lease, read under B's: %+v, %v", st, err)
	}
	pcfg.Owner = b.OwnerOf
	pb := NewStatePublisher(rdb, pcfg)
	runPublisher(t, pb)
	pb.Publish("tok", connected, "")
	eventually(t, 2*time.Second, "B's status", func() bool {
		st, err := c.Status(ctx, "tok")
		return err == nil && st.Connected
	})

	// A, paused past its lease's expiry and not yet aware of its loss,
	// writes nothing over B's status.
	p.Publish("tok", shared.Status{State: shared.StateConnecting}, "")
	time.Sleep(300 * time.Millisecond)
	if st, err := c.Status(ctx, "tok"); err != nil || !st.Connected {
		t.Errorf("A overwrote B's status: %+v, %v", st, err)
	}
}

// pipelineCounter is a go-redis hook that counts the pipelines sent.
type pipelineCounter struct{ n atomic.Int64 }

func (h *pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestStatuses_Batched: status reads made at once share round trips, and
// each caller still gets the statuses of its own tokens, a missing one
// reading disconnected; a list longer than a batch reads right too.
func TestStatuses_Batched(t *testing.T) {
	MustOpenRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: MustOpenRedis(t).Options().Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	const n = 64
	jid := func(i int) string { return fmt.Sprintf("%d@s.whatsapp.net", 5500+i) }
	for i := range n {
		if i%8 == 7 {
			continue // no status: no client runs
		}
		raw, _ := json.Marshal(storedStatus{Status: shared.Status{State: shared.StateLoggedOut, JID: jid(i)}})
		if err := rdb.Set(ctx, k.status(fmt.Sprint("tok", i)), raw, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	want := func(i int) shared.Status {
		if i%8 == 7 {
			return shared.Status{State: shared.StateDisconnected}
		}
		return shared.Status{State: shared.StateLoggedOut, JID: jid(i)}
	}
	counter := &pipelineCounter{}
	rdb.AddHook(counter)
	c := NewClient(rdb, testClientConfig(prefix))

	const rounds = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range rounds {
				st, err := c.Status(ctx, fmt.Sprint("tok", i))
				if err != nil || st != want(i) {
					t.Errorf("status of tok%d = %+v, %v; want %+v", i, st, err, want(i))
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := counter.n.Load(); got >= n*rounds {
		t.Errorf("%d reads made at once took %d round trips: not batched", n*rounds, got)
	} else {
		t.Logf("%d reads made at once took %d round trips", n*rounds, got)
	}

	tokens := make([]string, 3*mgetKeys/2) // more than one MGET
	for i := range tokens {
		tokens[i] = fmt.Sprint("tok", i%n)
	}
	sts, err := c.Statuses(ctx, tokens)
	if err != nil || len(sts) != len(tokens) {
		t.Fatalf("Statuses of %d tokens: %d, %v", len(tokens), len(sts), err)
	}
	for i, st := range sts {
		if st != want(i%n) {
			t.Fatalf("status %d (tok%d) of a long list = %+v, want %+v", i, i%n, st, want(i%n))
		}
	}
}

// TestStatuses_BadValueFailsOnlyItsRead: in a batch, a status that does
// not decode fails the read it belongs to, not the others.
func TestStatuses_BadValueFailsOnlyItsRead(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	raw, _ := json.Marshal(storedStatus{Status: shared.Status{State: shared.StateLoggedOut}})
	rdb.Set(ctx, k.status("good"), raw, time.Minute)
	rdb.Set(ctx, k.status("bad"), "{not json", time.Minute)
	c := NewClient(rdb, testClientConfig(prefix))
	bad := &statusRead{tokens: []string{"good", "bad"}}
	good := &statusRead{tokens: []string{"good"}}
	c.readStatuses(ctx, []*statusRead{bad, good})
	if shared.ErrorCode(bad.err) != shared.EINTERNAL {
		t.Errorf("the read with the bad value: %v, want EINTERNAL", bad.err)
	}
	if good.err != nil || len(good.out) != 1 || good.out[0].State != shared.StateLoggedOut {
		t.Errorf("the other read of the batch: %+v, %v", good.out, good.err)
	}
}

// TestStatuses_HungRedis: against a Redis that accepts and never answers,
// every one of many reads made at once, the one sending the batch and the
// ones waiting for it, answers EUNAVAILABLE within about RedisTimeout.
func TestStatuses_HungRedis(t *testing.T) {
	MustOpenRedis(t) // the same skip rules as the other tests
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	rdb := mustClient(t, ln.Addr().String(), 0)
	cfg := testClientConfig("hung")
	cfg.RedisTimeout = 300 * time.Millisecond
	c := NewClient(rdb, cfg)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := c.Status(context.Background(), fmt.Sprint("t", i))
			if elapsed := time.Since(start); elapsed > 2*cfg.RedisTimeout+500*time.Millisecond {
				t.Errorf("read %d answered after %v", i, elapsed)
			}
			if shared.ErrorCode(err) != shared.EUNAVAILABLE {
				t.Errorf("read %d: %v, want EUNAVAILABLE", i, err)
			}
		}()
	}
	wg.Wait()
}
