package e2e

// A fleet of `wago connector` processes (each with its own data directory,
// as on separate machines) sharing Redis, the DynamoDB token table and one
// whatsmeow key store (PostgreSQL when WAGO_TEST_POSTGRES_URL is set, else
// one SQLite file), behind one `wago api`.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector/waemu"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
	"github.com/wago-gw/wago/shared/redisbus"
)

// redisDBFleet is TestFleetFailover's Redis database (see distributed_test.go).
const redisDBFleet = 8

// fleet is the connectors of one test, by name.
type fleet struct {
	tb    testing.TB
	e     distEnv
	emu   *waemu.Server
	keys  string // WAGO_WHATSMEOW_DB
	base  string // the data directories' parent
	procs map[string]*proc
}

// newFleet returns the services of a fleet on Redis database db, with no
// connector running yet.
func newFleet(tb testing.TB, db int) *fleet {
	tb.Helper()
	return newFleetOn(tb, newDistEnv(tb, db))
}

// newFleetOn is newFleet on e.
func newFleetOn(tb testing.TB, e distEnv) *fleet {
	tb.Helper()
	f := &fleet{tb: tb, e: e, emu: startEmulator(tb), base: tb.TempDir(), procs: map[string]*proc{}}
	if os.Getenv("WAGO_TEST_POSTGRES_URL") != "" {
		f.keys = pgtest.NewDatabase(tb)
	} else {
		f.keys = filepath.Join(f.base, "keys.db")
	}
	return f
}

// start runs connector name (its data directory is kept across restarts)
// and waits until it logs that it runs.
func (f *fleet) start(name string) *proc {
	f.tb.Helper()
	p := spawn(f.tb, name, append(f.e.distProcEnv(),
		"WAGO_DATA_DIR="+filepath.Join(f.base, name),
		"WAGO_WHATSMEOW_DB="+f.keys,
		"WAGO_WHATSAPP_ADDR="+f.emu.Addr(),
		"WAGO_WHATSAPP_ROOT_KEY="+f.emu.RootPublicKeyHex(),
		"WAGO_LOG_LEVEL=info",
	), "connector")
	p.waitReady("to log that it runs", func() bool { return strings.Contains(p.logBuf.String(), "connector running") })
	f.procs[name] = p
	return p
}

