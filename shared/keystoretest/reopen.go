package keystoretest

import (
	"testing"

	"go.mau.fi/whatsmeow/store"

	"github.com/wago-gw/wago/shared/keystore"
)

// testReopen: a second store opened on the data of a first one (another
// process) finds the device and everything stored for it, reads the LID
// map without the first one's cache, stores again what is already stored
// without error, and carries on where the first one stopped; what each
// writes afterwards, the other reads.
func testReopen(t *testing.T, a keystore.Store, reopen func(*testing.T, keystore.Store) keystore.Store) {
	dev := saved(t, a)
	peer, lid := pnJID(), lidJID()
	fill(t, dev, peer) // pre-keys 1 and 2, 1 uploaded; push name "Peer"; ...
	must(t, "PutLIDMapping", dev.LIDs.PutLIDMapping(ctx(t), lid, peer))

	b := reopen(t, a)
	all, err := b.GetAllDevices(ctx(t))
	must(t, "GetAllDevices", err)
	if len(all) != 1 || all[0].ID == nil || *all[0].ID != *dev.ID {
		t.Fatalf("the reopened store lists %d devices, want only %s", len(all), dev.ID)
	}
	got, err := b.GetDevice(ctx(t), *dev.ID)
	if err != nil || got == nil {
		t.Fatalf("GetDevice on the reopened store = %v, %v", got, err)
	}
	checkDevice(t, got, dev)

	addr := signalAddr(peer, 0)
	if s, err := got.Sessions.GetSession(ctx(t), addr); err != nil || string(s) != "session" {
		t.Errorf("GetSession on the reopened store = %q, %v", s, err)
	}
	if ok, err := got.Identities.IsTrustedIdentity(ctx(t), addr, [32]byte{1}); err != nil || !ok {
		t.Errorf("IsTrustedIdentity on the reopened store = %v, %v", ok, err)
	}
	// Storing again what the store holds, with a cold cache, is no error
	// and changes nothing (whatsmeow stores its own mapping again at each
	// connect, with device numbers).
	must(t, "PutManyLIDMappings (stored already)", got.LIDs.PutManyLIDMappings(ctx(t), []store.LIDMapping{{LID: withDevice(lid, 1), PN: withDevice(peer, 1)}}))
	checkLID(t, got.LIDs, peer, lid)
	checkPN(t, got.LIDs, lid, peer)
	cold := lidStore(t, reopen(t, a), dev)
	must(t, "PutLIDMapping (stored already)", cold.PutLIDMapping(ctx(t), lid, peer))
	checkLID(t, cold, peer, lid)
	putName(t, "PutPushName (stored already)", func() (bool, string, error) { return got.Contacts.PutPushName(ctx(t), peer, "Peer") }, false, "")
	if ci, err := got.Contacts.GetContact(ctx(t), peer); err != nil || !ci.Found || ci.PushName != "Peer" {
		t.Errorf("GetContact on the reopened store = %+v, %v", ci, err)
	}
	keys, err := got.PreKeys.GetOrGenPreKeys(ctx(t), 3)
	must(t, "GetOrGenPreKeys(3) on the reopened store", err)
	checkPreKeyIDs(t, "GetOrGenPreKeys(3) on the reopened store", keys, 2, 3, 4)
	uploadedCount(t, b, got, 1)

	// What one writes now, the other reads.
	peer2, lid2 := pnJID(), lidJID()
	must(t, "PutLIDMapping on the reopened store", got.LIDs.PutLIDMapping(ctx(t), lid2, peer2))
	checkLID(t, lidStore(t, a, dev), peer2, lid2)
	must(t, "PutSession on the reopened store", got.Sessions.PutSession(ctx(t), signalAddr(peer2, 0), []byte("from b")))
	if s, err := reload(t, a, dev).Sessions.GetSession(ctx(t), signalAddr(peer2, 0)); err != nil || string(s) != "from b" {
		t.Errorf("the first store reads %q, %v; want the reopened store's session", s, err)
	}
	must(t, "Delete on the reopened store", got.Delete(ctx(t)))
	if d, err := a.GetDevice(ctx(t), *dev.ID); err != nil || d != nil {
		t.Errorf("the first store still has the device deleted by the other: %v, %v", d, err)
	}
}
