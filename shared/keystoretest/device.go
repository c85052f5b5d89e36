package keystoretest

import (
	"slices"
	"testing"

	"github.com/google/uuid"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/keystore"
)

// testDeviceNew: NewDevice stores nothing; it returns fresh keys, and a
// device without a JID cannot be saved.
func testDeviceNew(t *testing.T, ks keystore.Store) {
	a, b := ks.NewDevice(), ks.NewDevice()
	for _, d := range []*store.Device{a, b} {
		if d.ID != nil || d.NoiseKey == nil || d.IdentityKey == nil || d.SignedPreKey == nil || len(d.AdvSecretKey) != 32 {
			t.Fatalf("NewDevice() = %+v: want no ID and every key set", d)
		}
		if d.Container == nil {
			t.Fatal("NewDevice(): no Container, so Save cannot work")
		}
	}
	if samePair(a.NoiseKey, b.NoiseKey) || samePair(a.IdentityKey, b.IdentityKey) {
		t.Error("two NewDevice calls returned the same keys")
	}
	if err := a.Save(ctx(t)); err == nil {
		t.Error("Save of a device without a JID succeeded")
	}
	if err := ks.DeleteDevice(ctx(t), a); err == nil {
		t.Error("DeleteDevice of a device without a JID succeeded")
	}
	all, err := ks.GetAllDevices(ctx(t))
	must(t, "GetAllDevices", err)
	if len(all) != 0 {
		t.Errorf("GetAllDevices() after NewDevice only: %d devices, want 0", len(all))
	}
	got, err := ks.GetDevice(ctx(t), pnJID())
	if err != nil || got != nil {
		t.Errorf("GetDevice(unknown) = %v, %v; want nil, nil", got, err)
	}
}

// checkDevice compares every field that PutDevice stores.
func checkDevice(t *testing.T, got, want *store.Device) {
	t.Helper()
	if got.ID == nil || *got.ID != *want.ID {
		t.Errorf("ID = %v, want %v", got.ID, want.ID)
	}
	if got.LID != want.LID {
		t.Errorf("LID = %v, want %v", got.LID, want.LID)
	}
	if got.RegistrationID != want.RegistrationID {
		t.Errorf("RegistrationID = %d, want %d", got.RegistrationID, want.RegistrationID)
	}
	if !samePair(got.NoiseKey, want.NoiseKey) {
		t.Error("NoiseKey differs")
	}
	if !samePair(got.IdentityKey, want.IdentityKey) {
		t.Error("IdentityKey differs")
	}
	if got.SignedPreKey == nil || !samePair(&got.SignedPreKey.KeyPair, &want.SignedPreKey.KeyPair) || got.SignedPreKey.KeyID != want.SignedPreKey.KeyID ||
		got.SignedPreKey.Signature == nil || *got.SignedPreKey.Signature != *want.SignedPreKey.Signature {
		t.Error("SignedPreKey differs")
	}
	checkBytes(t, "AdvSecretKey", got.AdvSecretKey, want.AdvSecretKey)
	if got.Account == nil {
		t.Fatal("Account = nil")
	}
	checkBytes(t, "Account.Details", got.Account.Details, want.Account.Details)
	checkBytes(t, "Account.AccountSignature", got.Account.AccountSignature, want.Account.AccountSignature)
	checkBytes(t, "Account.AccountSignatureKey", got.Account.AccountSignatureKey, want.Account.AccountSignatureKey)
	checkBytes(t, "Account.DeviceSignature", got.Account.DeviceSignature, want.Account.DeviceSignature)
	if got.Platform != want.Platform || got.BusinessName != want.BusinessName || got.PushName != want.PushName {
		t.Errorf("Platform, BusinessName, PushName = %q, %q, %q; want %q, %q, %q",
			got.Platform, got.BusinessName, got.PushName, want.Platform, want.BusinessName, want.PushName)
	}
	if got.FacebookUUID != want.FacebookUUID {
		t.Errorf("FacebookUUID = %v, want %v", got.FacebookUUID, want.FacebookUUID)
	}
	if got.LIDMigrationTimestamp != want.LIDMigrationTimestamp {
		t.Errorf("LIDMigrationTimestamp = %d, want %d", got.LIDMigrationTimestamp, want.LIDMigrationTimestamp)
	}
	if !got.Initialized || got.Identities == nil || got.Sessions == nil || got.PreKeys == nil || got.SenderKeys == nil ||
		got.AppStateKeys == nil || got.AppState == nil || got.Contacts == nil || got.ChatSettings == nil ||
		got.MsgSecrets == nil || got.PrivacyTokens == nil || got.EventBuffer == nil || got.LIDs == nil || got.Container == nil {
		t.Error("the device's stores are not all set")
	}
}

