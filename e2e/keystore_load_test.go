package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/wago-gw/wago/connector/waemu"
)

// startCPUHog starts procs CPU-burning processes (shell busy loops, like a
// build running beside wago) and returns a stop function. The processes
// end when stop is called, when the test ends, or after max, whichever
// comes first.
func startCPUHog(tb testing.TB, procs int, max time.Duration) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), max)
	var cmds []*exec.Cmd
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			for _, cmd := range cmds {
				cmd.Wait()
			}
		})
	}
	for range procs {
		cmd := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			stop()
			tb.Fatalf("failed to start a CPU hog: %v", err)
		}
		cmds = append(cmds, cmd)
	}
	tb.Cleanup(stop)
	return stop
}

// pairSession connects token through the API, waits (up to a minute: the
// machine may be saturated; polling slowly, not to add to the load) until
// it shows a QR code, and has the emulator's phone scan it, with a fresh
// code if the one fetched expired in between. It returns the linked device
// JID, or why the pairing failed.
func pairSession(p *proc, emu *waemu.Server, token string) (types.JID, error) {
	p.t.Helper()
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), nil)
	for attempt := 1; ; attempt++ {
		for deadline := time.Now().Add(time.Minute); !p.status(token).HasQR; time.Sleep(250 * time.Millisecond) {
			if time.Now().After(deadline) {
				return types.EmptyJID, fmt.Errorf("%s showed no QR code within a minute", token)
			}
		}
		code := p.scanQR(token)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		jid, err := emu.ScanQR(ctx, code)
		cancel()
		if errors.Is(err, waemu.ErrUnknownQR) && attempt < 3 {
			continue
		}
		if err != nil {
			return jid, fmt.Errorf("failed to pair %s: %w", token, err)
		}
		return jid, nil
	}
}

// pairAll pairs the tokens with workers API clients at once and returns
// the device JIDs by token and the pairings that failed.
func pairAll(p *proc, emu *waemu.Server, tokens []string, workers int) (map[string]types.JID, []error) {
	var (
		next atomic.Int64
		mu   sync.Mutex
		jids = map[string]types.JID{}
		errs []error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tokens) {
					return
				}
				jid, err := pairSession(p, emu, tokens[i])
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					jids[tokens[i]] = jid
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return jids, errs
}

// storeErrors returns the lines of a wago log that report SQLite's
// "database is locked".
func storeErrors(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "SQLITE_BUSY") || strings.Contains(line, "database is locked") {
			out = append(out, line)
		}
	}
	return out
}

// openKeyStoreReader opens the key store at path for reading beside the
// wago process that owns it (WAL lets a reader in while wago writes).
func openKeyStoreReader(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		tb.Fatalf("failed to open the key store: %v", err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

// noStoreErrors fails the test if wago's log reports SQLITE_BUSY.
func noStoreErrors(tb testing.TB, p *proc) {
	tb.Helper()
	if lines := storeErrors(p.logBuf.String()); len(lines) > 0 {
		tb.Fatalf("wago met SQLITE_BUSY %d times, first: %s", len(lines), lines[0])
	}
}

// uploadedPreKeys counts the uploaded pre-keys of every device in the key
// store, by device JID.
func uploadedPreKeys(ctx context.Context, db *sql.DB) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT jid, COUNT(*) FROM whatsmeow_pre_keys WHERE uploaded GROUP BY jid`)
	if err != nil {
		return nil, fmt.Errorf("failed to count pre-keys: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var jid string
		var n int
		if err := rows.Scan(&jid, &n); err != nil {
			return nil, fmt.Errorf("failed to read a pre-key count: %w", err)
		}
		out[jid] = n
	}
	return out, rows.Err()
}

// initialPreKeys is how many pre-keys whatsmeow uploads at the first login.
const initialPreKeys = 812

// waitLoaded polls cond every 250 ms until it reports done, and fails the
// test as soon as wago's log reports SQLITE_BUSY, or when within passes
// (saying how far cond got).
func waitLoaded(tb testing.TB, p *proc, within time.Duration, what string, cond func() (done bool, progress string)) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		done, progress := cond()
		if done {
			return
		}
		if lines := storeErrors(p.logBuf.String()); len(lines) > 0 {
			tb.Fatalf("waiting for %s (%s): wago met SQLITE_BUSY %d times, first: %s", what, progress, len(lines), lines[0])
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting %s for %s: %s", within, what, progress)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// allLoggedIn waits until n sessions are logged in.
func allLoggedIn(tb testing.TB, p *proc, n int, within time.Duration) {
	tb.Helper()
	waitLoaded(tb, p, within, "every session logged in", func() (bool, string) {
		in := p.loggedIn()
		return in == n, fmt.Sprintf("%d of %d logged in", in, n)
	})
}

// TestLinkManySessionsUnderCPULoad links 100 sessions through the real
// binary's HTTP API, 16 at a time, while CPU hogs (two per core) keep the
// machine saturated: every pairing must succeed, every session be logged
// in with the JID the emulator linked, every device have uploaded its 812
// pre-keys, and wago must never have met SQLITE_BUSY.
func TestLinkManySessionsUnderCPULoad(t *testing.T) {
	const n = 100
	emu := startEmulator(t)
	dir := t.TempDir()
	p := startWago(t, append(embeddedEnv(emu, dir), "WAGO_LOG_LEVEL=warn"))
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("load-token-%d", i)
		initToken(p, fmt.Sprintf("load-%d", i), tokens[i])
	}

	stop := startCPUHog(t, runtime.NumCPU(), 5*time.Minute)
	start := time.Now()
	jids, errs := pairAll(p, emu, tokens, 16)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d pairings failed", len(errs), n)
	}
	allLoggedIn(t, p, n, 2*time.Minute)
	linked := time.Since(start)

	// Pre-keys are uploaded after the login, in the background: wait for
	// all of them, reading the key store beside wago.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	keysDB := openKeyStoreReader(t, filepath.Join(dir, "whatsmeow.db"))
	var counts map[string]int
	waitLoaded(t, p, 2*time.Minute, "every device's pre-keys uploaded", func() (bool, string) {
		var err error
		if counts, err = uploadedPreKeys(ctx, keysDB); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		return total >= n*initialPreKeys, fmt.Sprintf("%d of %d pre-keys uploaded", total, n*initialPreKeys)
	})
	stop()
	t.Logf("%d sessions linked in %s with the CPU saturated", n, linked.Round(time.Millisecond))

	for _, token := range tokens {
		st := p.status(token)
		if !st.Connected || !st.LoggedIn || st.Jid != jids[token].String() || st.LastError != "" {
			t.Errorf("%s: status %+v, emulator linked %s", token, st, jids[token])
		}
		if c := counts[jids[token].String()]; c != initialPreKeys {
			t.Errorf("%s: %d pre-keys uploaded, want %d", token, c, initialPreKeys)
		}
	}
	if devs := emu.Devices(); len(devs) != n {
		t.Errorf("the emulator has %d devices, want %d", len(devs), n)
	}
	noStoreErrors(t, p)
}
