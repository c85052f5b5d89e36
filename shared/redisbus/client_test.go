package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

var allCodes = []string{
	shared.EINVALID, shared.EUNAUTHORIZED, shared.ENOTFOUND, shared.ECONFLICT, shared.EEXISTS,
	shared.ETOOLARGE, shared.EUNAVAILABLE, shared.ETIMEOUT, shared.EINTERNAL,
}

// sentinels are every sentinel error of shared that an op or QR returns:
// each must satisfy errors.Is on the Client's side of the wire.
var sentinels = []*shared.Error{
	shared.ErrSessionNotFound,
	shared.ErrAlreadyExists,
	shared.ErrNoSession,
	shared.ErrNotLoggedIn,
	shared.ErrAlreadyLoggedIn,
	shared.ErrNoQRYet,
	shared.ErrLinkedNoQR,
}

// sessionOp runs one of the session ops through an Invoker with shared.Call,
// as the HTTP functions do; the ops whose request and result are Empty take
// no options and answer a zero ConnectResult.
type sessionOp struct {
	op   shared.OpInfo
	call func(ctx context.Context, c shared.Invoker, token string, opts shared.ConnectOptions) (shared.ConnectResult, error)
}

func connectLike(op *shared.Op[shared.ConnectOptions, shared.ConnectResult]) sessionOp {
	return sessionOp{op, func(ctx context.Context, c shared.Invoker, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		return shared.Call(ctx, c, op, token, opts)
	}}
}

func emptyOp(op *shared.Op[shared.Empty, shared.Empty]) sessionOp {
	return sessionOp{op, func(ctx context.Context, c shared.Invoker, token string, _ shared.ConnectOptions) (shared.ConnectResult, error) {
		_, err := shared.Call(ctx, c, op, token, shared.Empty{})
		return shared.ConnectResult{}, err
	}}
}

// sessionOps are the five session ops.
var sessionOps = []sessionOp{
	connectLike(shared.OpConnect),
	connectLike(shared.OpPair),
	emptyOp(shared.OpDisconnect),
	emptyOp(shared.OpLogout),
	emptyOp(shared.OpDelete),
}

// fakeResult is what opFake's connect and pair answer, with or without an
// error.
var fakeResult = shared.ConnectResult{
	Status: shared.Status{
		Connected: true, LoggedIn: true, JID: "123@s.whatsapp.net", State: shared.StateConnected,
		Since: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), HasQR: false,
	},
	LinkingCode: "ABCD-EFGH",
}

// opFake answers every session op with the error that errFor returns (and
// connect and pair with fakeResult too), and records the calls as
// "<op> <token> <request>".
func opFake(errFor func(op, token string) error, calls *atomic.Int64, got chan<- string) *connectortest.Fake {
	record := func(op shared.OpInfo, token string, req any) {
		calls.Add(1)
		if got != nil {
			got <- fmt.Sprintf("%s %s %+v", op.Name(), token, req)
		}
	}
	f := &connectortest.Fake{}
	for _, op := range []*shared.Op[shared.ConnectOptions, shared.ConnectResult]{shared.OpConnect, shared.OpPair} {
		connectortest.On(f, op, func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
			record(op, token, opts)
			return fakeResult, errFor(op.Name(), token)
		})
	}
	for _, op := range []*shared.Op[shared.Empty, shared.Empty]{shared.OpDisconnect, shared.OpLogout, shared.OpDelete} {
		connectortest.On(f, op, func(_ context.Context, token string, req shared.Empty) (shared.Empty, error) {
			record(op, token, req)
			return shared.Empty{}, errFor(op.Name(), token)
		})
	}
	return f
}

