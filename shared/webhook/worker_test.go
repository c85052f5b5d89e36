package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server that answers with answer(n) to its n-th
// request (from 1) and records every request.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	count  atomic.Int64
	answer func(n int64, w http.ResponseWriter)
}

func newReceiver(t *testing.T, answer func(n int64, w http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		answer := r.answer
		r.mu.Unlock()
		n := r.count.Add(1)
		if answer != nil {
			answer(n, w)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type fixture struct {
	outbox *sqlite.Outbox
	rows   *sqlite.Store
	log    *webhook.MemoryLog // how the worker ended each event
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, url, format string, schedule []time.Duration) *fixture {
	t.Helper()
	dir := t.TempDir()
	outbox, err := sqlite.OpenOutbox(t.Context(), filepath.Join(dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sqlite.Open(t.Context(), filepath.Join(dir, "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	row := &shared.Session{Name: "n", Token: "tok", Os: "linux", Webhook: url, WebhookSecret: secret, WebhookFormat: format}
	if err := rows.Create(t.Context(), row); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{outbox: outbox, rows: rows, log: webhook.NewMemoryLog(0), cancel: cancel, done: make(chan struct{})}
	w := webhook.New(webhook.Config{Outbox: outbox, Rows: rows, Schedule: schedule, Timeout: 2 * time.Second, Deliveries: f.log})
	go func() { defer close(f.done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-f.done; outbox.Close(); rows.Close() })
	return f
}

func (f *fixture) append(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := &shared.Event{ID: fmt.Sprintf("evt_%d", i), Token: "tok", Class: shared.EventMessage, Type: "Message",
			Data: json.RawMessage(fmt.Sprintf(`{"Info":{"ID":"m%d"},"Message":{"conversation":"hi %d"}}`, i, i)), Time: time.Now().UTC()}
		if err := f.outbox.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != int64(i+1) {
			t.Fatalf("Seq = %d, want %d", ev.Seq, i+1)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFormDeliveryIsSignedAndInOrder(t *testing.T) {
	r := newReceiver(t, nil)
	f := start(t, r.URL, "", nil)
	ids := f.append(t, 20)
	waitFor(t, "20 deliveries", func() bool { return len(r.requests()) == 20 })
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range r.requests() {
		if err := wh.Verify(got.body, got.header); err != nil {
			t.Fatalf("delivery %d: signature does not verify: %v", i, err)
		}
		if id := got.header.Get("webhook-id"); id != ids[i] {
			t.Errorf("delivery %d: webhook-id %q, want %q (order)", i, id, ids[i])
		}
		if seq := got.header.Get("Wago-Sequence"); seq != fmt.Sprint(i+1) {
			t.Errorf("delivery %d: Wago-Sequence %q", i, seq)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		form, err := url.ParseQuery(string(got.body))
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			Type  string
			Event struct{ Message struct{ Conversation string } }
		}
		if err := json.Unmarshal([]byte(form.Get("jsonData")), &data); err != nil {
			t.Fatal(err)
		}
		if form.Get("token") != "tok" || data.Type != "Message" || data.Event.Message.Conversation != fmt.Sprintf("hi %d", i) {
			t.Errorf("delivery %d: token %q, jsonData %s", i, form.Get("token"), form.Get("jsonData"))
		}
	}
	waitFor(t, "the outbox to empty", func() bool {
		ds, _ := f.outbox.Next(t.Context(), 10, time.Millisecond)
		return len(ds) == 0
	})
}

func TestRetriesKeepTheIDAndEndInDeadLetters(t *testing.T) {
	// The first event fails twice then arrives; the receiver then fails
	// for good, so the second event runs out of retries.
	r := newReceiver(t, func(n int64, w http.ResponseWriter) {
		switch {
		case n == 3:
			w.WriteHeader(200)
		case n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		default:
			w.WriteHeader(500)
		}
	})
	f := start(t, r.URL, shared.WebhookFormatJSON, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond})
	f.append(t, 1)
	waitFor(t, "3 attempts", func() bool { return len(r.requests()) >= 3 })
	reqs := r.requests()
	for _, q := range reqs[:3] {
		if q.header.Get("webhook-id") != "evt_0" {
			t.Fatalf("webhook-id %q on a retry", q.header.Get("webhook-id"))
		}
	}
	var first, second int64
	fmt.Sscan(reqs[0].header.Get("webhook-timestamp"), &first)
	fmt.Sscan(reqs[1].header.Get("webhook-timestamp"), &second)
	if second-first < 1 {
		t.Errorf("Retry-After: 1 not honoured: attempts at %d and %d", first, second)
	}
	var p map[string]any
	if err := json.Unmarshal(reqs[0].body, &p); err != nil || p["token"] != "tok" || p["id"] != "evt_0" || p["type"] != "Message" {
		t.Errorf("JSON payload %s", reqs[0].body)
	}

	ev := &shared.Event{ID: "evt_dead", Token: "tok", Class: shared.EventMessage, Type: "Message", Data: json.RawMessage(`{}`), Time: time.Now().UTC()}
	if err := f.outbox.Append(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	var dead []shared.Delivery
	waitFor(t, "a dead letter", func() bool {
		dead, _ = f.outbox.Failed(t.Context(), "", 10)
		return len(dead) == 1
	})
	if dead[0].ID != "evt_dead" || dead[0].Attempts != 3 || dead[0].LastError != "receiver answered 500" {
		t.Fatalf("dead letter %+v", dead[0])
	}
	// The delivery log: one record per event, as each ended last.
	f.waitRecords(t, "evt_dead failed, evt_0 delivered", func(rs []shared.DeliveryRecord) bool {
		return len(rs) == 2 && rs[0].ID == "evt_dead" && rs[0].Status == shared.DeliveryFailed && rs[0].Attempts == 3 &&
			rs[0].LastError == "receiver answered 500" && rs[1].ID == "evt_0" && rs[1].Status == shared.DeliveryDelivered && rs[1].Attempts == 3
	})
	before := len(r.requests())
	r.mu.Lock()
	r.answer = func(int64, http.ResponseWriter) {} // 200 from now on
	r.mu.Unlock()
	n, err := f.outbox.Replay(t.Context(), "tok", nil)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	waitFor(t, "the replayed event", func() bool { return len(r.requests()) == before+1 })
	if got := r.requests()[before].header.Get("webhook-id"); got != "evt_dead" {
		t.Errorf("replayed webhook-id %q", got)
	}
	if dead, _ = f.outbox.Failed(t.Context(), "", 10); len(dead) != 0 {
		t.Errorf("dead letters after the replay: %d", len(dead))
	}
	f.waitRecords(t, "the replayed evt_dead delivered", func(rs []shared.DeliveryRecord) bool {
		return len(rs) == 2 && rs[0].ID == "evt_dead" && rs[0].Status == shared.DeliveryDelivered && rs[0].Attempts == 1
	})
}

// waitRecords waits until the delivery log's records of tok satisfy cond.
func (f *fixture) waitRecords(t *testing.T, what string, cond func([]shared.DeliveryRecord) bool) {
	t.Helper()
	var rs []shared.DeliveryRecord
	deadline := time.Now().Add(10 * time.Second)
	for rs, _ = f.log.Recent(t.Context(), "tok"); !cond(rs); rs, _ = f.log.Recent(t.Context(), "tok") {
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: want %s, got %+v", what, rs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGoneStopsTheURL(t *testing.T) {
	r := newReceiver(t, func(_ int64, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	f := start(t, r.URL, "", nil)
	f.append(t, 3)
	waitFor(t, "the webhook to be removed", func() bool {
		row, _ := f.rows.Get(t.Context(), "tok")
		return row.Webhook == ""
	})
	time.Sleep(100 * time.Millisecond)
	if n := len(r.requests()); n != 1 {
		t.Errorf("%d requests after a 410, want 1", n)
	}
}

func TestAppendIgnoresAKnownID(t *testing.T) {
	f := start(t, "http://127.0.0.1:1/", "", nil)
	f.cancel()
	<-f.done
	ev := &shared.Event{ID: "evt_same", Token: "tok", Type: "Message", Data: json.RawMessage(`{}`), Time: time.Now()}
	for range 2 {
		if err := f.outbox.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := f.outbox.Next(t.Context(), 10, time.Millisecond)
	if err != nil || len(ds) != 1 || ds[0].Seq != 1 {
		t.Fatalf("Next = %+v, %v", ds, err)
	}
	next := &shared.Event{ID: "evt_next", Token: "tok", Type: "Message", Data: json.RawMessage(`{}`), Time: time.Now()}
	if err := f.outbox.Append(t.Context(), next); err != nil || next.Seq != 2 {
		t.Fatalf("the next event got Seq %d (%v), want 2: a duplicate must not use a number", next.Seq, err)
	}
}

func TestRotationSignsWithEverySecret(t *testing.T) {
	const next = "whsec_bmV4dC1zZWNyZXQtb2YtdGhlLXJvdGF0aW9uLTEyMzQ="
	if err := shared.CheckWebhookSecret(next + " " + secret); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"Message"}`)
	ts := time.Now()
	sig, err := webhook.SignAll(next+" "+secret, "evt_1", ts.Unix(), body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	h.Set("webhook-signature", sig)
	for _, s := range []string{secret, next} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("a receiver with one of the secrets cannot verify: %v", err)
		}
	}
	if err := shared.CheckWebhookSecret(next + " " + secret + " " + next + " " + secret); err == nil {
		t.Error("four secrets accepted")
	}
}

func TestDenyPrivateRefusesLoopbackAfterDNS(t *testing.T) {
	r := newReceiver(t, nil)
	dir := t.TempDir()
	outbox, err := sqlite.OpenOutbox(t.Context(), filepath.Join(dir, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sqlite.Open(t.Context(), filepath.Join(dir, "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	// localhost resolves to loopback: the check runs on the dialled address.
	url := strings.Replace(r.URL, "127.0.0.1", "localhost", 1)
	if err := rows.Create(t.Context(), &shared.Session{Name: "n", Token: "tok", Os: "x", Webhook: url}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := webhook.New(webhook.Config{Outbox: outbox, Rows: rows, Schedule: []time.Duration{}, DenyPrivate: true})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done; outbox.Close(); rows.Close() }()
	if err := outbox.Append(t.Context(), &shared.Event{ID: "evt_p", Token: "tok", Type: "Message", Data: json.RawMessage(`{}`), Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var dead []shared.Delivery
	waitFor(t, "a dead letter", func() bool {
		dead, _ = outbox.Failed(t.Context(), "tok", 1)
		return len(dead) == 1
	})
	if dead[0].LastError != "receiver address is private (refused by configuration)" {
		t.Errorf("LastError %q", dead[0].LastError)
	}
	if n := len(r.requests()); n != 0 {
		t.Errorf("the private receiver got %d requests", n)
	}
}
