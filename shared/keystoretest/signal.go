package keystoretest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/keystore"
)

// testIdentities: an unknown identity is trusted; a stored one is trusted
// only with the same key; Put overwrites; DeleteIdentity forgets.
func testIdentities(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	addr, other := signalAddr(pnJID(), 0), signalAddr(pnJID(), 3)
	key1, key2 := [32]byte(randBytes(32)), [32]byte(randBytes(32))
	trusted := func(addr string, key [32]byte, want bool) {
		t.Helper()
		got, err := reload(t, ks, dev).Identities.IsTrustedIdentity(ctx(t), addr, key)
		if err != nil || got != want {
			t.Errorf("IsTrustedIdentity(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
	trusted(addr, key1, true)
	must(t, "PutIdentity", dev.Identities.PutIdentity(ctx(t), addr, key1))
	must(t, "PutIdentity other", dev.Identities.PutIdentity(ctx(t), other, key2))
	trusted(addr, key1, true)
	trusted(addr, key2, false)
	must(t, "PutIdentity again", dev.Identities.PutIdentity(ctx(t), addr, key2))
	trusted(addr, key2, true)
	trusted(addr, key1, false)
	must(t, "DeleteIdentity", dev.Identities.DeleteIdentity(ctx(t), addr))
	trusted(addr, key1, true)
	trusted(other, key1, false) // untouched
	must(t, "DeleteIdentity unknown", dev.Identities.DeleteIdentity(ctx(t), addr))
}

// testDeleteAllIdentities deletes every device of one phone number and
// only those.
func testDeleteAllIdentities(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	user := pnJID()
	// "<user>1" shares user's prefix but is another number.
	prefixed := types.NewJID(user.User+"1", types.DefaultUserServer)
	key := [32]byte{5}
	addrs := []string{signalAddr(user, 0), signalAddr(user, 7), signalAddr(prefixed, 0)}
	for _, a := range addrs {
		must(t, "PutIdentity", dev.Identities.PutIdentity(ctx(t), a, key))
	}
	must(t, "DeleteAllIdentities", dev.Identities.DeleteAllIdentities(ctx(t), user.SignalAddressUser()))
	dev = reload(t, ks, dev)
	for i, a := range addrs {
		ok, err := dev.Identities.IsTrustedIdentity(ctx(t), a, [32]byte{6})
		if wantGone := i < 2; err != nil || ok != wantGone {
			t.Errorf("IsTrustedIdentity(%s) with another key = %v, %v; deleted: %v", a, ok, err, wantGone)
		}
	}
}

// testSessions: Get, Has, Put (overwriting) and DeleteSession.
func testSessions(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	addr := signalAddr(pnJID(), 2)
	get := func(want []byte) {
		t.Helper()
		d := reload(t, ks, dev)
		got, err := d.Sessions.GetSession(ctx(t), addr)
		if err != nil || !slices.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("GetSession = %q, %v; want %q", got, err, want)
		}
		has, err := d.Sessions.HasSession(ctx(t), addr)
		if err != nil || has != (want != nil) {
			t.Errorf("HasSession = %v, %v; want %v", has, err, want != nil)
		}
	}
	get(nil)
	s1, s2 := randBytes(300), randBytes(2000)
	must(t, "PutSession", dev.Sessions.PutSession(ctx(t), addr, s1))
	get(s1)
	must(t, "PutSession again", dev.Sessions.PutSession(ctx(t), addr, s2))
	get(s2)
	must(t, "DeleteSession", dev.Sessions.DeleteSession(ctx(t), addr))
	get(nil)
	must(t, "DeleteSession unknown", dev.Sessions.DeleteSession(ctx(t), addr))
}

// testManySessions: PutManySessions stores all; GetManySessions answers
// every address asked, nil for those without a session.
func testManySessions(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	want := map[string][]byte{}
	for i := range 120 {
		want[signalAddr(pnJID(), uint16(i%3))] = randBytes(100 + i)
	}
	must(t, "PutManySessions", dev.Sessions.PutManySessions(ctx(t), want))
	missing := signalAddr(pnJID(), 0)
	ask := append(slices.Collect(maps.Keys(want)), missing)
	got, err := reload(t, ks, dev).Sessions.GetManySessions(ctx(t), ask)
	must(t, "GetManySessions", err)
	if len(got) != len(ask) {
		t.Errorf("GetManySessions: %d entries, want %d (one per address asked)", len(got), len(ask))
	}
	for a, s := range want {
		if !slices.Equal(got[a], s) {
			t.Errorf("GetManySessions[%s] = %d bytes, want %d", a, len(got[a]), len(s))
		}
	}
	if s, ok := got[missing]; !ok || s != nil {
		t.Errorf("GetManySessions[missing] = %q, present %v; want present and nil", s, ok)
	}
	empty, err := dev.Sessions.GetManySessions(ctx(t), nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("GetManySessions(none) = %v, %v; want empty", empty, err)
	}
	must(t, "PutManySessions(none)", dev.Sessions.PutManySessions(ctx(t), nil))
	// Overwrite some.
	a := ask[0]
	must(t, "PutManySessions again", dev.Sessions.PutManySessions(ctx(t), map[string][]byte{a: []byte("new")}))
	if s, err := reload(t, ks, dev).Sessions.GetSession(ctx(t), a); err != nil || string(s) != "new" {
		t.Errorf("GetSession after overwrite = %q, %v", s, err)
	}
}

// testDeleteAllSessions deletes every device of one phone number and only
// those.
func testDeleteAllSessions(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	user := pnJID()
	prefixed := types.NewJID(user.User+"1", types.DefaultUserServer)
	addrs := []string{signalAddr(user, 0), signalAddr(user, 9), signalAddr(prefixed, 0)}
	for _, a := range addrs {
		must(t, "PutSession", dev.Sessions.PutSession(ctx(t), a, []byte(a)))
	}
	must(t, "DeleteAllSessions", dev.Sessions.DeleteAllSessions(ctx(t), user.SignalAddressUser()))
	dev = reload(t, ks, dev)
	for i, a := range addrs {
		has, err := dev.Sessions.HasSession(ctx(t), a)
		if wantGone := i < 2; err != nil || has == wantGone {
			t.Errorf("HasSession(%s) = %v, %v; deleted: %v", a, has, err, wantGone)
		}
	}
}

// testMigratePNToLID moves the sessions, identities and sender keys of
// every device of a phone number to its LID (overwriting what the LID
// had), and leaves other numbers alone.
func testMigratePNToLID(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	pn, lid, bystander := pnJID(), lidJID(), pnJID()
	group := "120363000000000001@g.us"
	for _, d := range []uint16{0, 4} {
		a := signalAddr(pn, d)
		must(t, "PutSession", dev.Sessions.PutSession(ctx(t), a, []byte("pn session "+a)))
		must(t, "PutIdentity", dev.Identities.PutIdentity(ctx(t), a, [32]byte{byte(d + 1)}))
		must(t, "PutSenderKey", dev.SenderKeys.PutSenderKey(ctx(t), group, a, []byte("pn sender key "+a)))
	}
	// The LID already has a session on device 4: the PN's replaces it.
	must(t, "PutSession lid", dev.Sessions.PutSession(ctx(t), signalAddr(lid, 4), []byte("old lid session")))
	must(t, "PutSession bystander", dev.Sessions.PutSession(ctx(t), signalAddr(bystander, 0), []byte("bystander")))

	must(t, "MigratePNToLID", dev.Sessions.MigratePNToLID(ctx(t), pn, lid))

	d := reload(t, ks, dev)
	for _, n := range []uint16{0, 4} {
		from, to := signalAddr(pn, n), signalAddr(lid, n)
		if s, err := d.Sessions.GetSession(ctx(t), to); err != nil || string(s) != "pn session "+from {
			t.Errorf("session of %s = %q, %v; want the one of %s", to, s, err, from)
		}
		if has, err := d.Sessions.HasSession(ctx(t), from); err != nil || has {
			t.Errorf("HasSession(%s) after migration = %v, %v; want false", from, has, err)
		}
		if ok, err := d.Identities.IsTrustedIdentity(ctx(t), to, [32]byte{byte(n + 1)}); err != nil || !ok {
			t.Errorf("identity of %s not migrated: %v, %v", to, ok, err)
		}
		if ok, err := d.Identities.IsTrustedIdentity(ctx(t), to, [32]byte{99}); err != nil || ok {
			t.Errorf("identity of %s trusts another key: %v, %v", to, ok, err)
		}
		if ok, err := d.Identities.IsTrustedIdentity(ctx(t), from, [32]byte{99}); err != nil || !ok {
			t.Errorf("identity of %s still stored after migration", from)
		}
		if k, err := d.SenderKeys.GetSenderKey(ctx(t), group, to); err != nil || string(k) != "pn sender key "+from {
			t.Errorf("sender key of %s = %q, %v; want the one of %s", to, k, err, from)
		}
		if k, err := d.SenderKeys.GetSenderKey(ctx(t), group, from); err != nil || k != nil {
			t.Errorf("sender key of %s after migration = %q, %v; want nil", from, k, err)
		}
	}
	if s, err := d.Sessions.GetSession(ctx(t), signalAddr(bystander, 0)); err != nil || string(s) != "bystander" {
		t.Errorf("another number's session = %q, %v; want it untouched", s, err)
	}
	// Nothing to migrate is no error.
	must(t, "MigratePNToLID nothing", d.Sessions.MigratePNToLID(ctx(t), pnJID(), lidJID()))
}

// testConcurrentSessions: sessions written at once from many goroutines,
// through two instances of one device, are all stored.
func testConcurrentSessions(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	other := reload(t, ks, dev)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	want := map[string][]byte{}
	for g := range 8 {
		d := dev
		if g%2 == 1 {
			d = other
		}
		for i := range 8 {
			a := signalAddr(types.NewJID(fmt.Sprintf("%s%02d%02d", dev.ID.User, g, i), types.DefaultUserServer), 0)
			want[a] = []byte(a)
		}
		wg.Go(func() {
			for i := range 8 {
				a := signalAddr(types.NewJID(fmt.Sprintf("%s%02d%02d", dev.ID.User, g, i), types.DefaultUserServer), 0)
				if err := d.Sessions.PutSession(ctx(t), a, []byte(a)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(slices.Collect(chanSeq(errs))...); err != nil {
		t.Fatalf("concurrent PutSession: %v", err)
	}
	got, err := reload(t, ks, dev).Sessions.GetManySessions(ctx(t), slices.Collect(maps.Keys(want)))
	must(t, "GetManySessions", err)
	for a, s := range want {
		if !slices.Equal(got[a], s) {
			t.Errorf("session %s = %q, want %q", a, got[a], s)
		}
	}
}

// chanSeq yields what ch holds until it is closed.
func chanSeq[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}

// testSenderKeys: Get, Put (overwriting), keyed by group and sender.
func testSenderKeys(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	g1, g2 := "120363000000000001@g.us", "120363000000000002@g.us"
	u1, u2 := signalAddr(pnJID(), 0), signalAddr(lidJID(), 2)
	get := func(g, u string, want []byte) {
		t.Helper()
		got, err := reload(t, ks, dev).SenderKeys.GetSenderKey(ctx(t), g, u)
		if err != nil || !slices.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("GetSenderKey(%s, %s) = %q, %v; want %q", g, u, got, err, want)
		}
	}
	get(g1, u1, nil)
	must(t, "PutSenderKey", dev.SenderKeys.PutSenderKey(ctx(t), g1, u1, []byte("k11")))
	must(t, "PutSenderKey", dev.SenderKeys.PutSenderKey(ctx(t), g1, u2, []byte("k12")))
	must(t, "PutSenderKey", dev.SenderKeys.PutSenderKey(ctx(t), g2, u1, []byte("k21")))
	get(g1, u1, []byte("k11"))
	get(g1, u2, []byte("k12"))
	get(g2, u1, []byte("k21"))
	get(g2, u2, nil)
	must(t, "PutSenderKey again", dev.SenderKeys.PutSenderKey(ctx(t), g1, u1, []byte("k11 v2")))
	get(g1, u1, []byte("k11 v2"))
}
