package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// burnCPU keeps n goroutines spinning until the returned stop is called or
// max passes, whichever comes first, so that the code under test runs on a
// saturated machine: a goroutine that holds the SQLite write lock gets
// preempted for whole time slices.
func burnCPU(n int, max time.Duration) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	deadline := time.Now().Add(max)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for i := 0; !done.Load(); i++ {
				x = x*6364136223846793005 + 1442695040888963407
				if i%(1<<16) == 0 && time.Now().After(deadline) {
					return
				}
			}
			_ = x
		}()
	}
	return func() { done.Store(true); wg.Wait() }
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

// loadResult is what keyStoreLoad did.
type loadResult struct {
	ops    atomic.Int64 // store calls that succeeded
	rounds []int        // rounds completed, by writer
	mu     sync.Mutex
	errs   []error
}

func (r *loadResult) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *loadResult) busy() int {
	n := 0
	for _, err := range r.errs {
		if isBusy(err) {
			n++
		}
	}
	return n
}

const preKeysPerRound = 30

// keyStoreLoad runs writers goroutines against c for about dur, each as one
// linked device doing what whatsmeow does when it pairs and runs: save the
// device, generate and mark pre-keys, store identities, sessions (one by
// one and in a transaction), LID mappings (a transaction behind the
// container-wide cache lock), contacts, message secrets and app state in
// transactions, and a decryption transaction; with reads in between. A
// writer stops at its first error.
func keyStoreLoad(ctx context.Context, c *sqlstore.Container, writers int, dur time.Duration) *loadResult {
	res := &loadResult{rounds: make([]int, writers)}
	// libsignal sets its default logger lazily, racily: have it set here,
	// before the writers sign their keys at once.
	c.NewDevice()
	until := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := deviceLoad(ctx, c, w, until, res); err != nil {
				res.fail(fmt.Errorf("writer %d, round %d: %w", w, res.rounds[w], err))
			}
		}()
	}
	wg.Wait()
	return res
}

func deviceJID(w int) types.JID {
	return types.JID{User: fmt.Sprintf("1555%07d", w), Device: 1, Server: types.DefaultUserServer}
}

func deviceLoad(ctx context.Context, c *sqlstore.Container, w int, until time.Time, res *loadResult) error {
	dev := c.NewDevice()
	jid := deviceJID(w)
	dev.ID = &jid
	dev.LID = types.JID{User: fmt.Sprintf("9%010d", w), Device: 1, Server: types.HiddenUserServer}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignature:    bytes.Repeat([]byte{1}, 64),
		AccountSignatureKey: bytes.Repeat([]byte{2}, 32),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		res.ops.Add(1)
		return nil
	}
	if err := step("save device", dev.Save(ctx)); err != nil {
		return err
	}
	for r := 0; r == 0 || time.Now().Before(until); r++ {
		peer := fmt.Sprintf("1666%07d", r)
		pn := types.JID{User: peer, Server: types.DefaultUserServer}
		lid := types.JID{User: fmt.Sprintf("8%04d%06d", w, r), Server: types.HiddenUserServer}
		addr := pn.SignalAddress().String()

		keys, err := dev.PreKeys.GetOrGenPreKeys(ctx, preKeysPerRound)
		if err := step("generate pre-keys", err); err != nil {
			return err
		}
		if err := step("mark pre-keys uploaded", dev.PreKeys.MarkPreKeysAsUploaded(ctx, keys[len(keys)-1].KeyID)); err != nil {
			return err
		}
		if err := step("put identity", dev.Identities.PutIdentity(ctx, addr, [32]byte{byte(w), byte(r)})); err != nil {
			return err
		}
		if err := step("put session", dev.Sessions.PutSession(ctx, addr, []byte("session"))); err != nil {
			return err
		}
		if err := step("put many sessions", dev.Sessions.PutManySessions(ctx, map[string][]byte{addr + ".1": []byte("a"), addr + ".2": []byte("b")})); err != nil {
			return err
		}
		if err := step("put LID mapping", dev.LIDs.PutLIDMapping(ctx, lid, pn)); err != nil {
			return err
		}
		if err := step("put contacts", dev.Contacts.PutAllContactNames(ctx, []store.ContactEntry{{JID: pn, FirstName: "A", FullName: "A B"}})); err != nil {
			return err
		}
		if err := step("put message secrets", dev.MsgSecrets.PutMessageSecrets(ctx, []store.MessageSecretInsert{{Chat: pn, Sender: pn, ID: fmt.Sprintf("M%d", r), Secret: []byte("s")}})); err != nil {
			return err
		}
		if err := step("put app state version", dev.AppState.PutAppStateVersion(ctx, "regular", uint64(r), [128]byte{})); err != nil {
			return err
		}
		hash := [32]byte{byte(w), byte(w >> 8), byte(r), byte(r >> 8)}
		err = dev.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			if _, err := dev.Sessions.GetSession(ctx, addr); err != nil {
				return err
			}
			return dev.EventBuffer.PutBufferedEvent(ctx, hash, []byte("plaintext"), time.Now())
		})
		if err := step("decryption transaction", err); err != nil {
			return err
		}
		dev.PushName = fmt.Sprintf("device %d round %d", w, r)
		if err := step("save device again", dev.Save(ctx)); err != nil {
			return err
		}
		if _, err := c.LIDMap.GetPNForLID(ctx, lid); step("read LID mapping", err) != nil {
			return err
		}
		n, err := dev.PreKeys.UploadedPreKeyCount(ctx)
		if err := step("count pre-keys", err); err != nil {
			return err
		}
		if want := (r + 1) * preKeysPerRound; n != want {
			return fmt.Errorf("%d uploaded pre-keys, want %d", n, want)
		}
		res.rounds[w] = r + 1
	}
	return nil
}

