package redisbus

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// releasedShards records the shards OnRelease was called for.
type releasedShards struct {
	mu     sync.Mutex
	shards []int
}

func (r *releasedShards) add(shard int) {
	r.mu.Lock()
	r.shards = append(r.shards, shard)
	r.mu.Unlock()
}

func (r *releasedShards) get() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.shards)
	slices.Sort(out)
	return out
}

// TestServer_ReleaseBounded: cancelling Run's context while commands hang
// (a connect, and a send with another send queued behind it) returns within
// DrainTimeout + cancelGrace (and a margin for the reader and Redis), calls
// OnRelease for every shard and deletes every lease: commands that honour
// their context are cancelled after DrainTimeout; commands that ignore it
// are given up on after cancelGrace more, with an error logged. The send
// queued behind the hung one does not start once the handlers are
// cancelled: it stays pending and the next owner runs it.
func TestServer_ReleaseBounded(t *testing.T) {
	for _, ignoresCtx := range []bool{false, true} {
		name := "honours-ctx"
		if ignoresCtx {
			name = "ignores-ctx"
		}
		t.Run(name, func(t *testing.T) { testReleaseBounded(t, ignoresCtx) })
	}
}

func testReleaseBounded(t *testing.T, ignoresCtx bool) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	const token = "drain-token"
	g := newGate(t)

	ctxErrs := make(chan error, 2)
	hang := func(ctx context.Context, token string) error {
		if ignoresCtx {
			return g.wait(context.Background(), token)
		}
		err := g.wait(ctx, token)
		ctxErrs <- err
		return err
	}
	ranSecond := make(chan struct{}, 1)
	fake := &connectortest.Fake{}
	connectortest.On(fake, shared.OpConnect, func(ctx context.Context, token string, _ shared.ConnectOptions) (shared.ConnectResult, error) {
		return shared.ConnectResult{}, hang(ctx, token)
	})
	connectortest.On(fake, testSendOp, func(ctx context.Context, token string, req testSendReq) (testSendRes, error) {
		if req.Text == "second" {
			ranSecond <- struct{}{}
			return testSendRes{}, nil
		}
		return testSendRes{}, hang(ctx, token)
	})
	logs := &logBuffer{}
	var released releasedShards
	cfg := patientServerConfig(prefix)
	cfg.ConsumerID = "draining"
	cfg.DrainTimeout = 300 * time.Millisecond
	cfg.Logger = logs.logger()
	cfg.OnRelease = released.add
	srv := NewServer(rdb, fake, cfg)
	runCtx, cancel := context.WithCancel(ctx)
	var runErr error
	runDone := make(chan struct{})
	go func() { runErr = srv.Run(runCtx); close(runDone) }()
	eventually(t, 3*time.Second, "the server owns every shard", func() bool { return len(srv.Owned()) == 4 })

	ccfg := testClientConfig(prefix)
	// Far beyond the drain: the release must not wait for the commands' deadlines.
	ccfg.ConnectTimeout = 30 * time.Second
	ccfg.CommandTimeout = 30 * time.Second
	c := NewClient(rdb, ccfg)
	hung, second := make(chan error, 2), make(chan error, 1)
	go func() {
		_, err := shared.Call(ctx, c, shared.OpConnect, token, shared.ConnectOptions{})
		hung <- err
	}()
	g.waitStarted(t, token)
	go func() {
		_, err := shared.Call(ctx, c, testSendOp, token, testSendReq{Text: "first"})
		hung <- err
	}()
	g.waitStarted(t, token)
	go func() {
		_, err := shared.Call(ctx, c, testSendOp, token, testSendReq{Text: "second"})
		second <- err
	}()
	shard := ShardOf(token, 4)
	eventually(t, 2*time.Second, "the second send read", func() bool { return pendingCount(t, srv, shard) == 3 })
	t.Cleanup(func() { // the hung ops return, then their replies are written
		cancel()
		g.Open()
		select {
		case <-runDone:
		case <-time.After(5 * time.Second):
			t.Errorf("Run still running 5 s after the test")
		}
		for range 2 {
			select {
			case <-hung:
			case <-time.After(5 * time.Second):
				t.Errorf("a hung command still unanswered 5 s after the test")
			}
		}
	})

	stopped := time.Now()
	cancel()
	bound := cfg.DrainTimeout + cancelGrace + time.Second
	select {
	case <-runDone:
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	case <-time.After(bound):
		t.Fatalf("Run did not return within %v of its context's end while commands hang", bound)
	}
	took := time.Since(stopped)
	t.Logf("Run returned %v after its context ended", took)
	if took < cfg.DrainTimeout {
		t.Errorf("Run returned after %v: the running commands were not given DrainTimeout (%v)", took, cfg.DrainTimeout)
	}
	if ignoresCtx {
		if took < cfg.DrainTimeout+cancelGrace {
			t.Errorf("Run returned after %v, before DrainTimeout + cancelGrace", took)
		}
		if !logs.Contains("commands did not return after cancellation") {
			t.Errorf("no error logged about the commands that ignored their cancellation")
		}
	} else {
		if took > cfg.DrainTimeout+1500*time.Millisecond {
			t.Errorf("Run returned after %v, want soon after DrainTimeout (%v): the commands return once cancelled", took, cfg.DrainTimeout)
		}
		for range 2 {
			select {
			case err := <-ctxErrs:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("a command's context ended with %v, want context.Canceled", err)
				}
			default:
				t.Errorf("a hung command's context was not cancelled")
			}
		}
	}
	if got := released.get(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("OnRelease called for %v, want every shard", got)
	}
	for s := range 4 {
		if v, err := rdb.Get(ctx, k.lease(s)).Result(); err == nil {
			t.Errorf("lease of shard %d left: %q", s, v)
		}
	}
	if rdb.ZScore(ctx, k.members(), cfg.ConsumerID).Err() == nil {
		t.Errorf("the server is still in the members set")
	}

	// The second send never started: it stays pending for the next owner.
	select {
	case <-ranSecond:
		t.Fatalf("a send queued behind the hung one started during the release")
	default:
	}
	if n := pendingCount(t, srv, shard); n < 1 {
		t.Fatalf("%d commands pending after the release, want the second send", n)
	}
	cfg2 := patientServerConfig(prefix)
	cfg2.ConsumerID = "next"
	cfg2.ClaimMinIdle = 100 * time.Millisecond
	runServer(t, NewServer(rdb, fake, cfg2))
	select {
	case err := <-second:
		if err != nil {
			t.Errorf("the second send, run by the next owner: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next owner did not run the pending send")
	}
	select {
	case <-ranSecond:
	default:
		t.Errorf("the second send was answered without running")
	}
}

