package e2e

// The operator's side of the binary: readiness and metrics on both
// listeners, the log (JSON, one line per request, no token, secret or
// message body in it), the connector role's probe listener, and a clean
// stop under load.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// redisDBOps is the Redis database of the connector probe test.
const redisDBOps = 9

// randomHex returns n random bytes in hex: tokens and bodies that appear
// nowhere else, so that finding one in a log is a leak.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// leaks returns the secrets that appear in log.
func leaks(log string, secrets map[string]string) []string {
	var found []string
	for what, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			found = append(found, what)
		}
	}
	return found
}

// TestLeakCheckFindsAPlantedToken: the check TestLogsKeepSecrets relies on
// finds a token planted in a log, so that its passing means something.
func TestLeakCheckFindsAPlantedToken(t *testing.T) {
	token := "tok-" + randomHex(t, 8)
	log := `{"time":"2026-11-30T12:00:00Z","level":"INFO","msg":"request","route":"/session/status"}` + "\n"
	if got := leaks(log, map[string]string{"token": token}); len(got) != 0 {
		t.Fatalf("found %v in a clean log", got)
	}
	planted := log + `{"level":"WARN","msg":"oops","token":"` + token + `"}` + "\n"
	if got := leaks(planted, map[string]string{"token": token}); len(got) != 1 || got[0] != "token" {
		t.Fatalf("the planted token was not found: %v", got)
	}
}

