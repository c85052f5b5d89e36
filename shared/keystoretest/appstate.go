package keystoretest

import (
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/store"

	"github.com/wago-gw/wago/shared/keystore"
)

// testAppStateSyncKeys: Get, Put (a key is replaced only by a newer
// timestamp) and GetLatestAppStateSyncKeyID (the newest timestamp).
func testAppStateSyncKeys(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	get := func(id string, want *store.AppStateSyncKey) {
		t.Helper()
		got, err := reload(t, ks, dev).AppStateKeys.GetAppStateSyncKey(ctx(t), []byte(id))
		if err != nil || (got == nil) != (want == nil) {
			t.Fatalf("GetAppStateSyncKey(%s) = %v, %v; want %v", id, got, err, want)
		}
		if want != nil && (!slices.Equal(got.Data, want.Data) || !slices.Equal(got.Fingerprint, want.Fingerprint) || got.Timestamp != want.Timestamp) {
			t.Errorf("GetAppStateSyncKey(%s) = %+v, want %+v", id, got, want)
		}
	}
	latest := func(want string) {
		t.Helper()
		got, err := reload(t, ks, dev).AppStateKeys.GetLatestAppStateSyncKeyID(ctx(t))
		if err != nil || string(got) != want || (want == "") != (got == nil) {
			t.Errorf("GetLatestAppStateSyncKeyID = %q, %v; want %q", got, err, want)
		}
	}
	get("k1", nil)
	latest("")
	k1 := store.AppStateSyncKey{Data: randBytes(32), Fingerprint: randBytes(20), Timestamp: 1000}
	k2 := store.AppStateSyncKey{Data: randBytes(32), Fingerprint: randBytes(20), Timestamp: 2000}
	k3 := store.AppStateSyncKey{Data: randBytes(32), Fingerprint: randBytes(20), Timestamp: 1500}
	must(t, "PutAppStateSyncKey k1", dev.AppStateKeys.PutAppStateSyncKey(ctx(t), []byte("k1"), k1))
	latest("k1")
	must(t, "PutAppStateSyncKey k2", dev.AppStateKeys.PutAppStateSyncKey(ctx(t), []byte("k2"), k2))
	must(t, "PutAppStateSyncKey k3", dev.AppStateKeys.PutAppStateSyncKey(ctx(t), []byte("k3"), k3))
	get("k1", &k1)
	get("k2", &k2)
	get("k3", &k3)
	latest("k2")
	// An older copy does not replace a key; a newer one does.
	older := store.AppStateSyncKey{Data: randBytes(32), Fingerprint: randBytes(20), Timestamp: 500}
	must(t, "PutAppStateSyncKey older", dev.AppStateKeys.PutAppStateSyncKey(ctx(t), []byte("k1"), older))
	get("k1", &k1)
	newer := store.AppStateSyncKey{Data: randBytes(32), Fingerprint: randBytes(20), Timestamp: 3000}
	must(t, "PutAppStateSyncKey newer", dev.AppStateKeys.PutAppStateSyncKey(ctx(t), []byte("k1"), newer))
	get("k1", &newer)
	latest("k1")
}

// testAppStateVersion: a name's version and hash; unknown is version 0
// with a zero hash.
func testAppStateVersion(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	get := func(name string, wantV uint64, wantH [128]byte) {
		t.Helper()
		v, h, err := reload(t, ks, dev).AppState.GetAppStateVersion(ctx(t), name)
		if err != nil || v != wantV || h != wantH {
			t.Errorf("GetAppStateVersion(%s) = %d, %x.., %v; want %d, %x..", name, v, h[:4], err, wantV, wantH[:4])
		}
	}
	get("regular", 0, [128]byte{})
	h1, h2 := [128]byte(randBytes(128)), [128]byte(randBytes(128))
	must(t, "PutAppStateVersion", dev.AppState.PutAppStateVersion(ctx(t), "regular", 7, h1))
	must(t, "PutAppStateVersion", dev.AppState.PutAppStateVersion(ctx(t), "critical_block", 2, h2))
	get("regular", 7, h1)
	get("critical_block", 2, h2)
	must(t, "PutAppStateVersion again", dev.AppState.PutAppStateVersion(ctx(t), "regular", 9, h2))
	get("regular", 9, h2)
	must(t, "DeleteAppStateVersion", dev.AppState.DeleteAppStateVersion(ctx(t), "regular"))
	get("regular", 0, [128]byte{})
	get("critical_block", 2, h2)
	must(t, "DeleteAppStateVersion unknown", dev.AppState.DeleteAppStateVersion(ctx(t), "regular"))
}

