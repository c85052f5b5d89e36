// Package keystoretest is the contract every keystore.Store (whatsmeow's
// device store) must meet, written against whatsmeow's store interfaces
// (go.mau.fi/whatsmeow/store) with the semantics of whatsmeow's sqlstore on
// SQLite, the reference. A store's tests call Run with a function that
// opens a fresh, empty store:
//
//	func TestKeyStore(t *testing.T) {
//		keystoretest.Run(t, func(t *testing.T) keystore.Store { ... })
//	}
//
// Every case reads what it wrote back through a device got again from the
// store (GetDevice), not through the instance that wrote it, so an
// implementation cannot pass on what it caches in memory.
package keystoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/wago-gw/wago/shared/keystore"
)

// Run runs the contract suite. open must return a fresh, empty store each
// time it is called and close it (t.Cleanup) when t ends. Run calls it for
// each case that needs an empty store (those that list all devices), and
// once for all the other cases, which share that store as the devices of
// many sessions do (each case with devices and peers of its own). Cases
// run in parallel, so open must be safe to call concurrently.
func Run(t *testing.T, open func(t *testing.T) keystore.Store, opts ...Option) {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	tests := []struct {
		name  string
		fn    func(t *testing.T, ks keystore.Store)
		empty bool // needs an empty store of its own
	}{
		{"DeviceNew", testDeviceNew, true},
		{"DevicePutGet", testDevicePutGet, false},
		{"DeviceUpdate", testDeviceUpdate, false},
		{"DeviceGetAll", testDeviceGetAll, true},
		{"DeviceDelete", testDeviceDelete, true},
		{"DeviceDeleteCascades", testDeviceDeleteCascades, false},
		{"DevicesIsolated", testDevicesIsolated, false},
		{"Identities", testIdentities, false},
		{"DeleteAllIdentities", testDeleteAllIdentities, false},
		{"Sessions", testSessions, false},
		{"ManySessions", testManySessions, false},
		{"DeleteAllSessions", testDeleteAllSessions, false},
		{"MigratePNToLID", testMigratePNToLID, false},
		{"ConcurrentSessions", testConcurrentSessions, false},
		{"PreKeysGenerate", testPreKeysGenerate, false},
		{"PreKeysUpload", testPreKeysUpload, false},
		{"PreKeysRemove", testPreKeysRemove, false},
		{"GenOnePreKey", testGenOnePreKey, false},
		{"SenderKeys", testSenderKeys, false},
		{"AppStateSyncKeys", testAppStateSyncKeys, false},
		{"AppStateVersion", testAppStateVersion, false},
		{"AppStateMutationMACs", testAppStateMutationMACs, false},
		{"ContactPushName", testContactPushName, false},
		{"ContactBusinessName", testContactBusinessName, false},
		{"ContactName", testContactName, false},
		{"AllContactNames", testAllContactNames, false},
		{"RedactedPhones", testRedactedPhones, false},
		{"ChatSettings", testChatSettings, false},
		{"MessageSecrets", testMessageSecrets, false},
		{"MessageSecretsAltJID", testMessageSecretsAltJID, false},
		{"PrivacyTokens", testPrivacyTokens, false},
		{"PrivacyTokensAltJID", testPrivacyTokensAltJID, false},
		{"LIDMap", testLIDMap, false},
		{"LIDMapRemap", testLIDMapRemap, false},
		{"LIDMapMany", testLIDMapMany, false},
		{"LIDMapInvalid", testLIDMapInvalid, false},
		{"EventBuffer", testEventBuffer, false},
		{"DecryptionTxnCommit", testDecryptionTxnCommit, false},
		{"DecryptionTxnRollback", testDecryptionTxnRollback, false},
	}
	// Opened on t: closed when every case has ended.
	common := open(t)
	// libsignal sets its default logger at its first use, unsynchronized:
	// sign once before the cases race to be first.
	keys.NewKeyPair().CreateSignedPreKey(1)
	if o.reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			t.Parallel()
			testReopen(t, open(t), o.reopen)
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.empty {
				tt.fn(t, open(t))
			} else {
				tt.fn(t, common)
			}
		})
	}
}

