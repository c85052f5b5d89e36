package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
	"github.com/wago-gw/wago/functions/openapitest"
)

// sendClient is an HTTP client for many concurrent sends: it keeps enough
// idle connections that a burst does not open (and close) one per request.
func sendClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	return &http.Client{Transport: tr}
}

// postSend POSTs body to base+path with the session token and decodes the
// envelope, within timeout; it reports failures instead of failing the
// test, and how long the answer took.
func postSend(client *http.Client, base, path, token, body string, timeout time.Duration) (answer, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, strings.NewReader(body))
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("token", token)
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, time.Since(start), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return answer{}, took, err
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return answer{}, took, fmt.Errorf("not an envelope: %q", raw)
	}
	a.Status = resp.StatusCode
	if a.Code != a.Status || a.Success != (a.Status == 200) {
		return answer{}, took, fmt.Errorf("inconsistent envelope %s (status %d)", raw, a.Status)
	}
	return a, took, nil
}

// inboxTexts returns, for each ID in want, the indexes in the contact's
// inbox of the texts it received with that ID.
func inboxTexts(emu *waemu.Server, want map[string]string) map[string][]int {
	out := map[string][]int{}
	for i, m := range emu.ContactInbox() {
		if m.Kind == waemu.InboxText {
			if _, ok := want[m.ID]; ok {
				out[m.ID] = append(out[m.ID], i)
			}
		}
	}
	return out
}

