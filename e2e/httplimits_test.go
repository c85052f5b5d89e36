package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitsEnv is the environment of a wago that the HTTP limit tests attack:
// its own data directory, and WhatsApp pointed at a dead loopback address
// so that nothing leaves the machine.
func limitsEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	return append([]string{
		"WAGO_DATA_DIR=" + t.TempDir(),
		"WAGO_ADMIN_TOKEN=" + adminToken,
		"WAGO_WHATSAPP_ADDR=" + freeAddr(t),
	}, extra...)
}

// dialAll opens n connections to addr (a loopback address), each within
// 2 s, and fails the test if that takes more than 20 s in all.
func dialAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("refusing to attack %s: loopback only", addr)
	}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for len(conns) < n {
		if time.Now().After(deadline) {
			t.Fatalf("opened only %d of %d connections in 20 s", len(conns), n)
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// closedWithin reads c until the server closes it (EOF or reset) or
// deadline passes; it returns when the close came, or false if it did not.
func closedWithin(c net.Conn, deadline time.Time) (time.Time, bool) {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Time{}, false
	}
	return time.Now(), true // io.Copy's nil is EOF; anything else is a reset
}

// highWaterKiB reads a process's peak resident set size (VmHWM), which
// catches a peak between two samples of rssKiB.
func highWaterKiB(tb testing.TB, pid int) int {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					return n
				}
			}
		}
	}
	tb.Fatal("no VmHWM")
	return 0
}

// TestHTTPSlowBodiesAreCut: 300 connections send headers and a
// Content-Length body that never finishes, without any token. With a
// read timeout of 2 s, the server closes every one of them within the
// timeout plus 3 s, and answers /health meanwhile and afterwards.
func TestHTTPSlowBodiesAreCut(t *testing.T) {
	const (
		conns       = 300
		readTimeout = 2 * time.Second
		margin      = 3 * time.Second
	)
	p := startWago(t, limitsEnv(t,
		"WAGO_HTTP_READ_HEADER_TIMEOUT=1s",
		"WAGO_HTTP_READ_TIMEOUT="+readTimeout.String(),
	))
	addr := strings.TrimPrefix(p.base, "http://")
	cs := dialAll(t, addr, conns)

	// Each sends its headers and 14 of the 1024 bytes it announces.
	req := "POST /session/connect HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n" + `{"Subscribe":`
	sent := make([]time.Time, conns)
	for i, c := range cs {
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatalf("connection %d: writing the request: %v", i+1, err)
		}
		sent[i] = time.Now()
	}
	attackStart, attackEnd := sent[0], sent[conns-1]

	// The server still serves others while the bodies hang.
	p.ok(p.call("GET", "/health", ""), nil)
	if time.Since(attackStart) > readTimeout {
		t.Logf("the /health check came after the read timeout; it proves less")
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		held    []int
		slowest time.Duration
	)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, ok := closedWithin(c, sent[i].Add(readTimeout+margin))
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				held = append(held, i+1)
				return
			}
			slowest = max(slowest, at.Sub(sent[i]))
		}()
	}
	wg.Wait()
	if len(held) > 0 {
		t.Fatalf("%d of %d connections with an unfinished body were still open %s after their request (read timeout %s), such as %v",
			len(held), conns, readTimeout+margin, readTimeout, held[:min(len(held), 5)])
	}
	t.Logf("%d unfinished bodies sent in %s; all closed by the server, the slowest %s after its request (read timeout %s)",
		conns, attackEnd.Sub(attackStart).Round(time.Millisecond), slowest.Round(time.Millisecond), readTimeout)
	p.ok(p.call("GET", "/health", ""), nil)
}

