package redisbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// testSendOp is a LaneSend op for the tests: shared declares none yet.
var testSendOp = shared.NewOp[testSendReq, testSendRes]("test.send", shared.LaneSend)

type testSendReq struct {
	Text string `json:"text"`
}

type testSendRes struct {
	Echo  string `json:"echo"`
	Token string `json:"token"`
}

// gate holds the ops that wait on it until it is opened or their context
// ends; the test opens it at the latest when it ends.
type gate struct {
	started chan string // the token of every op that starts waiting
	open    chan struct{}
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{started: make(chan string, 16), open: make(chan struct{})}
	t.Cleanup(g.Open)
	return g
}

// Open lets every waiting op return.
func (g *gate) Open() { g.once.Do(func() { close(g.open) }) }

// wait blocks until g is opened (nil) or ctx ends (its error).
func (g *gate) wait(ctx context.Context, token string) error {
	g.started <- token
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitStarted waits until an op of token waits on g.
func (g *gate) waitStarted(t *testing.T, token string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != token {
			t.Fatalf("%s started, want %s", got, token)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no op of %s started", token)
	}
}

// pendingCount answers how many entries of shard are read and not acked.
func pendingCount(t *testing.T, s *Server, shard int) int64 {
	t.Helper()
	p, err := s.rdb.XPending(context.Background(), s.keys.stream(shard), consumerGroup).Result()
	if err != nil {
		return -1
	}
	return p.Count
}

// TestServer_SlotTakenAtStart: with MaxInFlight 2, one token's hung send
// and the ten sends queued behind it (an ordered lane) hold one slot, not
// eleven: the commands of other tokens, on every shard, still run at once;
// and the queued ones run, in order, once the hung one returns. (A slot
// taken per queued command starved every shard behind one hung command.)
func TestServer_SlotTakenAtStart(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	const hung = "hung-token"
	g := newGate(t)

	var (
		mu        sync.Mutex
		active    int
		maxActive int
		hungOrder []string
	)
	enter := func() {
		mu.Lock()
		active++
		maxActive = max(maxActive, active)
		mu.Unlock()
	}
	leave := func() {
		mu.Lock()
		active--
		mu.Unlock()
	}
	fake := &connectortest.Fake{}
	connectortest.On(fake, testSendOp, func(ctx context.Context, token string, req testSendReq) (testSendRes, error) {
		enter()
		defer leave()
		mu.Lock()
		hungOrder = append(hungOrder, req.Text)
		mu.Unlock()
		if req.Text == "0" {
			if err := g.wait(ctx, token); err != nil {
				return testSendRes{}, err
			}
		}
		return testSendRes{Echo: req.Text, Token: token}, nil
	})
	connectortest.On(fake, shared.OpConnect, func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		enter()
		defer leave()
		return shared.ConnectResult{Status: shared.Status{State: shared.StateConnected}}, nil
	})
	cfg := patientServerConfig(prefix)
	cfg.MaxInFlight = 2
	srv := NewServer(rdb, fake, cfg)
	runServer(t, srv)
	eventually(t, 3*time.Second, "the server owns every shard", func() bool { return len(srv.Owned()) == 4 })
	ccfg := testClientConfig(prefix)
	ccfg.CommandTimeout = 15 * time.Second
	c := NewClient(rdb, ccfg)

	hungShard := ShardOf(hung, 4)
	stream := srv.keys.stream(hungShard)
	hungErrs := make(chan error, 11)
	for i := range 11 {
		go func() {
			_, err := shared.Call(ctx, c, testSendOp, hung, testSendReq{Text: fmt.Sprint(i)})
			hungErrs <- err
		}()
		if i == 0 {
			g.waitStarted(t, hung)
		} else { // queued in order
			eventually(t, 2*time.Second, "command queued", func() bool { return rdb.XLen(ctx, stream).Val() == int64(i+1) })
		}
	}
	// Every command of the hung token is read and waits in its queue.
	for deadline := time.Now().Add(2 * time.Second); pendingCount(t, srv, hungShard) != 11; {
		if time.Now().After(deadline) {
			t.Errorf("the server read %d of the hung token's 11 commands", pendingCount(t, srv, hungShard))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Other tokens, on every shard including the hung token's, run at once.
	others := make([]string, 0, 8)
	shards := map[int]bool{}
	for i := 0; len(others) < 8 || len(shards) < 4; i++ {
		token := fmt.Sprintf("other-%d", i)
		others = append(others, token)
		shards[ShardOf(token, 4)] = true
	}
	var wg sync.WaitGroup
	for _, token := range others {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			start := time.Now()
			res, err := shared.Call(cctx, c, shared.OpConnect, token, shared.ConnectOptions{})
			if err != nil || res.Status.State != shared.StateConnected {
				t.Errorf("%s (shard %d) behind a hung command: %+v, %v", token, ShardOf(token, 4), res, err)
			} else if took := time.Since(start); took > time.Second {
				t.Errorf("%s answered after %v behind a hung command", token, took)
			}
		})
	}
	wg.Wait()

	g.Open()
	for range 11 {
		select {
		case err := <-hungErrs:
			if err != nil {
				t.Errorf("a command of the hung token: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the commands of the hung token did not answer once it returned")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}; !slices.Equal(hungOrder, want) {
		t.Errorf("the hung token's commands ran as %v, want %v", hungOrder, want)
	}
	if maxActive > cfg.MaxInFlight {
		t.Errorf("%d commands ran at once, MaxInFlight is %d", maxActive, cfg.MaxInFlight)
	}
}

// TestServer_Lanes: the lanes of one token do not wait for each other.
// While a connect (LaneLifecycle) hangs, the token's sends (LaneSend) run,
// and so does a disconnect (the lifecycle lane is unordered: the connector
// serialises it, and a disconnect must be able to interrupt a hung
// connect). While a send hangs, the sends queued behind it wait (the send
// lane is ordered) and a lifecycle op still runs.
func TestServer_Lanes(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	const token = "lanes-token"
	g := newGate(t)

	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	fake := &connectortest.Fake{}
	connectortest.On(fake, shared.OpConnect, func(ctx context.Context, token string, _ shared.ConnectOptions) (shared.ConnectResult, error) {
		record("connect")
		err := g.wait(ctx, token)
		record("connect done")
		return shared.ConnectResult{}, err
	})
	connectortest.On(fake, shared.OpDisconnect, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		record("disconnect")
		return shared.Empty{}, nil
	})
	connectortest.On(fake, shared.OpLogout, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		record("logout")
		return shared.Empty{}, nil
	})
	connectortest.On(fake, testSendOp, func(ctx context.Context, token string, req testSendReq) (testSendRes, error) {
		record("send " + req.Text)
		if req.Text == "hang" {
			if err := g.wait(ctx, token); err != nil {
				return testSendRes{}, err
			}
			record("send hang done")
		}
		return testSendRes{Echo: req.Text, Token: token}, nil
	})
	srv := NewServer(rdb, fake, patientServerConfig(prefix))
	runServer(t, srv)
	ccfg := testClientConfig(prefix)
	ccfg.ConnectTimeout = 10 * time.Second
	ccfg.CommandTimeout = 10 * time.Second
	c := NewClient(rdb, ccfg)
	prompt := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := call(cctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s answered after %v", what, took)
		}
	}
	send := func(text string) func(context.Context) error {
		return func(ctx context.Context) error {
			res, err := shared.Call(ctx, c, testSendOp, token, testSendReq{Text: text})
			if err == nil && res != (testSendRes{Echo: text, Token: token}) {
				err = fmt.Errorf("result %+v", res)
			}
			return err
		}
	}

	waiting := make(chan error, 3)
	go func() {
		_, err := shared.Call(ctx, c, shared.OpConnect, token, shared.ConnectOptions{})
		waiting <- err
	}()
	g.waitStarted(t, token)
	for _, text := range []string{"a", "b", "c"} {
		prompt("send "+text+" while a connect hangs", send(text))
	}
	prompt("disconnect while a connect hangs", func(ctx context.Context) error {
		_, err := shared.Call(ctx, c, shared.OpDisconnect, token, shared.Empty{})
		return err
	})

	go func() { waiting <- send("hang")(ctx) }()
	g.waitStarted(t, token)
	go func() { waiting <- send("after")(ctx) }()
	shard := ShardOf(token, 4)
	eventually(t, 2*time.Second, "the send behind the hung one read", func() bool { return pendingCount(t, srv, shard) == 3 })
	prompt("logout while a send hangs", func(ctx context.Context) error {
		_, err := shared.Call(ctx, c, shared.OpLogout, token, shared.Empty{})
		return err
	})

	g.Open()
	for range 3 {
		select {
		case err := <-waiting:
			if err != nil {
				t.Errorf("a command behind the gate: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the commands behind the gate did not answer")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	i, j := slices.Index(events, "send hang done"), slices.Index(events, "send after")
	if want := []string{"connect", "send a", "send b", "send c", "disconnect", "send hang", "logout"}; len(events) != len(want)+3 ||
		!slices.Equal(events[:len(want)], want) || i < 0 || j < i {
		t.Errorf("events = %v, want %v then connect done, send hang done, send after, the send after the hung one's end", events, want)
	}
}