// httpGet fetches url and returns the status and body.
func httpGet(t testing.TB, url string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// metricValue returns the value of the sample named series (with its
// labels, as exposed) in a Prometheus text body, or -1.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// TestLogsKeepSecrets runs a whole session's life on the real binary
// (init, connect, QR scan, webhook with a secret, send, receive, logout,
// delete) with debug logs, checks /ready and /metrics on both listeners
// along the way, then reads everything the process wrote: every line is a
// JSON object, every request has its line, and no token, admin token,
// webhook secret or message body is anywhere in it.
func TestLogsKeepSecrets(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	admin := "admin-" + randomHex(t, 16)
	globalSecret := "whsec_" + "R2xvYmFsU2VjcmV0MDEyMzQ1Njc4OWFiY2RlZg==" // base64 of 32 bytes
	metricsAddr := freeAddr(t)
	env := append(embeddedEnv(emu, t.TempDir()),
		"WAGO_ADMIN_TOKEN="+admin, "WAGO_WEBHOOK_SECRET="+globalSecret,
		"WAGO_METRICS_LISTEN="+metricsAddr, "WAGO_WHATSMEOW_LOG_LEVEL=debug")
	p := startWago(t, env)
	token := "tok-" + randomHex(t, 16)
	sent := "sent-body-" + randomHex(t, 8)
	received := "received-body-" + randomHex(t, 8)

	p.ok(p.call("POST", "/session/init", `{"Name":"leak","Token":"`+token+`","Os":"linux"}`, "admintoken", admin), nil)
	jid := link(t, p, emu, token)
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`/in","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), nil)
	var res sendAnswer
	p.ok(p.call("POST", "/send/text", fmt.Sprintf(`{"Phone":"+%s","Body":%q}`, emu.Contact().User, sent), "token", token), &res)
	sendFromContact(t, emu, jid, received)
	recv.waitText(20*time.Second, received)

	// Readiness: the view counts the linked session.
	var ready struct {
		Status   string            `json:"status"`
		Checks   map[string]string `json:"checks"`
		Sessions map[string]int    `json:"sessions"`
	}
	p.ok(p.call("GET", "/ready", ""), &ready)
	if ready.Status != "ready" || ready.Checks["store"] != "up" || ready.Sessions["connected"] != 1 || ready.Sessions["total"] != 1 {
		t.Fatalf("/ready: %+v", ready)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/ready"); code != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Fatalf("/ready on the metrics listener: %d %s", code, body)
	}

	// /metrics: the admin token on the API's listener, open on its own.
	if code, _ := httpGet(t, p.base+"/metrics"); code != 401 {
		t.Fatalf("/metrics without the admin token: %d", code)
	}
	code, withToken := httpGet(t, p.base+"/metrics", "admintoken", admin)
	if code != 200 || !strings.Contains(withToken, "wago_http_requests_total") {
		t.Fatalf("/metrics with the admin token: %d", code)
	}
	if code, _ := httpGet(t, "http://"+metricsAddr+"/session/status", "token", token); code != 404 {
		t.Fatalf("the metrics listener serves the API: %d", code)
	}
	waitFor(t, 10*time.Second, "the webhook delivery to be counted", func() bool {
		_, body := httpGet(t, "http://"+metricsAddr+"/metrics")
		return metricValue(body, "wago_webhook_deliveries_total") >= 1
	})
	_, body := httpGet(t, "http://"+metricsAddr+"/metrics")
	for series, min := range map[string]float64{
		`wago_http_requests_total{method="POST",route="/send/text",status="200"}`:    1,
		`wago_http_request_duration_seconds_count{method="POST",route="/send/text"}`: 1,
		`wago_sessions{state="connected"}`:                                           1,
		`wago_connects_total`:                                                        1,
		`wago_qr_codes_total`:                                                        1,
		`wago_pairings_total{result="success"}`:                                      1,
		`wago_logins_total`:                                                          1,
		`wago_messages_sent_total`:                                                   1,
		`wago_messages_received_total`:                                               1,
		`wago_webhook_queue_events{queue="new"}`:                                     0,
		`wago_webhook_queue_oldest_age_seconds`:                                      0,
		`go_goroutines`:                                                              1,
	} {
		if v := metricValue(body, series); v < min {
			t.Errorf("%s = %v, want at least %v", series, v, min)
		}
	}
	if strings.Contains(body, token) {
		t.Fatal("/metrics shows the token")
	}

	p.ok(p.call("POST", "/session/logout", "", "token", token), nil)
	p.ok(p.call("POST", "/session/delete", "", "admintoken", admin, "token", token), nil)
	_, body = httpGet(t, "http://"+metricsAddr+"/metrics")
	if v := metricValue(body, "wago_logouts_total"); v != 1 {
		t.Errorf("wago_logouts_total = %v, want 1", v)
	}
	p.stop()

	log := p.logBuf.String()
	if found := leaks(log, map[string]string{
		"session token": token, "admin token": admin,
		"webhook secret": hookSecret, "webhook key": strings.TrimPrefix(hookSecret, "whsec_"),
		"global webhook secret": globalSecret, "global webhook key": strings.TrimPrefix(globalSecret, "whsec_"),
		"sent body": sent, "received body": received,
	}); len(found) > 0 {
		t.Fatalf("the log holds the %s", strings.Join(found, ", "))
	}
	requests := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" {
			requests++
			for _, k := range []string{"method", "route", "status", "duration_ms", "bytes", "request_id"} {
				if _, ok := rec[k]; !ok {
					t.Fatalf("request line without %s: %s", k, line)
				}
			}
		}
	}
	if requests < 10 {
		t.Fatalf("only %d request lines", requests)
	}
}

// TestConnectorProbes: the connector role serves /health, /ready (with the
// shards it owns) and an open /metrics on WAGO_METRICS_LISTEN; on SIGTERM
// it deletes its shard leases at once, for the next connector.
func TestConnectorProbes(t *testing.T) {
	e := newDistEnv(t, redisDBOps)
	emu := startEmulator(t)
	addr := freeAddr(t)
	conn := startConnectorWithEnv(t, e, emu, t.TempDir(), "WAGO_METRICS_LISTEN="+addr, "WAGO_SHARDS=4")
	base := "http://" + addr
	if code, _ := httpGet(t, base+"/health"); code != 200 {
		t.Fatalf("/health: %d", code)
	}
	var ready struct {
		Code int `json:"code"`
		Data struct {
			Checks   map[string]string `json:"checks"`
			Sessions map[string]int    `json:"sessions"`
			Shards   []int             `json:"shards"`
		} `json:"data"`
	}
	waitFor(t, 20*time.Second, "the connector to own every shard", func() bool {
		_, body := httpGet(t, base+"/ready")
		json.Unmarshal([]byte(body), &ready)
		return len(ready.Data.Shards) == 4
	})
	if ready.Code != 200 || ready.Data.Checks["redis"] != "up" || ready.Data.Checks["store"] != "up" {
		t.Fatalf("/ready: %+v", ready)
	}
	_, body := httpGet(t, base+"/metrics")
	if v := metricValue(body, "wago_shard_leases_held"); v != 4 {
		t.Fatalf("wago_shard_leases_held = %v\n%s", v, body)
	}
	if v := metricValue(body, "wago_shard_leases_acquired_total"); v != 4 {
		t.Fatalf("wago_shard_leases_acquired_total = %v", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := e.rdb.Exists(ctx, "wago:lease:{0}", "wago:lease:{1}", "wago:lease:{2}", "wago:lease:{3}").Result(); err != nil || n != 4 {
		t.Fatalf("lease keys before the stop: %d, %v", n, err)
	}
	conn.stop()
	if n, err := e.rdb.Exists(ctx, "wago:lease:{0}", "wago:lease:{1}", "wago:lease:{2}", "wago:lease:{3}").Result(); err != nil || n != 0 {
		t.Fatalf("lease keys after the stop: %d, %v", n, err)
	}
}

// initRe extracts the token of an init request body.
var initRe = regexp.MustCompile(`"Token":"([^"]+)"`)

