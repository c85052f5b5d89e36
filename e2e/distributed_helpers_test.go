package e2e

// Helpers of the distributed tests (distributed_test.go): the services of
// one test (a fresh DynamoDB table, a flushed Redis database), a `wago
// connector` process, a `wago api` process, a private redis-server that a
// test may kill and restart, and the session helpers of lifecycle_test.go
// written for any API front (the listening `wago api` or the Lambda
// bootstrap).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/redis/go-redis/v9"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector/waemu"
)

// distEnv is what one distributed test runs on: lambdaEnv (a fresh table in
// DynamoDB Local; redisURL names the test's own Redis database) and a client
// of that database.
type distEnv struct {
	lambdaEnv
	rdb *redis.Client
}

// newDistEnv returns the services of `make services` with a fresh table and
// Redis database db of WAGO_TEST_REDIS_URL's server, flushed: the binary's
// key prefix is fixed, so tests sharing a Redis are kept apart by database.
// It skips (fails in CI) as newLambdaEnv does.
func newDistEnv(tb testing.TB, db int) distEnv {
	tb.Helper()
	le := newLambdaEnv(tb)
	opts, err := redis.ParseURL(le.redisURL)
	if err != nil {
		tb.Fatalf("WAGO_TEST_REDIS_URL: %v", err)
	}
	le.redisURL = fmt.Sprintf("redis://%s/%d", opts.Addr, db)
	return distEnv{lambdaEnv: le, rdb: openTestRedis(tb, le.redisURL, true)}
}

// openTestRedis returns a client of url that the test closes; with flush it
// empties the database first.
func openTestRedis(tb testing.TB, url string, flush bool) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	if flush {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			tb.Fatalf("FLUSHDB %s: %v", url, err)
		}
	}
	return rdb
}

// distProcEnv is the environment both distributed roles share.
func (e distEnv) distProcEnv() []string {
	return []string{
		"WAGO_REDIS_URL=" + e.redisURL,
		"WAGO_DYNAMODB_ENDPOINT=" + e.dynamoEndpoint,
		"WAGO_DYNAMODB_TABLE=" + e.table,
		"WAGO_DYNAMODB_CREATE_TABLE=false",
		// DynamoDB Local keeps one database per key and region: the
		// table was created with these.
		"AWS_REGION=" + lambdaRegion,
		"AWS_DEFAULT_REGION=" + lambdaRegion,
		"AWS_ACCESS_KEY_ID=" + lambdaAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + lambdaAccessKey,
		"AWS_LAMBDA_RUNTIME_API=",
	}
}

// startDistAPI runs `wago api` (listening) on e.
func startDistAPI(tb testing.TB, e distEnv) *proc {
	tb.Helper()
	return startWago(tb, append(e.distProcEnv(), "WAGO_ADMIN_TOKEN="+lambdaAdminToken), "api")
}

// startConnector runs `wago connector` on e and emu with its key store in
// dataDir, and waits until it logs that it runs. It has no HTTP side: its
// proc has no base.
func startConnector(tb testing.TB, e distEnv, emu *waemu.Server, dataDir string) *proc {
	tb.Helper()
	return startConnectorVia(tb, e, emu, emu.Addr(), dataDir)
}

// startConnectorVia is startConnector dialling WhatsApp at addr (a proxy in
// front of emu); extra settings override the others.
func startConnectorVia(tb testing.TB, e distEnv, emu *waemu.Server, addr, dataDir string, extra ...string) *proc {
	tb.Helper()
	env := append(e.distProcEnv(),
		"WAGO_DATA_DIR="+dataDir,
		"WAGO_WHATSMEOW_DB=",
		"WAGO_WHATSAPP_ADDR="+addr,
		"WAGO_WHATSAPP_ROOT_KEY="+emu.RootPublicKeyHex(),
	)
	env = append(env, extra...)
	p := spawn(tb, "connector", env, "connector")
	p.waitReady("to log that it runs", func() bool { return strings.Contains(p.logBuf.String(), "connector running") })
	return p
}

// redisServer is a redis-server of the test's own, without persistence,
// that the test can kill and start again on the same port.
type redisServer struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

// startRedisServer starts a private redis-server on a free port. Without
// the binary it skips, or fails in CI.
func startRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redis-server is not installed: .ci/redis installs it")
		}
		tb.Skip("redis-server is not installed")
	}
	_, port, _ := strings.Cut(freeAddr(tb), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatal(err)
	}
	rs := &redisServer{tb: tb, bin: bin, port: n, dir: tb.TempDir()}
	tb.Cleanup(func() {
		rs.kill()
		if tb.Failed() && rs.log != nil {
			tb.Logf("redis-server log:\n%s", rs.log.String())
		}
	})
	rs.start()
	return rs
}

func (rs *redisServer) url(db int) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/%d", rs.port, db)
}