// testAppStateMutationMACs: the value MAC of an index MAC is the one of
// the highest version; deleting an index MAC deletes all its versions;
// deleting a name's version deletes its MACs.
func testAppStateMutationMACs(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	get := func(name string, index, want []byte) {
		t.Helper()
		got, err := reload(t, ks, dev).AppState.GetAppStateMutationMAC(ctx(t), name, index)
		if err != nil || !slices.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("GetAppStateMutationMAC(%s, %x) = %x, %v; want %x", name, index, got, err, want)
		}
	}
	// whatsmeow stores a name's version before its MACs.
	must(t, "PutAppStateVersion", dev.AppState.PutAppStateVersion(ctx(t), "regular", 1, [128]byte{}))
	must(t, "PutAppStateVersion", dev.AppState.PutAppStateVersion(ctx(t), "regular_low", 1, [128]byte{}))
	get("regular", mac("i1"), nil)
	must(t, "PutAppStateMutationMACs", dev.AppState.PutAppStateMutationMACs(ctx(t), "regular", 1, []store.AppStateMutationMAC{
		{IndexMAC: mac("i1"), ValueMAC: mac("v1@1")},
		{IndexMAC: mac("i2"), ValueMAC: mac("v2@1")},
		{IndexMAC: mac("i3"), ValueMAC: mac("v3@1")},
	}))
	must(t, "PutAppStateMutationMACs other name", dev.AppState.PutAppStateMutationMACs(ctx(t), "regular_low", 1, []store.AppStateMutationMAC{
		{IndexMAC: mac("i1"), ValueMAC: mac("low v1")},
	}))
	get("regular", mac("i1"), mac("v1@1"))
	get("regular_low", mac("i1"), mac("low v1"))
	must(t, "PutAppStateMutationMACs v2", dev.AppState.PutAppStateMutationMACs(ctx(t), "regular", 2, []store.AppStateMutationMAC{
		{IndexMAC: mac("i1"), ValueMAC: mac("v1@2")},
	}))
	get("regular", mac("i1"), mac("v1@2"))
	get("regular", mac("i2"), mac("v2@1"))
	must(t, "DeleteAppStateMutationMACs", dev.AppState.DeleteAppStateMutationMACs(ctx(t), "regular", [][]byte{mac("i1"), mac("i2")}))
	get("regular", mac("i1"), nil)
	get("regular", mac("i2"), nil)
	get("regular", mac("i3"), mac("v3@1"))
	get("regular_low", mac("i1"), mac("low v1"))
	must(t, "PutAppStateMutationMACs(none)", dev.AppState.PutAppStateMutationMACs(ctx(t), "regular", 3, nil))
	must(t, "DeleteAppStateMutationMACs(none)", dev.AppState.DeleteAppStateMutationMACs(ctx(t), "regular", nil))

	// Many at once (whatsmeow writes a full snapshot in one call).
	var many []store.AppStateMutationMAC
	for range 900 {
		many = append(many, store.AppStateMutationMAC{IndexMAC: randBytes(32), ValueMAC: randBytes(32)})
	}
	must(t, "PutAppStateMutationMACs(900)", dev.AppState.PutAppStateMutationMACs(ctx(t), "regular", 4, many))
	get("regular", many[0].IndexMAC, many[0].ValueMAC)
	get("regular", many[899].IndexMAC, many[899].ValueMAC)

	must(t, "DeleteAppStateVersion", dev.AppState.DeleteAppStateVersion(ctx(t), "regular"))
	get("regular", mac("i3"), nil)
	get("regular", many[450].IndexMAC, nil)
	get("regular_low", mac("i1"), mac("low v1"))
}