// testDevicePutGet: every field that PutDevice stores comes back.
func testDevicePutGet(t *testing.T, ks keystore.Store) {
	dev := newDevice(ks)
	dev.BusinessName = "Wago Ltd"
	dev.FacebookUUID = uuid.New()
	dev.LIDMigrationTimestamp = 1717171717
	must(t, "Save", dev.Save(ctx(t)))
	checkDevice(t, reload(t, ks, dev), dev)

	// A device without the optional fields.
	bare := newDevice(ks)
	bare.LID, bare.Platform, bare.PushName = types.EmptyJID, "", ""
	must(t, "Save", bare.Save(ctx(t)))
	checkDevice(t, reload(t, ks, bare), bare)
}

// testDeviceUpdate: saving again updates what whatsmeow changes on a
// logged-in device (LID, platform, names, LID migration time).
func testDeviceUpdate(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	dev.LID = lidJID()
	dev.Platform = "smba"
	dev.BusinessName = "New Business"
	dev.PushName = "New Name"
	dev.LIDMigrationTimestamp = 42
	must(t, "Save again", dev.Save(ctx(t)))
	checkDevice(t, reload(t, ks, dev), dev)
}

// testDeviceGetAll: GetAllDevices lists every saved device, once.
func testDeviceGetAll(t *testing.T, ks keystore.Store) {
	var want []string
	for range 3 {
		dev := saved(t, ks)
		must(t, "Save again", dev.Save(ctx(t)))
		want = append(want, dev.ID.String())
	}
	ks.NewDevice() // never saved
	all, err := ks.GetAllDevices(ctx(t))
	must(t, "GetAllDevices", err)
	var got []string
	for _, d := range all {
		if d.ID == nil {
			t.Fatal("GetAllDevices returned a device without a JID")
		}
		if d.Sessions == nil || d.Container == nil {
			t.Errorf("GetAllDevices: device %s has no stores", d.ID)
		}
		got = append(got, d.ID.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("GetAllDevices() = %v, want %v", got, want)
	}
}

// testDeviceDelete: a deleted device is gone from GetDevice and
// GetAllDevices; Device.Delete clears its JIDs; the others stay.
func testDeviceDelete(t *testing.T, ks keystore.Store) {
	dev, other := saved(t, ks), saved(t, ks)
	jid := *dev.ID
	must(t, "Delete", dev.Delete(ctx(t)))
	if dev.ID != nil || !dev.LID.IsEmpty() {
		t.Errorf("after Delete: ID %v, LID %v; want none", dev.ID, dev.LID)
	}
	got, err := ks.GetDevice(ctx(t), jid)
	if err != nil || got != nil {
		t.Errorf("GetDevice(deleted) = %v, %v; want nil, nil", got, err)
	}
	all, err := ks.GetAllDevices(ctx(t))
	must(t, "GetAllDevices", err)
	if len(all) != 1 || *all[0].ID != *other.ID {
		t.Errorf("GetAllDevices() after a delete: %d devices, want only %s", len(all), other.ID)
	}
	// Deleting what is gone already is no error.
	gone := ks.NewDevice()
	gone.ID = &jid
	if err := ks.DeleteDevice(ctx(t), gone); err != nil {
		t.Errorf("DeleteDevice(already deleted) = %v, want nil", err)
	}
}

// testDeviceDeleteCascades: deleting a device deletes everything stored
// for it; the same JID saved again starts empty.
func testDeviceDeleteCascades(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	peer := pnJID()
	addr := signalAddr(peer, 0)
	fill(t, dev, peer)
	jid := *dev.ID
	must(t, "Delete", dev.Delete(ctx(t)))

	again := newDevice(ks)
	again.ID = &jid
	must(t, "Save again", again.Save(ctx(t)))
	again = reload(t, ks, again)
	sess, err := again.Sessions.GetSession(ctx(t), addr)
	if err != nil || sess != nil {
		t.Errorf("session after delete = %q, %v; want none", sess, err)
	}
	trusted, err := again.Identities.IsTrustedIdentity(ctx(t), addr, [32]byte{9})
	if err != nil || !trusted {
		t.Errorf("identity after delete: trusted %v, %v; want an unknown (trusted) identity", trusted, err)
	}
	checkEmpty(t, again, peer)
}

// fill stores one of everything that belongs to dev about peer (see
// checkEmpty).
func fill(t *testing.T, dev *store.Device, peer types.JID) {
	t.Helper()
	c := ctx(t)
	addr := signalAddr(peer, 0)
	must(t, "PutIdentity", dev.Identities.PutIdentity(c, addr, [32]byte{1}))
	must(t, "PutSession", dev.Sessions.PutSession(c, addr, []byte("session")))
	_, err := dev.PreKeys.GetOrGenPreKeys(c, 2)
	must(t, "GetOrGenPreKeys", err)
	must(t, "MarkPreKeysAsUploaded", dev.PreKeys.MarkPreKeysAsUploaded(c, 1))
	must(t, "PutSenderKey", dev.SenderKeys.PutSenderKey(c, "group@g.us", addr, []byte("sender key")))
	must(t, "PutAppStateSyncKey", dev.AppStateKeys.PutAppStateSyncKey(c, []byte("key-1"), store.AppStateSyncKey{Data: []byte("d"), Fingerprint: []byte("f"), Timestamp: 1}))
	must(t, "PutAppStateVersion", dev.AppState.PutAppStateVersion(c, "regular", 3, [128]byte{1}))
	must(t, "PutAppStateMutationMACs", dev.AppState.PutAppStateMutationMACs(c, "regular", 3, []store.AppStateMutationMAC{{IndexMAC: mac("i"), ValueMAC: mac("v")}}))
	_, _, err = dev.Contacts.PutPushName(c, peer, "Peer")
	must(t, "PutPushName", err)
	must(t, "PutPinned", dev.ChatSettings.PutPinned(c, peer, true))
	must(t, "PutMessageSecret", dev.MsgSecrets.PutMessageSecret(c, peer, peer, "MSG1", []byte("secret")))
	must(t, "PutBufferedEvent", dev.EventBuffer.PutBufferedEvent(c, [32]byte{7}, []byte("plain"), timeUnix(1700000000)))
}

// checkEmpty fails t if dev holds any of what fill stores about peer
// (identities and sessions aside, which the callers check by address).
func checkEmpty(t *testing.T, dev *store.Device, peer types.JID) {
	t.Helper()
	c := ctx(t)
	addr := signalAddr(peer, 0)
	if n, err := dev.PreKeys.UploadedPreKeyCount(c); err != nil || n != 0 {
		t.Errorf("UploadedPreKeyCount = %d, %v; want 0", n, err)
	}
	if k, err := dev.PreKeys.GetPreKey(c, 1); err != nil || k != nil {
		t.Errorf("GetPreKey(1) = %v, %v; want nil", k, err)
	}
	if k, err := dev.SenderKeys.GetSenderKey(c, "group@g.us", addr); err != nil || k != nil {
		t.Errorf("GetSenderKey = %q, %v; want nil", k, err)
	}
	if k, err := dev.AppStateKeys.GetAppStateSyncKey(c, []byte("key-1")); err != nil || k != nil {
		t.Errorf("GetAppStateSyncKey = %v, %v; want nil", k, err)
	}
	if v, h, err := dev.AppState.GetAppStateVersion(c, "regular"); err != nil || v != 0 || h != ([128]byte{}) {
		t.Errorf("GetAppStateVersion = %d, %v; want 0", v, err)
	}
	if m, err := dev.AppState.GetAppStateMutationMAC(c, "regular", mac("i")); err != nil || m != nil {
		t.Errorf("GetAppStateMutationMAC = %q, %v; want nil", m, err)
	}
	if ci, err := dev.Contacts.GetContact(c, peer); err != nil || ci.Found {
		t.Errorf("GetContact = %+v, %v; want not found", ci, err)
	}
	if cs, err := dev.ChatSettings.GetChatSettings(c, peer); err != nil || cs.Found {
		t.Errorf("GetChatSettings = %+v, %v; want not found", cs, err)
	}
	if s, _, err := dev.MsgSecrets.GetMessageSecret(c, peer, peer, "MSG1"); err != nil || s != nil {
		t.Errorf("GetMessageSecret = %q, %v; want nil", s, err)
	}
	if e, err := dev.EventBuffer.GetBufferedEvent(c, [32]byte{7}); err != nil || e != nil {
		t.Errorf("GetBufferedEvent = %v, %v; want nil", e, err)
	}
}

// testDevicesIsolated: what one device stores, another does not see.
func testDevicesIsolated(t *testing.T, ks keystore.Store) {
	a, b := saved(t, ks), saved(t, ks)
	peer := pnJID()
	addr := signalAddr(peer, 0)
	fill(t, a, peer)
	b = reload(t, ks, b)
	if s, err := b.Sessions.GetSession(ctx(t), addr); err != nil || s != nil {
		t.Errorf("another device's session: %q, %v; want nil", s, err)
	}
	if ok, err := b.Sessions.HasSession(ctx(t), addr); err != nil || ok {
		t.Errorf("another device's HasSession = %v, %v; want false", ok, err)
	}
	if ok, err := b.Identities.IsTrustedIdentity(ctx(t), addr, [32]byte{2}); err != nil || !ok {
		t.Errorf("another device's identity is seen: trusted %v, %v", ok, err)
	}
	checkEmpty(t, b, peer)
	all, err := b.Contacts.GetAllContacts(ctx(t))
	if err != nil || len(all) != 0 {
		t.Errorf("another device's GetAllContacts = %v, %v; want none", all, err)
	}
}