// TestServer_LostLease: when another Server takes a shard's lease, the
// running command of the shard has its context cancelled within one
// renewal; OnRelease is called for the shard, even when the command ignores
// its cancellation (after DrainTimeout + cancelGrace at most); the thief's
// lease is left alone and the other shards stay owned.
func TestServer_LostLease(t *testing.T) {
	for _, ignoresCtx := range []bool{false, true} {
		name := "honours-ctx"
		if ignoresCtx {
			name = "ignores-ctx"
		}
		t.Run(name, func(t *testing.T) { testLostLease(t, ignoresCtx) })
	}
}

func testLostLease(t *testing.T, ignoresCtx bool) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	ctx := context.Background()
	const token = "lost-token"
	g := newGate(t)
	type ended struct {
		err error
		at  time.Time
	}
	ctxEnded := make(chan ended, 1)
	fake := connectortest.On(&connectortest.Fake{}, shared.OpConnect, func(ctx context.Context, token string, _ shared.ConnectOptions) (shared.ConnectResult, error) {
		if ignoresCtx {
			g.wait(context.Background(), token)
			return shared.ConnectResult{}, nil
		}
		err := g.wait(ctx, token)
		ctxEnded <- ended{err, time.Now()}
		return shared.ConnectResult{}, err
	})
	var released releasedShards
	cfg := testServerConfig(prefix)
	cfg.DrainTimeout = 300 * time.Millisecond
	cfg.OnRelease = released.add
	srv := NewServer(rdb, fake, cfg)
	runServer(t, srv)
	eventually(t, 3*time.Second, "the server owns every shard", func() bool { return len(srv.Owned()) == 4 })

	ccfg := testClientConfig(prefix)
	ccfg.ConnectTimeout = 10 * time.Second
	c := NewClient(rdb, ccfg)
	answered := make(chan error, 1)
	go func() {
		_, err := shared.Call(ctx, c, shared.OpConnect, token, shared.ConnectOptions{})
		answered <- err
	}()
	g.waitStarted(t, token)

	shard := ShardOf(token, 4)
	const thief = "thief:999999"
	if err := rdb.Set(ctx, k.lease(shard), thief, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	stolen := time.Now()
	noticed := cfg.LeaseTTL/3 + cfg.RedisTimeout // the next renewal fails
	if !ignoresCtx {
		bound := noticed + 500*time.Millisecond
		select {
		case e := <-ctxEnded:
			if !errors.Is(e.err, context.Canceled) {
				t.Errorf("the command's context ended with %v, want context.Canceled", e.err)
			}
			if took := e.at.Sub(stolen); took > bound {
				t.Errorf("the command was cancelled %v after the lease was lost, want < %v", took, bound)
			} else {
				t.Logf("the command was cancelled %v after the lease was lost", took)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the command still runs 3 s after its shard's lease was lost")
		}
	}
	bound := noticed + cfg.DrainTimeout + cancelGrace + time.Second
	eventually(t, bound, "OnRelease of the lost shard", func() bool { return slices.Equal(released.get(), []int{shard}) })
	t.Logf("OnRelease called %v after the lease was lost", time.Since(stolen))
	if slices.Contains(srv.Owned(), shard) || len(srv.Owned()) != 3 {
		t.Errorf("owned %v after losing shard %d", srv.Owned(), shard)
	}
	if v := rdb.Get(ctx, k.lease(shard)).Val(); v != thief {
		t.Errorf("the lost lease = %q, want the thief's %q", v, thief)
	}
	g.Open()
	select {
	case <-answered:
	case <-time.After(3 * time.Second):
		t.Errorf("the caller was not answered after the command returned")
	}
}
