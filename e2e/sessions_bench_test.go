package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size.
func rssKiB(tb testing.TB, pid int) int {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// loggedIn counts the logged-in rows of /session/all.
func (p *proc) loggedIn() int {
	p.t.Helper()
	var all []struct{ LoggedIn bool }
	p.ok(p.call("GET", "/session/all", "", "admintoken", adminToken), &all)
	n := 0
	for _, r := range all {
		if r.LoggedIn {
			n++
		}
	}
	return n
}

// BenchmarkSessions links WAGO_BENCH_SESSIONS (default 1,000) sessions in
// one all-in-one process on the emulator, then restarts it and measures:
// restore-s, the time from process start until every session is logged in
// again, and rss-KiB/session, the resident memory per idle session after
// the restore (RSS with the sessions minus RSS of the same process with
// the same rows and no session).
func BenchmarkSessions(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("WAGO_BENCH_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	for i := 0; i < b.N; i++ {
		emu := startEmulator(b)
		dir := b.TempDir()
		env := append(embeddedEnv(emu, dir), "WAGO_LOG_LEVEL=warn")
		p := startWago(b, env)
		for j := 0; j < n; j++ {
			initToken(p, fmt.Sprintf("bench-%d", j), fmt.Sprintf("bench-token-%d", j))
		}
		p.stop()

		// Baseline: a fresh process with the same rows and no session.
		p = startWago(b, env)
		time.Sleep(2 * time.Second)
		baseRSS := rssKiB(b, p.cmd.Process.Pid)

		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j := next.Add(1) - 1
					if j >= int64(n) {
						return
					}
					token := fmt.Sprintf("bench-token-%d", j)
					p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), nil)
					code := p.scanQR(token)
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					_, err := emu.ScanQR(ctx, code)
					cancel()
					if err != nil {
						b.Errorf("scan %d: %v", j, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		waitFor(b, 5*time.Minute, "every session logged in", func() bool { return p.loggedIn() == n })
		b.Logf("linked %d sessions in %s", n, time.Since(start).Round(time.Millisecond))
		p.stop()

		b.ResetTimer()
		t0 := time.Now()
		p = startWago(b, env)
		waitFor(b, 2*time.Minute, "every session restored", func() bool { return p.loggedIn() == n })
		restore := time.Since(t0)
		b.StopTimer()
		time.Sleep(5 * time.Second) // idle
		rss := rssKiB(b, p.cmd.Process.Pid)
		perSession := float64(rss-baseRSS) / float64(n)
		b.ReportMetric(restore.Seconds(), "restore-s")
		b.ReportMetric(perSession, "rss-KiB/session")
		b.Logf("%d sessions: restored in %s; RSS %d KiB with them, %d KiB without: %.0f KiB per idle session",
			n, restore.Round(time.Millisecond), rss, baseRSS, perSession)
		p.stop()
	}
}