// TestRoundTrip runs every session op through Client -> Redis -> Server ->
// fake and checks results, requests and every error code, and that a
// request the Server cannot decode answers EINVALID without running.
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
			return sentinels[n]
		case code == "ok":
			return nil
		}
		return shared.Wrap(errors.New("secret cause"), code, "message for "+code)
	}
	var calls atomic.Int64
	got := make(chan string, 1)
	srv := NewServer(rdb, opFake(errFor, &calls, got), patientServerConfig(prefix))
	runServer(t, srv)
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	for _, so := range sessionOps {
		op := so.op.Name()
		connectLike := so.op == shared.OpConnect || so.op == shared.OpPair
		t.Run(op+"/ok", func(t *testing.T) {
			start := time.Now()
			res, err := so.call(ctx, c, "ok-token-"+op, shared.ConnectOptions{Immediate: true, Phone: "5511999999999"})
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			t.Logf("round trip %v", time.Since(start))
			call := <-got
			wantReq := "{}"
			if connectLike {
				wantReq = "{Immediate:true Phone:5511999999999}"
				if res.LinkingCode != "ABCD-EFGH" || !res.Status.LoggedIn || res.Status.JID != "123@s.whatsapp.net" ||
					res.Status.State != shared.StateConnected || !res.Status.Since.Equal(fakeResult.Status.Since) {
					t.Errorf("result = %+v", res)
				}
			}
			if want := op + " ok-token-" + op + " " + wantReq; call != want {
				t.Errorf("connector got %q, want %q", call, want)
			}
		})
		for _, code := range allCodes {
			t.Run(op+"/"+code, func(t *testing.T) {
				res, err := so.call(ctx, c, code+"-token", shared.ConnectOptions{})
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
				// The reply carries the result along with the error, as a
				// direct call returns both.
				if connectLike && res.LinkingCode != fakeResult.LinkingCode {
					t.Errorf("result with the error = %+v, want %+v", res, fakeResult)
				}
			})
		}
		t.Run(op+"/plain", func(t *testing.T) {
			_, err := so.call(ctx, c, "plain-token", shared.ConnectOptions{})
			<-got
			if shared.ErrorCode(err) != shared.EINTERNAL || shared.ErrorMessage(err) != "internal error" {
				t.Errorf("err = %v, want EINTERNAL internal error", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("internal cause crossed the wire: %v", err)
			}
		})
		t.Run(op+"/sentinels", func(t *testing.T) {
			for i, want := range sentinels {
				_, err := so.call(ctx, c, fmt.Sprintf("sentinel-%d-token", i), shared.ConnectOptions{})
				<-got
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
		})
	}

	// A request the op cannot decode (a Client never sends one: it is
	// injected with XADD) answers EINVALID and never reaches the connector.
	k := keys{prefix}
	malformed := []struct {
		op  shared.OpInfo
		req string
	}{
		{shared.OpConnect, `{"immediate":`},
		{shared.OpConnect, `{"immediate":"yes"}`},
		{shared.OpPair, `not json`},
		{shared.OpDisconnect, `[1,2]`},
		{shared.OpLogout, `"x"`},
		{shared.OpDelete, `{"`},
	}
	for _, m := range malformed {
		t.Run(m.op.Name()+"/malformed-request", func(t *testing.T) {
			before := calls.Load()
			cmd := command{ID: newCommandID(), Op: m.op, Token: "ok-malformed", Req: []byte(m.req), Deadline: time.Now().Add(3 * time.Second)}
			xadd(t, rdb, k, ShardOf(cmd.Token, 4), cmd)
			r := waitReply(t, rdb, k, cmd.ID)
			err := r.err()
			if shared.ErrorCode(err) != shared.EINVALID || shared.ErrorMessage(err) != "malformed request" {
				t.Errorf("err = %v, want EINVALID malformed request", err)
			}
			if len(r.Result) != 0 {
				t.Errorf("result = %s, want none", r.Result)
			}
			if n := calls.Load() - before; n != 0 {
				t.Errorf("the connector ran %d times", n)
			}
		})
	}
}

// waitReply waits for the reply of command id, as a Client does.
func waitReply(t *testing.T, rdb *redis.Client, k keys, id string) reply {
	t.Helper()
	got, err := rdb.BLPop(context.Background(), 3*time.Second, k.reply(id)).Result()
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	var r reply
	if err := json.Unmarshal([]byte(got[1]), &r); err != nil {
		t.Fatalf("reply %q: %v", got[1], err)
	}
	return r
}

// TestWire: the stream entry a Client queues names the op and carries its
// request as JSON under wire version 2; the reply carries the result as JSON
// and the error without its cause; the Server reads exactly what the
// Client wrote.
func TestWire(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	cfg := testClientConfig(prefix)
	cfg.ConnectTimeout = 300 * time.Millisecond
	c := NewClient(rdb, cfg)
	ctx := context.Background()

	before := time.Now()
	_, err := shared.Call(ctx, c, shared.OpPair, "wire-token", shared.ConnectOptions{Immediate: true, Phone: "551199"})
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply (no Server runs)", err)
	}
	entries, err := rdb.XRange(ctx, k.stream(ShardOf("wire-token", 4)), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream = %v, %v; want one entry", entries, err)
	}
	v := entries[0].Values
	if v[fieldVersion] != "2" || v[fieldOp] != "session.pair" || v[fieldToken] != "wire-token" ||
		v[fieldRequest] != `{"immediate":true,"phone":"551199"}` || v[fieldID] == "" || len(v) != 6 {
		t.Errorf("entry = %v", v)
	}
	cmd, err := parseCommand(v)
	if err != nil {
		t.Fatalf("parseCommand: %v", err)
	}
	if cmd.Op != shared.OpPair || cmd.Token != "wire-token" || string(cmd.Req) != v[fieldRequest] ||
		cmd.Deadline.Before(before.Add(290*time.Millisecond)) || cmd.Deadline.After(time.Now().Add(cfg.ConnectTimeout)) {
		t.Errorf("command = %+v", cmd)
	}
	req, err := cmd.Op.DecodeRequest(cmd.Req)
	if err != nil || req != (shared.ConnectOptions{Immediate: true, Phone: "551199"}) {
		t.Errorf("request = %#v, %v", req, err)
	}

	for name, values := range map[string]map[string]any{
		"version 1":  {fieldVersion: "1", fieldID: "x", fieldOp: "connect", fieldToken: "t", "opts": "{}", fieldDeadline: "1"},
		"unknown op": {fieldVersion: "2", fieldID: "x", fieldOp: "session.nope", fieldToken: "t", fieldRequest: "{}", fieldDeadline: "1"},
		"no token":   {fieldVersion: "2", fieldID: "x", fieldOp: "session.connect", fieldRequest: "{}", fieldDeadline: "1"},
		"deadline":   {fieldVersion: "2", fieldID: "x", fieldOp: "session.connect", fieldToken: "t", fieldDeadline: "soon"},
	} {
		if _, err := parseCommand(values); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("%s: err = %v, want ErrMalformedCommand", name, err)
		}
	}

	data, _ := json.Marshal(newReply(fakeResult, shared.Wrap(errors.New("secret"), shared.ECONFLICT, "busy")))
	want := `{"result":{"status":{"connected":true,"loggedIn":true,"jid":"123@s.whatsapp.net","state":"connected",` +
		`"since":"2025-01-02T03:04:05.000006Z","hasQR":false},"linkingCode":"ABCD-EFGH"},"error":{"code":"conflict","message":"busy"}}`
	if string(data) != want {
		t.Errorf("reply = %s\nwant    %s", data, want)
	}
	if data, _ := json.Marshal(newReply(shared.Empty{}, nil)); string(data) != `{"result":{}}` {
		t.Errorf("empty reply = %s", data)
	}
	if data, _ := json.Marshal(newReply(nil, shared.ErrNoSession)); string(data) != `{"error":{"code":"conflict","message":"No session"}}` {
		t.Errorf("error reply = %s", data)
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
	ctx := context.Background()

	start := time.Now()
	_, err := shared.Call(ctx, c, shared.OpConnect, "tok-1", shared.ConnectOptions{})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoReply) || shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if elapsed < 900*time.Millisecond || elapsed > 1500*time.Millisecond {
		t.Errorf("answered after %v, want about 1 s", elapsed)
	}

	var connects, disconnects atomic.Int64
	fake := &connectortest.Fake{}
	connectortest.On(fake, shared.OpConnect, func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		connects.Add(1)
		return shared.ConnectResult{}, nil
	})
	connectortest.On(fake, shared.OpDisconnect, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		disconnects.Add(1)
		return shared.Empty{}, nil
	})
	runServer(t, NewServer(rdb, fake, patientServerConfig(prefix)))
	// Same token, same shard, read after the expired command.
	if _, err := shared.Call(ctx, c, shared.OpDisconnect, "tok-1", shared.Empty{}); err != nil {
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
	_, err := shared.Call(ctx, c, shared.OpLogout, "tok", shared.Empty{})
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("err = %v, want ErrNoReply", err)
	}
	if elapsed := time.Since(start); elapsed > 600*time.Millisecond {
		t.Errorf("answered after %v, want about 300 ms", elapsed)
	}
}

