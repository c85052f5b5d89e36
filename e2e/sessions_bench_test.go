package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
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
// WAGO_BENCH_RESTORES times (default 3) and reports the medians of:
//   - restore-s, the time from process start until every session is
//     logged in again;
//   - restore-cpu-ms/session, the CPU time wago spent from its start until
//     then, per session: what a restore costs whatever else the machine
//     runs (here the emulator shares its 2 cores);
//   - rss-KiB/session, the resident memory per idle session 5 s after the
//     restore (RSS with the sessions minus RSS of the same process with
//     the same rows and no session).
//
// With WAGO_BENCH_CPU_HOG=1, two CPU-burning processes per core run beside
// it from the first pairing to the end of the restores (at most 30 minutes
// per iteration), as on a machine busy with other builds. With
// WAGO_BENCH_PROFILE=dir, the first restore is profiled: wago by perf
// (perf.data, when perf is installed) and the emulator, which runs in the
// benchmark's process, by pprof (emulator.pprof). Either way it fails if
// any pairing fails or wago meets SQLITE_BUSY.
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

		// The restores: the process restarted restores times over the
		// same devices (linking them is what takes minutes).
		var restores, cpuPer, rssPer []float64
		for r := range restoresPerLink() {
			t0 := time.Now()
			p = startWago(b, env)
			stopProfile := func() {}
			if r == 0 {
				stopProfile = profileRestore(b, p)
			}
			started := time.Since(t0)
			first, half := restoreProgress(b, p, n, t0, 2*time.Minute)
			restore := time.Since(t0)
			cpu := p.cpuTime(b)
			stopProfile()
			noStoreErrors(b, p)
			time.Sleep(5 * time.Second) // idle
			rss := rssKiB(b, p.cmd.Process.Pid)
			perSession := float64(rss-baseRSS) / float64(n)
			b.Logf("restore %d: answering /health after %s, the first session logged in after %s, half after %s, all %d after %s, with %s of wago's CPU; RSS %d KiB with them, %d KiB without: %.1f KiB per idle session",
				r+1, started.Round(time.Millisecond), first.Round(time.Millisecond), half.Round(time.Millisecond),
				n, restore.Round(time.Millisecond), cpu, rss, baseRSS, perSession)
			restores = append(restores, restore.Seconds())
			cpuPer = append(cpuPer, float64(cpu.Microseconds())/1000/float64(n))
			rssPer = append(rssPer, perSession)
			p.stop()
		}
		stopHog()
		b.ReportMetric(median(restores), "restore-s")
		b.ReportMetric(median(cpuPer), "restore-cpu-ms/session")
		b.ReportMetric(median(rssPer), "rss-KiB/session")
	}
}

// restoresPerLink is WAGO_BENCH_RESTORES (default 3), how many times
// BenchmarkSessions restarts wago over the sessions it linked.
func restoresPerLink() int {
	if v, err := strconv.Atoi(os.Getenv("WAGO_BENCH_RESTORES")); err == nil && v > 0 {
		return v
	}
	return 3
}

// median returns the median of xs (not empty); it sorts xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// profileRestore starts the profiles WAGO_BENCH_PROFILE asks for (see
// BenchmarkSessions) and returns what stops them.
func profileRestore(tb testing.TB, p *proc) (stop func()) {
	dir := os.Getenv("WAGO_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "emulator.pprof"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	perf := exec.Command("perf", "record", "-g", "-F", "999", "-o", filepath.Join(dir, "perf.data"),
		"-p", strconv.Itoa(p.cmd.Process.Pid))
	if err := perf.Start(); err != nil {
		tb.Logf("no perf profile of wago: %v", err)
		perf = nil
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if perf != nil {
			perf.Process.Signal(os.Interrupt)
			perf.Wait()
		}
	}
}

// restoreProgress polls p every 20 ms (finer than allLoggedIn, whose step
// would count in the restore's time) until n sessions are logged in, and
// returns when the first one and half of them were, since t0. It counts
// them on /ready, a few bytes, rather than on /session/all, whose 1,000
// rows to encode and decode 50 times a second would take a share of the
// CPU that the restore runs on; /session/all confirms the end.
func restoreProgress(tb testing.TB, p *proc, n int, t0 time.Time, within time.Duration) (first, half time.Duration) {
	tb.Helper()
	for {
		var ready struct{ Sessions struct{ Connected int } }
		p.ok(p.call("GET", "/ready", ""), &ready)
		in := ready.Sessions.Connected
		if in > 0 && first == 0 {
			first = time.Since(t0)
		}
		if 2*in >= n && half == 0 {
			half = time.Since(t0)
		}
		if in == n && p.loggedIn() == n {
			return first, half
		}
		if time.Since(t0) > within {
			tb.Fatalf("timed out waiting %s for every session to be logged in: %d of %d", within, in, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpuTime is the CPU time (user and system) the process used so far.
func (p *proc) cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after "(comm)": utime and stime are the 12th and
	// 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	var total time.Duration
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		total += time.Duration(n) * 10 * time.Millisecond
	}
	return total
}