// owners returns the name of the connector holding each shard's lease (""
// for none), from the lease keys: a consumer ID is <host>-<pid>-<random>.
func (f *fleet) owners() []string {
	f.tb.Helper()
	byPid := map[string]string{}
	for name, p := range f.procs {
		byPid[strconv.Itoa(p.cmd.Process.Pid)] = name
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := make([]string, redisbus.DefaultShards)
	for shard := range out {
		v, _ := f.e.rdb.Get(ctx, fmt.Sprintf("wago:lease:{%d}", shard)).Result()
		consumer, _, _ := strings.Cut(v, ":")
		if parts := strings.Split(consumer, "-"); len(parts) >= 3 {
			out[shard] = byPid[parts[len(parts)-2]]
			if out[shard] == "" {
				out[shard] = "?" + consumer
			}
		}
	}
	return out
}

// shares counts the shards each named connector owns.
func (f *fleet) shares(names ...string) []int {
	owners := f.owners()
	out := make([]int, len(names))
	for i, name := range names {
		for _, o := range owners {
			if o == name {
				out[i]++
			}
		}
	}
	return out
}

// waitShares waits until names own want shards between them (sorted
// counts) and no shard is unowned.
func (f *fleet) waitShares(within time.Duration, want []int, names ...string) {
	f.tb.Helper()
	waitFor(f.tb, within, fmt.Sprintf("%v to own %v shards", names, want), func() bool {
		got := f.shares(names...)
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}

// tokensOf returns the tokens whose shard name owns.
func (f *fleet) tokensOf(name string, tokens []string) []string {
	owners := f.owners()
	var out []string
	for _, t := range tokens {
		if owners[redisbus.ShardOf(t, redisbus.DefaultShards)] == name {
			out = append(out, t)
		}
	}
	return out
}

// connectedCount counts the tokens /session/all shows connected and
// logged in; -1 when the API does not answer 200 (DynamoDB Local, shared
// with other tests, may fail a Scan now and then).
func connectedCount(api *proc, tokens []string) int {
	a, _, err := httpCall(api.base, "GET", "/session/all", "", "admintoken", lambdaAdminToken)
	if err != nil || a.Status != 200 {
		return -1
	}
	var rows []map[string]any
	if err := json.Unmarshal(a.Data, &rows); err != nil {
		return -1
	}
	all := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		all[fmt.Sprint(r["token"])] = r
	}
	n := 0
	for _, t := range tokens {
		if r := all[t]; r["connected"] == true && r["loggedIn"] == true {
			n++
		}
	}
	return n
}

// waitConnected polls /session/all every 100 ms until want of tokens read
// connected and logged in, or fails tb after within.
func waitConnected(tb testing.TB, api *proc, tokens []string, want int, within time.Duration, what string) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		n := connectedCount(api, tokens)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting %s for %s: %d of %d connected", within, what, n, len(tokens))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replaced lists the devices the emulator saw logged in from two sockets
// at once (it answered the older one StreamReplaced, as WhatsApp would).
func replaced(emu *waemu.Server) []string {
	var out []string
	for _, d := range emu.Devices() {
		if d.Replaced > 0 {
			out = append(out, fmt.Sprintf("%s x%d", d.JID, d.Replaced))
		}
	}
	return out
}

// sampleSockets checks, every 50 ms until stop is called, that no device
// has two live sockets (a login that replaced a live one) and that the
// emulator never counts more authenticated sockets than devices; it
// returns the violations seen.
func sampleSockets(emu *waemu.Server, jids []types.JID) (stop func() []string) {
	var (
		mu   sync.Mutex
		seen []string
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			for _, jid := range jids {
				if n := emu.SocketsFor(jid); n > 1 {
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%s: %d live sockets", jid, n))
					mu.Unlock()
				}
			}
			if r := replaced(emu); len(r) > 0 {
				mu.Lock()
				seen = append(seen, r...)
				mu.Unlock()
				return
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() []string {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// linkFleet creates n sessions through api and links them all (16 pairings
// at once), and returns their tokens and device JIDs.
func linkFleet(tb testing.TB, api *proc, emu *waemu.Server, prefix string, n int) ([]string, map[string]types.JID) {
	tb.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("%s-%d", prefix, i)
		distInit(api, tokens[i], tokens[i])
	}
	jids, errs := pairAll(api, emu, tokens, 16)
	failOnPairings(tb, errs, n)
	return tokens, jids
}

// failOnPairings fails tb, showing the first ten errors, when any of n
// pairings failed.
func failOnPairings(tb testing.TB, errs []error, n int) {
	tb.Helper()
	for i, err := range errs {
		if i == 10 {
			tb.Errorf("... and %d more", len(errs)-i)
			break
		}
		tb.Error(err)
	}
	if len(errs) > 0 {
		tb.Fatalf("%d of %d pairings failed", len(errs), n)
	}
}

// TestFleetFailover: three connectors share the shards fairly; kill -9 of
// one moves its shards to the survivors, which bring every one of its
// sessions back by themselves (a send meanwhile answers 503 or runs
// once, and is never received twice); a fourth connector takes its share from the others, which release
// it; a rolling restart (SIGTERM, start again) of every connector loses no
// session; and throughout no device is ever logged in from two sockets.
func TestFleetFailover(t *testing.T) {
	const sessions = 60
	f := newFleet(t, redisDBFleet)
	for _, name := range []string{"A", "B", "C"} {
		f.start(name)
	}
	api := startDistAPI(t, f.e)
	f.waitShares(redisbus.DefaultLeaseTTL, []int{5, 5, 6}, "A", "B", "C")
	start := time.Now()
	tokens, jids := linkFleet(t, api, f.emu, "fleet", sessions)
	waitConnected(t, api, tokens, sessions, 30*time.Second, "every session connected")
	t.Logf("%d sessions linked in %.1f s over 3 connectors (key store %s)", sessions, time.Since(start).Seconds(), keyStoreKind(f.keys))
	var devs []types.JID
	for _, jid := range jids {
		devs = append(devs, jid)
	}
	stopSampling := sampleSockets(f.emu, devs)
	loginsNow := func() map[string]int {
		out := map[string]int{}
		for tok, jid := range jids {
			out[tok] = logins(f.emu, jid)
		}
		return out
	}

	// kill -9 B: its sessions come back on A and C by themselves.
	moved := f.tokensOf("B", tokens)
	if len(moved) == 0 {
		t.Fatal("B owns no session")
	}
	before := loginsNow()
	f.procs["B"].cmd.Process.Kill()
	<-f.procs["B"].done
	killed := time.Now()
	delete(f.procs, "B")
	sendID := "FLEETKILL0001"
	sent := make(chan answer, 1)
	go func() {
		a, _, err := httpCall(api.base, "POST", "/send/text", fmt.Sprintf(`{"Phone":"+%s","Body":"during the failover","Id":%q}`, f.emu.Contact().User, sendID), "token", moved[0])
		if err != nil {
			t.Error(err)
		}
		sent <- a
	}()
	waitConnected(t, api, moved, 0, 10*time.Second, "B's sessions to stop reading connected")
	stale := time.Since(killed)
	f.waitShares(redisbus.DefaultLeaseTTL+10*time.Second, []int{8, 8}, "A", "C")
	waitConnected(t, api, tokens, sessions, 30*time.Second, "B's sessions connected again")
	back := time.Since(killed)
	after := loginsNow()
	for _, tok := range tokens {
		want := before[tok]
		if slices.Contains(moved, tok) {
			want++
		}
		if after[tok] != want {
			t.Errorf("%s: %d logins after B's death, want %d", tok, after[tok], want)
		}
	}
	a := <-sent
	got := 0
	for _, m := range f.emu.ContactInbox() {
		if m.Kind == waemu.InboxText && m.ID == sendID {
			got++
		}
	}
	// 503 when no connector took it before its deadline; else it ran once
	// (200, or an error if it ran before the session was restored).
	if a.Status == 200 && got != 1 || got > 1 {
		t.Errorf("a send during the failover answered %d %q and was received %d times", a.Status, a.Error, got)
	}
	t.Logf("kill -9 of B (%d sessions): they read not connected after %.1f s, all connected again after %.1f s; a send meanwhile answered %d and was received %d times",
		len(moved), stale.Seconds(), back.Seconds(), a.Status, got)

	// A fourth connector takes its share, released by A and C.
	before = loginsNow()
	d := f.start("D")
	joined := time.Now()
	f.waitShares(redisbus.DefaultLeaseTTL, []int{5, 5, 6}, "A", "C", "D")
	moved = f.tokensOf("D", tokens)
	waitConnected(t, api, tokens, sessions, 30*time.Second, "every session connected after D joined")
	t.Logf("D owns its share after %.1f s; its %d sessions connected", time.Since(joined).Seconds(), len(moved))
	after = loginsNow()
	for _, tok := range moved {
		if after[tok] != before[tok]+1 {
			t.Errorf("%s moved to D: %d logins, want %d", tok, after[tok], before[tok]+1)
		}
	}
	for _, name := range []string{"A", "C"} {
		log := f.procs[name].logBuf.String()
		if !strings.Contains(log, "releasing a shard above the fair share") || strings.Contains(log, "shard lease lost") {
			t.Errorf("%s did not hand its shards to D by releasing them", name)
		}
	}
	if !strings.Contains(d.logBuf.String(), "acquired shard") {
		t.Error("D acquired no shard")
	}

	// Rolling restart: each in turn stops (releasing its shards at once),
	// the others take its sessions, and it starts again.
	for _, name := range []string{"A", "C", "D"} {
		mine := f.tokensOf(name, tokens)
		took := f.procs[name].stop()
		delete(f.procs, name)
		if owners := f.owners(); slices.ContainsFunc(owners, func(o string) bool { return strings.HasPrefix(o, "?") }) {
			t.Errorf("%s exited after SIGTERM (%.1f s) with leases left: %v", name, took.Seconds(), owners)
		}
		others := []string{}
		for n := range f.procs {
			others = append(others, n)
		}
		f.waitShares(10*time.Second, []int{8, 8}, others...)
		waitConnected(t, api, tokens, sessions, 30*time.Second, fmt.Sprintf("%s's %d sessions connected elsewhere", name, len(mine)))
		f.start(name)
		f.waitShares(redisbus.DefaultLeaseTTL, []int{5, 5, 6}, "A", "C", "D")
		waitConnected(t, api, tokens, sessions, 30*time.Second, "every session connected after "+name+" restarted")
	}
	if seen := stopSampling(); len(seen) > 0 {
		t.Errorf("devices with two live sockets at once: %v", seen)
	}
	t.Logf("rolling restart of A, C and D done; %d sessions connected, no device ever had two live sockets", sessions)
}

// keyStoreKind names the kind of key store of a WAGO_WHATSMEOW_DB value.
func keyStoreKind(addr string) string {
	if strings.Contains(addr, "://") {
		kind, _, _ := strings.Cut(addr, "://")
		return kind
	}
	return "sqlite"
}
