package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
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
// one all-in-one process on the emulator, 16 at a time, then restarts it
// and measures: restore-s, the time from process start until every session
// is logged in again, and rss-KiB/session, the resident memory per idle
// session after the restore (RSS with the sessions minus RSS of the same
// process with the same rows and no session).
//
// With WAGO_BENCH_CPU_HOG=1, two CPU-burning processes per core run beside
// it from the first pairing to the end of the restore (at most 30 minutes
// per iteration), as on a machine busy with other builds. Either way it
// fails if any pairing fails or wago meets SQLITE_BUSY.
func BenchmarkSessions(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("WAGO_BENCH_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	hog := os.Getenv("WAGO_BENCH_CPU_HOG") == "1"
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

		stopHog := func() {}
		if hog {
			stopHog = startCPUHog(b, 2*runtime.NumCPU(), 30*time.Minute)
		}
		tokens := make([]string, n)
		for j := range tokens {
			tokens[j] = fmt.Sprintf("bench-token-%d", j)
		}
		start := time.Now()
		_, errs := pairAll(p, emu, tokens, 16)
		failOnPairings(b, errs, n)
		allLoggedIn(b, p, n, 5*time.Minute)
		b.Logf("linked %d sessions in %s", n, time.Since(start).Round(time.Millisecond))
		noStoreErrors(b, p)
		p.stop()

		b.ResetTimer()
		t0 := time.Now()
		p = startWago(b, env)
		allLoggedIn(b, p, n, 2*time.Minute)
		restore := time.Since(t0)
		b.StopTimer()
		stopHog()
		noStoreErrors(b, p)
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