// Option adds to what Run checks.
type Option func(*options)

type options struct {
	reopen func(t *testing.T, ks keystore.Store) keystore.Store
}

// Reopen gives Run a way to open a second store on the data of one that
// open returned, as another process (a connector that takes a shard over)
// would: reopen returns it, and closes it when t ends. With it Run also
// checks that what one store wrote, the other reads and carries on from,
// without the first one's caches (the Reopen case).
func Reopen(reopen func(t *testing.T, ks keystore.Store) keystore.Store) Option {
	return func(o *options) { o.reopen = reopen }
}

// seq makes phone numbers unique within a test binary; rnd among binaries
// (stores that share one table across runs).
var (
	seq = atomic.Uint32{}
	rnd = rand.Uint32N(90000) + 10000
)

// phone returns a new phone number, distinct from every other it returned.
func phone() string {
	return fmt.Sprintf("55%05d%06d", rnd, seq.Add(1))
}

// pnJID returns a new phone-number user JID (device 0).
func pnJID() types.JID { return types.NewJID(phone(), types.DefaultUserServer) }

// lidJID returns a new LID user JID (device 0).
func lidJID() types.JID { return types.NewJID(phone()[2:], types.HiddenUserServer) }

// signalAddr returns the Signal address (user:device) of jid's device dev,
// the key of identities and sessions.
func signalAddr(jid types.JID, dev uint16) string {
	jid.Device = dev
	return jid.SignalAddress().String()
}

// newDevice returns a new device of ks with a JID, a LID and every field
// that PutDevice stores set, not yet saved.
func newDevice(ks keystore.Store) *store.Device {
	dev := ks.NewDevice()
	jid := pnJID()
	jid.Device = uint16(rand.IntN(90) + 1)
	dev.ID = &jid
	dev.LID = lidJID()
	dev.LID.Device = jid.Device
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details of " + jid.String()),
		AccountSignature:    randBytes(64),
		AccountSignatureKey: randBytes(32),
		DeviceSignature:     randBytes(64),
	}
	dev.Platform = "chrome"
	dev.PushName = "Wago " + jid.User
	return dev
}

// saved returns a new device of ks (newDevice), saved.
func saved(t *testing.T, ks keystore.Store) *store.Device {
	t.Helper()
	dev := newDevice(ks)
	if err := dev.Save(t.Context()); err != nil {
		t.Fatalf("Save(%s): %v", dev.ID, err)
	}
	if !dev.Initialized || dev.Sessions == nil || dev.LIDs == nil {
		t.Fatalf("Save(%s) did not initialize the device's stores", dev.ID)
	}
	return dev
}

// reload gets dev again from ks: a new instance, with no state in memory
// from the one that wrote.
func reload(t *testing.T, ks keystore.Store, dev *store.Device) *store.Device {
	t.Helper()
	got, err := ks.GetDevice(t.Context(), *dev.ID)
	if err != nil {
		t.Fatalf("GetDevice(%s): %v", dev.ID, err)
	}
	if got == nil {
		t.Fatalf("GetDevice(%s) = nil, nil", dev.ID)
	}
	if got == dev {
		t.Fatalf("GetDevice(%s) returned the instance that wrote", dev.ID)
	}
	return got
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.UintN(256))
	}
	return b
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// samePair reports whether a and b hold the same keys.
func samePair(a, b *keys.KeyPair) bool {
	return a != nil && b != nil && a.Pub != nil && b.Pub != nil && a.Priv != nil && b.Priv != nil &&
		*a.Pub == *b.Pub && *a.Priv == *b.Priv
}

func timeUnix(sec int64) time.Time { return time.Unix(sec, 0) }

// mac returns a 32-byte MAC named s (app state MACs are HMAC-SHA256).
func mac(s string) []byte {
	m := sha256.Sum256([]byte(s))
	return m[:]
}