// TestShutdownUnderLoad: SIGTERM while clients hammer /session/status and
// /session/init, and while one init is in flight (half its body sent). That
// one is answered 200; the process exits cleanly within the shutdown
// timeout; every init answered 200 has its row after the restart, and
// every linked session connects again by itself, still linked (not logged
// out).
func TestShutdownUnderLoad(t *testing.T) {
	emu := startEmulator(t)
	dir := t.TempDir()
	env := append(embeddedEnv(emu, dir), "WAGO_SHUTDOWN_TIMEOUT=10s", "WAGO_LOG_LEVEL=info")
	p := startWago(t, env)
	linked := []string{"linked-a", "linked-b"}
	for _, token := range linked {
		initToken(p, token, token)
		link(t, p, emu, token)
	}

	client := &http.Client{Timeout: 20 * time.Second}
	do := func(method, path, body string, headers ...string) (int, error) {
		req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err // a cut answer is no answer
		}
		var env struct {
			Code int `json:"code"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Code != resp.StatusCode {
			return 0, fmt.Errorf("not an envelope: %q", raw)
		}
		return resp.StatusCode, nil
	}

	var (
		answered   sync.Map // init token -> true, for each 200
		nAnswered  atomic.Int64
		statusOK   atomic.Int64
		stopLoad   = make(chan struct{})
		wg         sync.WaitGroup
		badAnswers atomic.Int64
	)
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				if w%2 == 0 {
					token := fmt.Sprintf("load-%d-%d", w, i)
					body := fmt.Sprintf(`{"Name":%q,"Token":%q,"Os":"linux"}`, token, token)
					code, err := do("POST", "/session/init", body, "admintoken", adminToken)
					if err == nil && code == 200 {
						answered.Store(initRe.FindStringSubmatch(body)[1], true)
						nAnswered.Add(1)
					} else if err == nil && code != 503 {
						badAnswers.Add(1)
					}
				} else {
					code, err := do("GET", "/session/status", "", "token", linked[i%len(linked)])
					if err == nil && code == 200 {
						statusOK.Add(1)
					} else if err == nil && code != 503 {
						badAnswers.Add(1)
					}
				}
			}
		})
	}
	waitFor(t, 20*time.Second, "load to run", func() bool { return nAnswered.Load() >= 50 && statusOK.Load() >= 50 })

	// A request in flight at SIGTERM: its headers and half its body are
	// sent before, the rest after the process started stopping.
	inflight, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	body := `{"Name":"in-flight","Token":"in-flight-token","Os":"linux"}`
	fmt.Fprintf(inflight, "POST /session/init HTTP/1.1\r\nHost: wago\r\nadmintoken: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		adminToken, len(body), body[:20])
	time.Sleep(50 * time.Millisecond) // let the server read the headers

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "wago to start stopping", func() bool { return strings.Contains(p.logBuf.String(), `"msg":"shutting down"`) })
	io.WriteString(inflight, body[20:])
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the request in flight at SIGTERM got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the request in flight at SIGTERM answered %d", resp.StatusCode)
	}
	answered.Store("in-flight-token", true)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("wago did not exit within 15 s of SIGTERM")
	}
	took := time.Since(start)
	close(stopLoad)
	wg.Wait()
	if p.err != nil {
		t.Fatalf("wago exited with %v after SIGTERM", p.err)
	}
	if took > 10*time.Second {
		t.Fatalf("the stop took %s, over WAGO_SHUTDOWN_TIMEOUT", took)
	}
	if strings.Contains(p.logBuf.String(), "shutdown deadline passed") {
		t.Fatal("the stop hit its deadline")
	}
	if n := badAnswers.Load(); n > 0 {
		t.Fatalf("%d answers were neither 200 nor 503", n)
	}
	t.Logf("before SIGTERM: %d inits and %d status answered 200; stop took %s", nAnswered.Load(), statusOK.Load(), took.Round(time.Millisecond))

	p = startWago(t, env)
	var all []struct {
		Token string `json:"token"`
	}
	p.ok(p.call("GET", "/session/all", "", "admintoken", adminToken), &all)
	have := map[string]bool{}
	for _, s := range all {
		have[s.Token] = true
	}
	missing := 0
	answered.Range(func(k, _ any) bool {
		if !have[k.(string)] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d inits answered 200 have no row after the restart", missing, nAnswered.Load())
	}
	for _, token := range linked {
		p.waitStatus(token, 30*time.Second, token+" restored", func(st status) bool { return st.Connected && st.LoggedIn && st.Jid != "" })
	}
}