// TestHTTPHugeHeadersAreRefused: 200 connections each send 1 MiB of header
// lines that never end. With the default limit of 64 KiB, the server
// refuses each (431, or a reset once it stops reading) and closes it, and
// its peak RSS stays within 64 MiB of its RSS before the attack.
//
// The bound: per connection the server buffers at most the header limit
// plus the 4 KiB net/http reads beyond it, 68 KiB; 200 connections at once
// hold 13.3 MiB of header bytes, say twice that with the parsed copies and
// the garbage collector's headroom doubling it again: about 53 MiB at worst
// (measured: about 17 MiB, the garbage collector letting the heap reach
// 32 MiB before it runs while the live heap is small: gcfloor.go). With
// WAGO_HTTP_MAX_HEADER_BYTES=1048576, Go's own default, this test fails:
// the RSS rose from 28 to 250 MB and 48 connections were still open after
// 10 s.
func TestHTTPHugeHeadersAreRefused(t *testing.T) {
	const (
		conns       = 200
		headerBytes = 1 << 20
		maxGrowth   = 64 << 10 // KiB
		within      = 10 * time.Second
	)
	p := startWago(t, limitsEnv(t))
	pid := p.cmd.Process.Pid
	addr := strings.TrimPrefix(p.base, "http://")
	p.ok(p.call("GET", "/health", ""), nil)
	before, hwmBefore := rssKiB(t, pid), highWaterKiB(t, pid)

	// 1 KiB header lines, 1024 of them, and never the blank line.
	var line bytes.Buffer
	line.WriteString("X-Padding: ")
	line.WriteString(strings.Repeat("a", 1024-len("X-Padding: ")-2))
	line.WriteString("\r\n")
	head := []byte("GET /health HTTP/1.1\r\nHost: " + addr + "\r\n")

	cs := dialAll(t, addr, conns)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		refused  int // saw a 431
		reset    int // closed or reset before a status line could be read
		open     []int
		statuses = map[string]int{}
	)
	start := time.Now()
	deadline := start.Add(within)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(deadline)
			// Writing stops at the first error: the server stops reading
			// once the limit is passed, and closes.
			if _, err := c.Write(head); err == nil {
				for sent := 0; sent < headerBytes; sent += line.Len() {
					if _, err := c.Write(line.Bytes()); err != nil {
						break
					}
				}
			}
			c.SetReadDeadline(deadline)
			status, _ := bufio.NewReader(c).ReadString('\n')
			_, closed := closedWithin(c, deadline)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !closed:
				open = append(open, i+1)
			case strings.HasPrefix(status, "HTTP/1.1 431 "):
				refused++
			case status == "":
				reset++
			default:
				statuses[strings.TrimSpace(status)]++
			}
		}()
	}

	// Sample the RSS while the attack runs.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := before
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-time.After(10 * time.Millisecond):
		}
		peak = max(peak, rssKiB(t, pid))
	}
	took := time.Since(start)
	hwm := highWaterKiB(t, pid)
	after := rssKiB(t, pid)

	t.Logf("%d unfinished 1 MiB headers: %d answered 431, %d reset, in %s; RSS before %d KiB (high-water %d), peak sampled %d KiB, high-water after %d KiB, RSS after %d KiB",
		conns, refused, reset, took.Round(time.Millisecond), before, hwmBefore, peak, hwm, after)
	if len(open) > 0 {
		t.Fatalf("%d of %d connections with an unfinished 1 MiB header were still open after %s, such as %v",
			len(open), conns, within, open[:min(len(open), 5)])
	}
	if len(statuses) > 0 {
		t.Fatalf("answers other than 431: %v", statuses)
	}
	if refused == 0 {
		t.Errorf("no connection saw a 431")
	}
	// The high-water mark catches a peak between samples, when the attack
	// set a new one (it also holds the start-up's peak).
	if hwm > hwmBefore {
		peak = max(peak, hwm)
	}
	if growth := peak - before; growth > maxGrowth {
		t.Fatalf("the RSS peaked %d KiB above its %d KiB before the attack, over the %d KiB bound", growth, before, maxGrowth)
	}
	p.ok(p.call("GET", "/health", ""), nil)
}