// TestSendConnectorKilled kills the connector (SIGKILL) in the middle of a
// burst of sends with client Ids, starts a new connector on the same key
// store and checks what the contact received: every send answered 200 was
// received exactly once, none twice, in each sender's order; every other
// send, retried with its Id until it is answered 200, is received at least
// once. A send the dead connector had already handed to WhatsApp but not
// recorded as sent is sent again by its retry (same message ID): the test
// logs how often that happens. Takes about 25 s: the dead connector's
// leases expire after redisbus.DefaultLeaseTTL.
func TestSendConnectorKilled(t *testing.T) {
	const (
		n             = 200
		workers       = 8
		killAfter     = n / 2 // answers before the kill
		clientTimeout = 20 * time.Second
	)
	testStart := time.Now()
	e := newDistEnv(t, redisDBSendConnectorKilled)
	emu := startEmulator(t)
	dir := t.TempDir()
	api := startDistAPI(t, e)
	conn := startConnector(t, e, emu, dir)
	const token = "send-crash-token"
	distInit(api, "send-crash", token)
	jid := distLink(t, api, emu, token)
	to := "+" + emu.Contact().User

	ids := make([]string, n)
	texts := make(map[string]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("WAGOCRASH%04d", i)
		texts[ids[i]] = fmt.Sprintf("burst message %d", i)
	}
	body := func(id string) string {
		return fmt.Sprintf(`{"Phone":%q,"Body":%q,"Id":%q}`, to, texts[id], id)
	}

	// The burst: workers take the next Id and send it; every answer is
	// recorded, in each worker's order.
	type result struct {
		id     string
		worker int
		a      answer
		took   time.Duration
		err    error
		at     time.Time // when the answer came
	}
	client := sendClient()
	client.Transport = &openapitest.Transport{V: apiCheck, Base: client.Transport, T: t}
	var (
		next, answered atomic.Int64
		mu             sync.Mutex
		results        []result
		perWorker      = make([][]result, workers)
		wg             sync.WaitGroup
		killNow        = make(chan struct{})
		killOnce       sync.Once
	)
	burstStart := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				a, took, err := postSend(client, api.base, "/send/text", token, body(ids[i]), clientTimeout)
				r := result{id: ids[i], worker: w, a: a, took: took, err: err, at: time.Now()}
				mu.Lock()
				results = append(results, r)
				perWorker[w] = append(perWorker[w], r)
				mu.Unlock()
				if answered.Add(1) == killAfter {
					killOnce.Do(func() { close(killNow) })
				}
			}
		}()
	}
	burstDone := make(chan struct{})
	go func() { wg.Wait(); close(burstDone) }()

	select {
	case <-killNow:
	case <-burstDone:
		t.Fatal("the burst ended before the kill")
	case <-time.After(30 * time.Second):
		t.Fatal("the first half of the burst took more than 30 s")
	}
	// A random phase, so that the kill lands at any point of the send the
	// connector is running (before, during or after WhatsApp's ack).
	time.Sleep(time.Duration(rand.Int64N(int64(40 * time.Millisecond))))
	conn.kill() // SIGKILL: (*os.Process).Kill
	killed := time.Now()
	done := answered.Load()
	t.Logf("connector killed after %d answers (%.2f s into the burst), %d sends in flight", done, killed.Sub(burstStart).Seconds(), next.Load()-done)
	conn2 := startConnector(t, e, emu, dir)

	select {
	case <-burstDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the burst did not finish within 60 s of the kill")
	}
	burstTook := time.Since(burstStart)

	// Every answer is an envelope within the client's timeout: 200, or an
	// error a client retries: 503 while no connector answers (the sends in
	// flight at the kill and those queued until the dead connector's
	// leases expire), and 409 ("No session", "not logged in") from the new
	// connector, which serves the shard's commands while it is still
	// restoring the session.
	statuses := map[string]int{}
	firstAt, lastAt := map[int]time.Duration{}, map[int]time.Duration{}
	var ok200, failed []string
	var slowest time.Duration
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("send %s: no answer after %s: %v", r.id, r.took.Round(time.Millisecond), r.err)
		}
		statuses[fmt.Sprintf("%d %s", r.a.Status, r.a.Error)]++
		slowest = max(slowest, r.took)
		if r.at.After(killed) {
			since := r.at.Sub(killed)
			if f, ok := firstAt[r.a.Status]; !ok || since < f {
				firstAt[r.a.Status] = since
			}
			lastAt[r.a.Status] = max(lastAt[r.a.Status], since)
		}
		switch r.a.Status {
		case 200:
			var res sendAnswer
			if err := json.Unmarshal(r.a.Data, &res); err != nil || res.ID != r.id || res.Details != "Sent" {
				t.Fatalf("send %s answered %s", r.id, r.a.Data)
			}
			ok200 = append(ok200, r.id)
		case 503, 409:
			failed = append(failed, r.id)
		default:
			t.Errorf("send %s answered %d %q", r.id, r.a.Status, r.a.Error)
		}
	}
	if len(results) != n {
		t.Fatalf("%d answers, want %d", len(results), n)
	}
	if len(failed) == 0 {
		t.Fatalf("no send failed although the connector was killed in the middle of the burst: %v", statuses)
	}
	t.Logf("burst of %d sends by %d workers in %.1f s: %d answered 200, %d not (%v); slowest answer %.1f s",
		n, workers, burstTook.Seconds(), len(ok200), len(failed), statuses, slowest.Seconds())
	for _, code := range []int{200, 409, 503} {
		if f, ok := firstAt[code]; ok {
			t.Logf("answers %d after the kill: from %.2f s to %.2f s after it", code, f.Seconds(), lastAt[code].Seconds())
		}
	}

	// Every 200 was received, exactly once.
	waitFor(t, 15*time.Second, "the contact to receive every send answered 200", func() bool {
		got := inboxTexts(emu, texts)
		for _, id := range ok200 {
			if len(got[id]) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // a late duplicate would show by now
	got := inboxTexts(emu, texts)
	inbox := emu.ContactInbox()
	for _, id := range ok200 {
		if len(got[id]) != 1 {
			t.Errorf("%s (answered 200) received %d times", id, len(got[id]))
		}
	}
	for id, at := range got {
		if len(at) > 1 {
			t.Errorf("%s received %d times before any retry", id, len(at))
		}
		for _, i := range at {
			if m := inbox[i]; m.Text != texts[id] || m.From.User != jid.User {
				t.Errorf("%s received as %+v", id, m)
			}
		}
	}
	// The ones that failed but were received anyway: the dead connector
	// had handed them to WhatsApp before it died.
	var failedReceived []string
	for _, id := range failed {
		if len(got[id]) > 0 {
			failedReceived = append(failedReceived, id)
		}
	}

	// Per-token order: each worker's 200s arrived in the order it sent them.
	for w, rs := range perWorker {
		last, lastID := -1, ""
		for _, r := range rs {
			if r.err != nil || r.a.Status != 200 || len(got[r.id]) == 0 {
				continue
			}
			if at := got[r.id][0]; at < last {
				t.Errorf("worker %d: %s (sent after %s) was received before it", w, r.id, lastID)
			} else {
				last, lastID = at, r.id
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Of the failed sends already received, the ones the dead connector
	// recorded in the sent log (redisbus.SentLog's key) before it died:
	// their retries answer the first result without sending again.
	var recorded []string
	for _, id := range failedReceived {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if k, err := e.rdb.Exists(ctx, "wago:sent:"+token+":"+id).Result(); err == nil && k == 1 {
			recorded = append(recorded, id)
		}
		cancel()
	}

	// Retry every failed send with its Id until it is answered 200.
	distWaitStatus(t, api, token, 40*time.Second, "the session restored by the new connector",
		func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jid.String() })
	t.Logf("the session reads connected again %.2f s after the kill", time.Since(killed).Seconds())
	retryDeadline := time.Now().Add(30 * time.Second)
	attempts := 0
	for _, id := range failed {
		for {
			attempts++
			a, took, err := postSend(client, api.base, "/send/text", token, body(id), clientTimeout)
			if err == nil && a.Status == 200 {
				var res sendAnswer
				if err := json.Unmarshal(a.Data, &res); err != nil || res.ID != id {
					t.Fatalf("retry of %s answered %s", id, a.Data)
				}
				break
			}
			if time.Now().After(retryDeadline) {
				t.Fatalf("retry of %s: %d %q (%v) after %s; retries did not succeed within 30 s", id, a.Status, a.Error, err, took)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(t, 15*time.Second, "the contact to receive every retried send", func() bool {
		got := inboxTexts(emu, texts)
		for _, id := range failed {
			if len(got[id]) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	got = inboxTexts(emu, texts)
	var twice []string
	for _, id := range ok200 {
		if len(got[id]) != 1 {
			t.Errorf("%s (answered 200 in the burst) received %d times after the retries", id, len(got[id]))
		}
	}
	for _, id := range failed {
		switch c := len(got[id]); {
		case c == 2:
			twice = append(twice, id)
		case c > 2:
			t.Errorf("%s (retried) received %d times", id, c)
		}
	}
	sort.Strings(twice)
	for _, id := range twice {
		if !slices.Contains(failedReceived, id) {
			t.Errorf("%s was received twice, but not before its retry", id)
		}
	}
	if n := len(emu.ContactInbox()); n == 0 {
		t.Fatal("empty inbox")
	}
	select {
	case <-conn2.done:
		t.Fatalf("the new connector exited: %v", conn2.err)
	default:
	}

	t.Logf("after the kill: %d of the %d failed sends had already been received (delivered by the dead connector, unanswered) %v, "+
		"%d of them recorded in the sent log; %d retries (%d attempts) were all answered 200; "+
		"received twice (the same message ID sent again by its retry): %d %v; test took %.1f s",
		len(failedReceived), len(failed), failedReceived, len(recorded), len(failed), attempts, len(twice), twice,
		time.Since(testStart).Seconds())
}
