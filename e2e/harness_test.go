// Package e2e holds the end-to-end tests: the real wago binary, driven over
// HTTP, against the WhatsApp-protocol emulator, Redis and DynamoDB Local.
// It is the only package that may import everything.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/functions/openapitest"
)

// wagoBin is the binary under test, built once by TestMain.
var wagoBin string

// apiClient is the HTTP client of the tests' API calls: it checks every
// request and answer against the OpenAPI document (TestMain loads it once).
// A failed check fails the test named in the request's context
// (openapitest.WithT); one of a request without it fails the run.
var (
	apiClient  = &http.Client{}
	apiOrphans = &openapitest.Orphans{}
	apiCheck   *openapitest.Validator
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wago-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wagoBin = filepath.Join(dir, "wago")
	if bin := os.Getenv("WAGO_TEST_BINARY"); bin != "" {
		// Another build under test, e.g. an older commit's, to show that a
		// new regression test fails on it.
		wagoBin = bin
	} else {
		build := exec.Command("go", "build", "-o", wagoBin, "..")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building wago:", err)
			os.Exit(1)
		}
	}
	if apiCheck, err = openapitest.New(functions.OpenAPI()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	apiClient.Transport = &openapitest.Transport{V: apiCheck, Orphans: apiOrphans}
	code := m.Run()
	os.RemoveAll(dir)
	if failed := apiOrphans.List(); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d exchanges disagree with the OpenAPI document:\n%s\n", len(failed), strings.Join(failed, "\n"))
		code = 1
	}
	os.Exit(code)
}

// freeAddr returns a free loopback address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one running wago process.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	base   string
	logBuf *syncBuffer
	done   chan struct{}
	err    error
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWago runs the binary with args and env (KEY=VALUE) plus a fresh
// WAGO_LISTEN, and waits until it answers /health.
func startWago(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := spawn(t, "wago", append([]string{"WAGO_LISTEN=" + addr}, env...), args...)
	p.base = "http://" + addr
	p.waitReady("to answer /health", func() bool {
		resp, err := apiClient.Get(p.base + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return p
}

// spawn runs the binary with args and env (after the test's environment and
// debug logs), collects its output, kills it at the end of the test and
// shows its log if the test failed. name names it in messages.
func spawn(t testing.TB, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(wagoBin, args...)
	cmd.Env = append(append(os.Environ(), "WAGO_LOG_LEVEL=debug"), env...)
	p := &proc{t: t, name: name, cmd: cmd, logBuf: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logBuf, p.logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, cmd.Process.Pid, p.logBuf.String())
		}
	})
	return p
}

// waitReady polls ready until it holds; it fails the test if the process
// exits first or 20 s pass.
func (p *proc) waitReady(what string, ready func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ready() {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited at start: %v\n%s", p.name, p.err, p.logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not start in time (waiting %s):\n%s", p.name, what, p.logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns how long the process took to exit.
func (p *proc) stop() time.Duration {
	p.t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("wago did not exit within 15 s of SIGTERM")
	}
	return time.Since(start)
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// answer is a decoded WaGo envelope.
type answer struct {
	Status  int
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Error   string          `json:"error"`
	Success bool            `json:"success"`
}

// call sends a request; headers alternate name and value.
func (p *proc) call(method, path, body string, headers ...string) answer {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(openapitest.WithT(context.Background(), p.t), 60*time.Second)
	defer cancel()
	client := apiClient
	if _, bench := p.t.(*testing.B); bench {
		client = http.DefaultClient // benchmarks measure wago, not the check
	}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		p.t.Fatalf("%s %s: not an envelope: %q", method, path, raw)
	}
	a.Status = resp.StatusCode
	if a.Code != a.Status || a.Success != (a.Status == 200) {
		p.t.Fatalf("%s %s: inconsistent envelope %s (status %d)", method, path, raw, a.Status)
	}
	return a
}

// ok asserts a 200 and decodes its data into v (if non-nil).
func (p *proc) ok(a answer, v any) {
	p.t.Helper()
	if a.Status != 200 {
		p.t.Fatalf("got %d %q, want 200", a.Status, a.Error)
	}
	if v != nil {
		if err := json.Unmarshal(a.Data, v); err != nil {
			p.t.Fatalf("data %s: %v", a.Data, err)
		}
	}
}

// status is /session/status's data.
type status struct {
	Connected bool
	LoggedIn  bool
	Jid       string
	Events    string
	State     string `json:"state"`
	HasQR     bool   `json:"hasQR"`
	LastError string `json:"lastError"`
}

func (p *proc) status(token string) status {
	p.t.Helper()
	var st status
	p.ok(p.call("GET", "/session/status", "", "token", token), &st)
	return st
}

// waitStatus polls status until cond holds or the deadline passes.
func (p *proc) waitStatus(token string, within time.Duration, what string, cond func(status) bool) status {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := p.status(token)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: last status %+v", what, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
