package keystoretest

import (
	"testing"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/wago-gw/wago/shared/keystore"
)

// checkPreKeyIDs fails t unless got's IDs are want, in order, and every
// key pair is whole (its public key derived from its private one).
func checkPreKeyIDs(t *testing.T, what string, got []*keys.PreKey, want ...uint32) {
	t.Helper()
	ids := make([]uint32, len(got))
	for i, k := range got {
		if k == nil {
			t.Fatalf("%s: key %d is nil", what, i)
		}
		ids[i] = k.KeyID
		if k.Priv == nil || !samePair(keys.NewKeyPairFromPrivateKey(*k.Priv), &k.KeyPair) {
			t.Errorf("%s: key %d's public key does not match its private key", what, k.KeyID)
		}
	}
	if len(ids) != len(want) {
		t.Fatalf("%s: IDs %v, want %v", what, ids, want)
	}
	for i := range ids {
		if ids[i] != want[i] {
			t.Fatalf("%s: IDs %v, want %v", what, ids, want)
		}
	}
}

func uploadedCount(t *testing.T, ks keystore.Store, dev *store.Device, want int) {
	t.Helper()
	n, err := reload(t, ks, dev).PreKeys.UploadedPreKeyCount(ctx(t))
	if err != nil || n != want {
		t.Errorf("UploadedPreKeyCount = %d, %v; want %d", n, err, want)
	}
}

// testPreKeysGenerate: GetOrGenPreKeys numbers new keys from 1, answers
// the keys not yet uploaded (the same ones again until they are), lowest
// ID first, and generates only what is missing.
func testPreKeysGenerate(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	first, err := dev.PreKeys.GetOrGenPreKeys(ctx(t), 5)
	must(t, "GetOrGenPreKeys(5)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(5)", first, 1, 2, 3, 4, 5)
	again, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 5)
	must(t, "GetOrGenPreKeys(5) again", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(5) again", again, 1, 2, 3, 4, 5)
	for i := range first {
		if !samePair(&first[i].KeyPair, &again[i].KeyPair) {
			t.Errorf("pre-key %d changed between two calls", first[i].KeyID)
		}
	}
	more, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 8)
	must(t, "GetOrGenPreKeys(8)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(8)", more, 1, 2, 3, 4, 5, 6, 7, 8)
	fewer, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 3)
	must(t, "GetOrGenPreKeys(3)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(3)", fewer, 1, 2, 3)
	uploadedCount(t, ks, dev, 0)
	d := reload(t, ks, dev)
	for _, k := range more {
		got, err := d.PreKeys.GetPreKey(ctx(t), k.KeyID)
		if err != nil || got == nil || !samePair(&got.KeyPair, &k.KeyPair) || got.KeyID != k.KeyID {
			t.Errorf("GetPreKey(%d) = %v, %v; want the generated key", k.KeyID, got, err)
		}
	}
	if got, err := d.PreKeys.GetPreKey(ctx(t), 99); err != nil || got != nil {
		t.Errorf("GetPreKey(unknown) = %v, %v; want nil, nil", got, err)
	}
}

// testPreKeysUpload: MarkPreKeysAsUploaded marks every key up to an ID;
// GetOrGenPreKeys then answers the next ones and numbers new keys after
// the highest ID.
func testPreKeysUpload(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	_, err := dev.PreKeys.GetOrGenPreKeys(ctx(t), 8)
	must(t, "GetOrGenPreKeys(8)", err)
	must(t, "MarkPreKeysAsUploaded(5)", dev.PreKeys.MarkPreKeysAsUploaded(ctx(t), 5))
	uploadedCount(t, ks, dev, 5)
	next, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 4)
	must(t, "GetOrGenPreKeys(4)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(4) after upload", next, 6, 7, 8, 9)
	must(t, "MarkPreKeysAsUploaded(9)", dev.PreKeys.MarkPreKeysAsUploaded(ctx(t), 9))
	uploadedCount(t, ks, dev, 9)
	must(t, "MarkPreKeysAsUploaded(3) again", dev.PreKeys.MarkPreKeysAsUploaded(ctx(t), 3))
	uploadedCount(t, ks, dev, 9)
	fresh, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 2)
	must(t, "GetOrGenPreKeys(2)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(2) after all uploaded", fresh, 10, 11)
	// Uploaded keys stay readable: a peer's first message names one.
	if got, err := reload(t, ks, dev).PreKeys.GetPreKey(ctx(t), 2); err != nil || got == nil || got.KeyID != 2 {
		t.Errorf("GetPreKey(2) of an uploaded key = %v, %v", got, err)
	}
}

// testPreKeysRemove: RemovePreKey deletes one key (a peer used it); the
// others stay and IDs are not reused while higher ones exist.
func testPreKeysRemove(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	_, err := dev.PreKeys.GetOrGenPreKeys(ctx(t), 4)
	must(t, "GetOrGenPreKeys(4)", err)
	must(t, "MarkPreKeysAsUploaded(4)", dev.PreKeys.MarkPreKeysAsUploaded(ctx(t), 4))
	must(t, "RemovePreKey(2)", reload(t, ks, dev).PreKeys.RemovePreKey(ctx(t), 2))
	must(t, "RemovePreKey(unknown)", dev.PreKeys.RemovePreKey(ctx(t), 77))
	d := reload(t, ks, dev)
	if got, err := d.PreKeys.GetPreKey(ctx(t), 2); err != nil || got != nil {
		t.Errorf("GetPreKey(removed) = %v, %v; want nil, nil", got, err)
	}
	if got, err := d.PreKeys.GetPreKey(ctx(t), 3); err != nil || got == nil {
		t.Errorf("GetPreKey(3) = %v, %v; want it kept", got, err)
	}
	uploadedCount(t, ks, dev, 3)
	next, err := d.PreKeys.GetOrGenPreKeys(ctx(t), 1)
	must(t, "GetOrGenPreKeys(1)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(1) after a removal", next, 5)
}

// testGenOnePreKey: GenOnePreKey stores one key after the highest ID,
// already marked uploaded.
func testGenOnePreKey(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	one, err := dev.PreKeys.GenOnePreKey(ctx(t))
	must(t, "GenOnePreKey", err)
	checkPreKeyIDs(t, "GenOnePreKey on an empty store", []*keys.PreKey{one}, 1)
	uploadedCount(t, ks, dev, 1)
	_, err = dev.PreKeys.GetOrGenPreKeys(ctx(t), 3)
	must(t, "GetOrGenPreKeys(3)", err)
	two, err := reload(t, ks, dev).PreKeys.GenOnePreKey(ctx(t))
	must(t, "GenOnePreKey", err)
	checkPreKeyIDs(t, "GenOnePreKey after 4", []*keys.PreKey{two}, 5)
	uploadedCount(t, ks, dev, 2)
	got, err := reload(t, ks, dev).PreKeys.GetPreKey(ctx(t), 5)
	if err != nil || got == nil || !samePair(&got.KeyPair, &two.KeyPair) {
		t.Errorf("GetPreKey(5) = %v, %v; want GenOnePreKey's key", got, err)
	}
	// It is not handed out again as a key to upload.
	next, err := reload(t, ks, dev).PreKeys.GetOrGenPreKeys(ctx(t), 3)
	must(t, "GetOrGenPreKeys(3)", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(3) after GenOnePreKey", next, 2, 3, 4)
}