// TestClient_RedisDown: every op and every read answers EUNAVAILABLE quickly.
func TestClient_RedisDown(t *testing.T) {
	MustOpenRedis(t) // the same skip rules as the other tests
	rdb := mustClient(t, closedAddr(t), 0)
	c := NewClient(rdb, ClientConfig{})
	ctx := context.Background()
	checks := map[string]func() error{
		"Status":   func() error { _, err := c.Status(ctx, "t"); return err },
		"Statuses": func() error { _, err := c.Statuses(ctx, []string{"t", "u"}); return err },
		"QR":       func() error { _, err := c.QR(ctx, "t"); return err },
		testSendOp.Name(): func() error {
			_, err := shared.Call(ctx, c, testSendOp, "t", testSendReq{Text: "x"})
			return err
		},
	}
	for _, so := range sessionOps {
		checks[so.op.Name()] = func() error { _, err := so.call(ctx, c, "t", shared.ConnectOptions{}); return err }
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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

// TestClient_QR: Client.QR answers exactly what shared.QRCode answers for
// every published (status, code) combination, and ErrNoSession when no
// status is published (whatever the QR key holds).
func TestClient_QR(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	k := keys{prefix}
	c := NewClient(rdb, testClientConfig(prefix))
	ctx := context.Background()

	states := []string{
		shared.StateDisconnected, shared.StateConnecting, shared.StateQR, shared.StatePairing, shared.StateConnected,
		shared.StateLoggedOut, shared.StateReplaced, shared.StateBanned, shared.StateOutdated, shared.StateFailed, "",
	}
	type combo struct {
		token string
		st    shared.Status
		code  string
	}
	var combos []combo
	pipe := rdb.Pipeline()
	for _, state := range states {
		for _, loggedIn := range []bool{false, true} {
			for _, jid := range []string{"", "1@s.whatsapp.net"} {
				for _, code := range []string{"", "2@qrcode,abc"} {
					cb := combo{
						token: fmt.Sprintf("qr-%d", len(combos)),
						st:    shared.Status{State: state, LoggedIn: loggedIn, Connected: loggedIn, JID: jid, HasQR: code != ""},
						code:  code,
					}
					combos = append(combos, cb)
					data, _ := json.Marshal(cb.st)
					pipe.Set(ctx, k.status(cb.token), data, time.Minute)
					if code != "" {
						pipe.Set(ctx, k.qr(cb.token), code, time.Minute)
					}
				}
			}
		}
	}
	pipe.Set(ctx, k.qr("qr-no-status"), "2@orphan", time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[error]int{}
	for _, cb := range combos {
		wantCode, wantErr := shared.QRCode(cb.st, cb.code)
		code, err := c.QR(ctx, cb.token)
		if code != wantCode || err != wantErr {
			t.Errorf("QR(%+v, %q) = %q, %v; shared.QRCode answers %q, %v", cb.st, cb.code, code, err, wantCode, wantErr)
		}
		seen[wantErr]++
	}
	// Every answer of QRCode was exercised.
	for _, want := range []error{nil, shared.ErrAlreadyLoggedIn, shared.ErrNoSession, shared.ErrLinkedNoQR, shared.ErrNoQRYet} {
		if seen[want] == 0 {
			t.Errorf("no combination answers %v", want)
		}
	}
	for _, token := range []string{"qr-nobody", "qr-no-status"} {
		if code, err := c.QR(ctx, token); code != "" || err != shared.ErrNoSession {
			t.Errorf("QR(%s) = %q, %v; want ErrNoSession", token, code, err)
		}
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
		ServerConfig{DrainTimeout: -time.Second}.Validate(),
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
