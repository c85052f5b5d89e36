package e2e

// Benchmarks of the send path (make bench): the latency of /send/text at a
// fixed open-loop rate and the highest closed-loop rate, all-in-one and
// distributed, and the resident memory of sending 50 MiB of images. The
// emulator (and its contact, a whatsmeow client that decrypts every
// message) runs in the benchmark's process: on a small machine it shares
// the cores with the binary under test.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
)

// sendTarget is a linked session that the benchmarks send through.
type sendTarget struct {
	base  string // the HTTP API
	token string
	// tokens, when set, are several linked sessions the sends are spread
	// over, round robin (token is the first).
	tokens []string
	to     string // the emulator's contact
	emu    *waemu.Server
	pid    int     // the process that holds the socket
	procs  []*proc // every wago process, for their CPU time and logs
}

// embeddedSendTarget links one session in an all-in-one wago on a new
// emulator.
func embeddedSendTarget(b *testing.B) sendTarget {
	b.Helper()
	emu := startEmulator(b)
	p := startWago(b, append(embeddedEnv(emu, b.TempDir()), "WAGO_LOG_LEVEL=warn"))
	const token = "bench-send-token"
	initToken(p, "bench-send", token)
	link(b, p, emu, token)
	return sendTarget{base: p.base, token: token, to: "+" + emu.Contact().User, emu: emu, pid: p.cmd.Process.Pid, procs: []*proc{p}}
}

// distributedSendTarget links one session through `wago api` and `wago
// connector` on Redis and DynamoDB Local and a new emulator.
func distributedSendTarget(b *testing.B) sendTarget {
	b.Helper()
	return distributedSendTargetN(b, 1)
}

// distributedSendTarget4 links four sessions, which the sends are spread
// over: the same rate in four per-token lanes.
func distributedSendTarget4(b *testing.B) sendTarget {
	b.Helper()
	return distributedSendTargetN(b, 4)
}

// distributedSendTargetN links n sessions through `wago api` and `wago
// connector`.
func distributedSendTargetN(b *testing.B, n int) sendTarget {
	b.Helper()
	e := newDistEnv(b, redisDBSendBench)
	emu := startEmulator(b)
	// startConnector, at info level (it waits for an info line) rather
	// than debug.
	conn := spawn(b, "connector", append(e.distProcEnv(),
		"WAGO_DATA_DIR="+b.TempDir(),
		"WAGO_WHATSMEOW_DB=",
		"WAGO_WHATSAPP_ADDR="+emu.Addr(),
		"WAGO_WHATSAPP_ROOT_KEY="+emu.RootPublicKeyHex(),
		"WAGO_LOG_LEVEL=info",
	), "connector")
	conn.waitReady("to log that it runs", func() bool { return strings.Contains(conn.logBuf.String(), "connector running") })
	api := startWago(b, append(e.distProcEnv(), "WAGO_ADMIN_TOKEN="+lambdaAdminToken, "WAGO_LOG_LEVEL=warn"), "api")
	tg := sendTarget{base: api.base, to: "+" + emu.Contact().User, emu: emu, pid: conn.cmd.Process.Pid, procs: []*proc{api, conn}}
	for i := range n {
		token := fmt.Sprintf("bench-send-token-%d", i)
		distInit(api, fmt.Sprintf("bench-send-%d", i), token)
		distLink(b, api, emu, token)
		tg.tokens = append(tg.tokens, token)
	}
	tg.token = tg.tokens[0]
	return tg
}

// tokenFor is the session the i-th send goes through.
func (tg sendTarget) tokenFor(i int) string {
	if len(tg.tokens) == 0 {
		return tg.token
	}
	return tg.tokens[i%len(tg.tokens)]
}

// sendStats is the outcome of a run of sends.
type sendStats struct {
	sent    int             // answered 200
	errors  map[string]int  // other answers and failures, by status and error
	latency []time.Duration // of the 200s, sorted
	elapsed time.Duration   // from the first send to the last answer
}

func (s *sendStats) add(a answer, err error, lat time.Duration, mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	switch {
	case err != nil:
		s.errors[err.Error()]++
	case a.Status != 200:
		s.errors[fmt.Sprintf("%d %s", a.Status, a.Error)]++
	default:
		s.sent++
		s.latency = append(s.latency, lat)
	}
}

// quantile is the q-quantile of the sorted latencies, in ms.
func (s *sendStats) quantile(q float64) float64 {
	if len(s.latency) == 0 {
		return 0
	}
	i := int(q*float64(len(s.latency))+0.5) - 1
	i = min(max(i, 0), len(s.latency)-1)
	return float64(s.latency[i]) / float64(time.Millisecond)
}

// report reports the latencies and the rate as the benchmark's metrics.
func (s *sendStats) report(b *testing.B) {
	b.ReportMetric(s.quantile(0.50), "p50-ms")
	b.ReportMetric(s.quantile(0.99), "p99-ms")
	b.ReportMetric(s.quantile(1), "max-ms")
	b.ReportMetric(float64(s.sent)/s.elapsed.Seconds(), "msgs/s")
	n := 0
	for _, c := range s.errors {
		n += c
	}
	b.ReportMetric(float64(n), "errors")
}