// start runs the server and waits until it answers PING.
func (rs *redisServer) start() {
	rs.tb.Helper()
	rs.cmd = exec.Command(rs.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(rs.port),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", rs.dir)
	rs.log = &syncBuffer{}
	rs.cmd.Stdout, rs.cmd.Stderr = rs.log, rs.log
	if err := rs.cmd.Start(); err != nil {
		rs.tb.Fatal(err)
	}
	done := make(chan struct{})
	rs.done = done
	go func(cmd *exec.Cmd) { cmd.Wait(); close(done) }(rs.cmd)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			rs.tb.Fatalf("redis-server exited at start:\n%s", rs.log.String())
		default:
		}
		if time.Now().After(deadline) {
			rs.tb.Fatalf("redis-server does not answer on port %d: %v\n%s", rs.port, err, rs.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL (its data is lost: no persistence).
func (rs *redisServer) kill() {
	if rs.cmd == nil {
		return
	}
	select {
	case <-rs.done:
	default:
		rs.cmd.Process.Kill()
		<-rs.done
	}
}

// apiFront is an API process the tests talk to: the listening `wago api`
// (*proc) or the Lambda bootstrap (*lambdaFn).
type apiFront interface {
	call(method, path, body string, headers ...string) answer
	ok(a answer, v any)
}

var (
	_ apiFront = (*proc)(nil)
	_ apiFront = (*lambdaFn)(nil)
)

func distInit(api apiFront, name, token string) {
	api.ok(api.call("POST", "/session/init", fmt.Sprintf(`{"Name":%q,"Token":%q,"Os":"linux"}`, name, token), "admintoken", lambdaAdminToken), nil)
}

func distStatus(api apiFront, token string) status {
	var st status
	api.ok(api.call("GET", "/session/status", "", "token", token), &st)
	return st
}

// distWaitStatus polls status until cond holds or within passes.
func distWaitStatus(t testing.TB, api apiFront, token string, within time.Duration, what string, cond func(status) bool) status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := distStatus(api, token)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: last status %+v", within, what, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// distSessions is /session/all (or /session/scanned) by token.
func distSessions(api apiFront, method, path string) map[string]map[string]any {
	var rows []map[string]any
	api.ok(api.call(method, path, "", "admintoken", lambdaAdminToken), &rows)
	out := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		out[fmt.Sprint(r["token"])] = r
	}
	return out
}

// distScanQR polls /session/qr until the connector has published a code,
// decodes the PNG back to the QR string and returns it.
func distScanQR(t testing.TB, api apiFront, token string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := api.call("GET", "/session/qr", "", "token", token)
		if a.Status == 200 {
			var qr struct{ QRCode string }
			api.ok(a, &qr)
			return decodeQRDataURL(t, qr.QRCode)
		}
		// 409 "no QR code available yet" until the QR key is written.
		if a.Status != 409 || time.Now().After(deadline) {
			t.Fatalf("GET /session/qr: %d %q", a.Status, a.Error)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// decodeQRDataURL decodes a PNG data URL back to whatsmeow's QR string.
func decodeQRDataURL(t testing.TB, dataURL string) string {
	t.Helper()
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(dataURL, prefix) {
		t.Fatalf("QRCode is not a PNG data URL: %.40q", dataURL)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, prefix))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		t.Fatalf("the QR image does not decode: %v", err)
	}
	code := res.GetText()
	if parts := strings.Split(code, ","); len(parts) != 4 {
		t.Fatalf("QR string %q does not have whatsmeow's four parts", code)
	}
	return code
}

// distLink connects token, has the emulator's phone scan its QR code, waits
// until it is logged in and returns the device JID.
func distLink(t testing.TB, api apiFront, emu *waemu.Server, token string) types.JID {
	t.Helper()
	var c map[string]any
	api.ok(api.call("POST", "/session/connect", `{"Subscribe":["All"],"Immediate":false}`, "token", token), &c)
	if c["state"] != "qr" {
		t.Fatalf("connect of an unlinked session answered %v", c)
	}
	code := distScanQR(t, api, token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid, err := emu.ScanQR(ctx, code)
	if err != nil {
		t.Fatalf("phone scan: %v", err)
	}
	st := distWaitStatus(t, api, token, 30*time.Second, "logged in after the scan", func(s status) bool { return s.Connected && s.LoggedIn })
	if st.Jid != jid.String() || st.State != "connected" {
		t.Fatalf("status after the scan %+v, emulator linked %q", st, jid)
	}
	return jid
}

// logins is how many times the emulator saw the device log in (0 when it
// does not have it).
func logins(emu *waemu.Server, jid types.JID) int {
	d, _ := device(emu, jid)
	return d.Logins
}

// httpCall is proc.call for other goroutines than the test's: it reports
// failures instead of failing the test, and how long the answer took.
func httpCall(base, method, path, body string, headers ...string) (answer, time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := apiClient.Do(req.WithContext(ctx))
	if err != nil {
		return answer{}, time.Since(start), fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return answer{}, took, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return answer{}, took, fmt.Errorf("%s %s: not an envelope: %q", method, path, raw)
	}
	a.Status = resp.StatusCode
	if a.Code != a.Status || a.Success != (a.Status == 200) {
		return answer{}, took, fmt.Errorf("%s %s: inconsistent envelope %s (status %d)", method, path, raw, a.Status)
	}
	return a, took, nil
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}