// checkStored verifies that every writer's work is in the file: its device,
// its push name of the last round and all its pre-keys.
func checkStored(t *testing.T, ctx context.Context, c *sqlstore.Container, res *loadResult) {
	t.Helper()
	all, err := c.GetAllDevices(ctx)
	if err != nil {
		t.Fatalf("failed to list devices: %v", err)
	}
	if len(all) != len(res.rounds) {
		t.Fatalf("%d devices stored, want %d", len(all), len(res.rounds))
	}
	for w, rounds := range res.rounds {
		dev, err := c.GetDevice(ctx, deviceJID(w))
		if err != nil || dev == nil {
			t.Fatalf("device %d: %v (found: %t)", w, err, dev != nil)
		}
		if want := fmt.Sprintf("device %d round %d", w, rounds-1); dev.PushName != want {
			t.Errorf("device %d push name %q, want %q", w, dev.PushName, want)
		}
		n, err := dev.PreKeys.UploadedPreKeyCount(ctx)
		if err != nil || n != rounds*preKeysPerRound {
			t.Errorf("device %d: %d uploaded pre-keys (%v), want %d", w, n, err, rounds*preKeysPerRound)
		}
	}
}

// TestKeyStoreConcurrentWriters has 64 devices write to one key store at
// once, through whatsmeow's real sqlstore, while every core is kept busy:
// every write must succeed (no SQLITE_BUSY, no deadlock on the single
// connection) and be in the file afterwards. dbutil's deadlock detector is
// on, so a statement run on the pool from inside a transaction, which
// would hang on one connection, panics instead.
func TestKeyStoreConcurrentWriters(t *testing.T) {
	const writers = 64
	dur := 8 * time.Second
	if testing.Short() {
		dur = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dbutil.ForceDeadlockDetection = true
	c, err := OpenKeyStore(ctx, filepath.Join(t.TempDir(), "whatsmeow.db"), waLog.Noop)
	dbutil.ForceDeadlockDetection = false
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	stop := burnCPU(2*runtime.NumCPU(), dur+time.Minute)
	start := time.Now()
	res := keyStoreLoad(ctx, c, writers, dur)
	stop()
	total := 0
	for _, r := range res.rounds {
		total += r
	}
	t.Logf("%d writers, %d rounds, %d store calls in %s; %d errors (%d SQLITE_BUSY)",
		writers, total, res.ops.Load(), time.Since(start).Round(time.Millisecond), len(res.errs), res.busy())
	for i, err := range res.errs {
		if i == 10 {
			t.Errorf("... and %d more", len(res.errs)-i)
			break
		}
		t.Error(err)
	}
	if len(res.errs) > 0 {
		t.FailNow()
	}
	checkStored(t, ctx, c, res)
}

// TestKeyStoreWriterOutwaitsBusyTimeout holds a write transaction open for
// longer than the DSN's busy_timeout (10 s) while another device writes:
// on one connection the second writer queues in Go and succeeds once the
// transaction commits; on a pool of several it would poll SQLite's busy
// handler and fail with SQLITE_BUSY after 10 s.
func TestKeyStoreWriterOutwaitsBusyTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s busy timeout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := OpenKeyStore(ctx, filepath.Join(t.TempDir(), "whatsmeow.db"), waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	holder, other := c.NewDevice(), c.NewDevice()
	for i, dev := range []*store.Device{holder, other} {
		jid := deviceJID(i)
		dev.ID = &jid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("d"), AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
	}

	const hold = 11 * time.Second
	inTxn := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- holder.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			if err := holder.EventBuffer.PutBufferedEvent(ctx, [32]byte{1}, []byte("x"), time.Now()); err != nil {
				return err
			}
			close(inTxn)
			time.Sleep(hold)
			return nil
		})
	}()
	select {
	case <-inTxn:
	case err := <-held:
		t.Fatalf("failed to open the holding transaction: %v", err)
	}
	start := time.Now()
	queued, err := other.PreKeys.GetOrGenPreKeys(ctx, 5)
	waited := time.Since(start)
	if herr := <-held; herr != nil {
		t.Fatalf("the holding transaction failed: %v", herr)
	}
	if err != nil {
		t.Fatalf("a write behind an open transaction failed after %s: %v (SQLITE_BUSY: %t)", waited.Round(time.Millisecond), err, isBusy(err))
	}
	if waited < hold-time.Second {
		t.Fatalf("the second write returned after %s, inside the other's transaction", waited)
	}
	if ev, err := holder.EventBuffer.GetBufferedEvent(ctx, [32]byte{1}); err != nil || ev == nil {
		t.Fatalf("the held transaction's write is missing: %v", err)
	}
	again, err := other.PreKeys.GetOrGenPreKeys(ctx, 5)
	if err != nil || len(again) != 5 || again[0].KeyID != queued[0].KeyID || again[4].KeyID != queued[4].KeyID {
		t.Fatalf("the queued pre-keys are not in the file (%v)", err)
	}
}

// The uploaded pre-key count that whatsmeow runs at every connect reads
// keystore.PreKeyCountIndex alone (a covering index), not the table's rows.
func TestPreKeyCountUsesIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	c, err := OpenKeyStore(t.Context(), path, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id, parent, unused int
	var detail string
	err = db.QueryRowContext(t.Context(),
		"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM whatsmeow_pre_keys WHERE jid=$1 AND uploaded=true", "1@s.whatsapp.net",
	).Scan(&id, &parent, &unused, &detail)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "COVERING INDEX wago_pre_keys_uploaded") {
		t.Errorf("the uploaded pre-key count does not use the covering index: %s", detail)
	}
}