func (s *sendStats) String() string {
	return fmt.Sprintf("%d sent in %.2f s (%.0f msgs/s): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; errors %v",
		s.sent, s.elapsed.Seconds(), float64(s.sent)/s.elapsed.Seconds(),
		s.quantile(0.5), s.quantile(0.9), s.quantile(0.99), s.quantile(1), s.errors)
}

// textBody is the body of the i-th benchmark text, with the message ID
// (Id) id.
func (tg sendTarget) textBody(id string, i int) string {
	return fmt.Sprintf(`{"Phone":%q,"Body":"benchmark message %d","Id":%q}`, tg.to, i, id)
}

// openLoop sends rate texts a second for d, each in its own goroutine at
// its scheduled time whether or not the earlier ones were answered, and
// measures each latency from its scheduled time (so that a stall of the
// server or of the load generator is not hidden: no coordinated
// omission). ids receives the message IDs it used.
func openLoop(tg sendTarget, client *http.Client, prefix string, rate int, d time.Duration, ids *[]string) *sendStats {
	st := &sendStats{errors: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var last atomic.Int64
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		id := fmt.Sprintf("%s%06d", prefix, i)
		*ids = append(*ids, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _, err := postSend(client, tg.base, "/send/text", tg.tokenFor(i), tg.textBody(id, i), 30*time.Second)
			now := time.Now()
			st.add(a, err, now.Sub(at), &mu)
			for {
				l := last.Load()
				if now.UnixNano() <= l || last.CompareAndSwap(l, now.UnixNano()) {
					break
				}
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Unix(0, last.Load()).Sub(start)
	slices.Sort(st.latency)
	return st
}

// closedLoop runs senders that each send one text after the other for d.
func closedLoop(tg sendTarget, client *http.Client, prefix string, senders int, d time.Duration, ids *[]string) *sendStats {
	st := &sendStats{errors: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	end := start.Add(d)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				i := int(next.Add(1) - 1)
				id := fmt.Sprintf("%s%06d", prefix, i)
				t0 := time.Now()
				a, _, err := postSend(client, tg.base, "/send/text", tg.tokenFor(i), tg.textBody(id, i), 30*time.Second)
				st.add(a, err, time.Since(t0), &mu)
				mu.Lock()
				*ids = append(*ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	slices.Sort(st.latency)
	return st
}

// checkReceived waits until the contact received a text for every ID in
// ids that was answered 200 (at least sent of them).
func checkReceived(b *testing.B, emu *waemu.Server, ids []string, sent int) {
	b.Helper()
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var got int
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := map[string]bool{}
		for _, m := range emu.ContactInbox() {
			if m.Kind == waemu.InboxText && want[m.ID] {
				seen[m.ID] = true
			}
		}
		if got = len(seen); got >= sent {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the contact received %d of the %d texts answered 200", got, sent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cpuTime is the CPU time (user and system) the processes used so far.
func (tg sendTarget) cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var total time.Duration
	for _, p := range tg.procs {
		total += p.cpuTime(tb)
	}
	return total
}

// warnings returns the processes' log lines of level WARN or ERROR (at
// most the last 20), to explain errors.
func (tg sendTarget) warnings() string {
	var lines []string
	for _, p := range tg.procs {
		for _, l := range strings.Split(p.logBuf.String(), "\n") {
			if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
				lines = append(lines, p.name+": "+l)
			}
		}
	}
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// loadavg is the first field of /proc/loadavg: how busy the machine is.
func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// benchDuration is how long each measured phase runs: 10 s, or
// WAGO_BENCH_SEND_DURATION.
func benchDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("WAGO_BENCH_SEND_DURATION")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

// BenchmarkSendText measures /send/text, which answers once WhatsApp (the
// emulator) acknowledged the message. embedded and distributed: the
// latency at an open-loop 200 messages/s for 10 s (targets: p99 at most
// 20 ms embedded, 30 ms distributed); embedded-max and distributed-max: the
// rate 16 closed-loop senders sustain for 10 s. Every text answered 200 is
// checked to have reached the contact.
func BenchmarkSendText(b *testing.B) {
	const rate = 200
	d := benchDuration()
	targets := []struct {
		name string
		new  func(*testing.B) sendTarget
		open bool
	}{
		{"embedded", embeddedSendTarget, true},
		{"distributed", distributedSendTarget, true},
		{"distributed-4-sessions", distributedSendTarget4, true},
		{"embedded-max", embeddedSendTarget, false},
		{"distributed-max", distributedSendTarget, false},
	}
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			tg := target.new(b)
			client := sendClient()
			// Warm up: connections, the Signal session with the contact,
			// the binary's caches.
			var warm []string
			w := closedLoop(tg, client, "WARMUP", 4, 2*time.Second, &warm)
			if w.sent == 0 {
				b.Fatalf("warm-up: %s", w)
			}
			b.ResetTimer()
			for iter := range b.N {
				var ids []string
				var st *sendStats
				prefix := fmt.Sprintf("BENCH%02d", iter)
				load0, cpu0 := loadavg(), tg.cpuTime(b)
				if target.open {
					st = openLoop(tg, client, prefix, rate, d, &ids)
				} else {
					st = closedLoop(tg, client, prefix, 16, d, &ids)
				}
				b.StopTimer()
				cpu := tg.cpuTime(b) - cpu0
				st.report(b)
				if st.sent > 0 {
					b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(st.sent), "cpu-ms/msg")
				}
				b.Logf("%s: %s; wago CPU %.2f s (%.0f%% of a core); load average %s before, %s after",
					target.name, st, cpu.Seconds(), 100*cpu.Seconds()/st.elapsed.Seconds(), load0, loadavg())
				if len(st.errors) > 0 {
					b.Logf("warnings of the processes:\n%s", tg.warnings())
				}
				checkReceived(b, tg.emu, ids, st.sent)
				b.StartTimer()
			}
		})
	}
}

// procStatusKiB reads a field in kB of /proc/PID/status (VmHWM, VmRSS).
func procStatusKiB(tb testing.TB, pid int, field string) int {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkSendMediaRSS sends 50 MiB of images (50 PNGs of 1 MiB, one
// after the other, as data URLs) through an all-in-one wago and reports
// how its resident memory grew: rss-growth-MiB (VmRSS after minus before;
// target under 64 MiB) and peak-growth-MiB (VmHWM after minus VmRSS
// before). The contact must receive all 50, byte for byte.
func BenchmarkSendMediaRSS(b *testing.B) {
	const (
		images = 50
		size   = 1 << 20
	)
	for range b.N {
		b.StopTimer()
		tg := embeddedSendTarget(b)
		client := sendClient()
		body := func(id string, data []byte) string {
			return fmt.Sprintf(`{"Phone":%q,"Image":"data:image/png;base64,%s","Caption":"benchmark image","Id":%q}`,
				tg.to, base64.StdEncoding.EncodeToString(data), id)
		}
		// Warm up with one small image: the media connection, the Signal
		// session.
		a, _, err := postSend(client, tg.base, "/send/image", tg.token, body("RSSWARMUP", randomBytes("\x89PNG\r\n\x1a\n", 10<<10)), 60*time.Second)
		if err != nil || a.Status != 200 {
			b.Fatalf("warm-up image: %d %q %v", a.Status, a.Error, err)
		}
		time.Sleep(time.Second)
		before, hwmBefore := rssKiB(b, tg.pid), procStatusKiB(b, tg.pid, "VmHWM")

		sums := map[string]string{}
		var took []time.Duration
		b.StartTimer()
		start := time.Now()
		for i := range images {
			data := randomBytes("\x89PNG\r\n\x1a\n", size-8)
			id := fmt.Sprintf("RSSIMAGE%03d", i)
			sums[id] = sha256Hex(data)
			a, d, err := postSend(client, tg.base, "/send/image", tg.token, body(id, data), 60*time.Second)
			if err != nil || a.Status != 200 {
				b.Fatalf("image %d: %d %q %v", i, a.Status, a.Error, err)
			}
			var res sendAnswer
			if err := json.Unmarshal(a.Data, &res); err != nil || res.ID != id {
				b.Fatalf("image %d answered %s", i, a.Data)
			}
			took = append(took, d)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		after, hwm := rssKiB(b, tg.pid), procStatusKiB(b, tg.pid, "VmHWM")

		// The contact downloads and decrypts each image: all 50, byte
		// for byte.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ok, bad := 0, []string{}
			for _, m := range tg.emu.ContactInbox() {
				want, mine := sums[m.ID]
				if !mine || m.Kind != waemu.InboxImage || m.Media == nil {
					continue
				}
				if m.Media.SHA256 == want && m.Media.Length == size {
					ok++
				} else {
					bad = append(bad, fmt.Sprintf("%s: %+v", m.ID, *m.Media))
				}
			}
			if len(bad) > 0 {
				b.Fatalf("images received with other bytes: %v", bad)
			}
			if ok == images {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the contact received %d of the %d images", ok, images)
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		idle := rssKiB(b, tg.pid)

		slices.Sort(took)
		mib := func(kib int) float64 { return float64(kib) / 1024 }
		b.ReportMetric(mib(after-before), "rss-growth-MiB")
		b.ReportMetric(mib(hwm-before), "peak-growth-MiB")
		b.ReportMetric(float64(images)*float64(size)/(1<<20)/elapsed.Seconds(), "MiB/s")
		b.Logf("%d images of %d KiB in %.1f s (per image: median %s, max %s); VmRSS %.1f MiB before, %.1f MiB after (%.1f MiB after 5 s idle); "+
			"VmHWM %.1f MiB before, %.1f MiB after; load average %s",
			images, size>>10, elapsed.Seconds(), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
			mib(before), mib(after), mib(idle), mib(hwmBefore), mib(hwm), loadavg())
	}
}
