package dynamokeys

import (
	"context"
	"fmt"
	"github.com/wago-gw/wago/shared/dynamo/dynamotest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/dynamo"
	"github.com/wago-gw/wago/shared/keystore"
	"github.com/wago-gw/wago/shared/keystoretest"
)

// openTestKeys opens a key store on a new table and deletes the table when
// t ends.
func openTestKeys(t *testing.T, ep, table string) *Keys {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	k, err := OpenKeys(ctx, KeysConfig{Table: table, Endpoint: ep, CreateTable: true})
	if err != nil {
		t.Fatalf("OpenKeys(%q): %v", table, err)
	}
	dynamotest.DropAtEnd(t, k.client, table)
	return k
}

func TestKeyStoreContract(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		return openTestKeys(t, ep, dynamotest.RandomTable(t))
	}, keystoretest.Reopen(func(t *testing.T, ks keystore.Store) keystore.Store {
		k, err := OpenKeys(t.Context(), KeysConfig{Table: ks.(*Keys).Table(), Endpoint: ep})
		if err != nil {
			t.Fatalf("OpenKeys on the same table: %v", err)
		}
		return k
	}))
}

// openCounted opens a second key store on table with a call counter.
func openCounted(t *testing.T, ep, table string) (*Keys, *dynamo.Counter) {
	t.Helper()
	c := &dynamo.Counter{}
	k, err := OpenKeys(t.Context(), KeysConfig{Table: table, Endpoint: ep, ClientOptions: []func(*dynamodb.Options){c.Install}})
	if err != nil {
		t.Fatalf("OpenKeys(%q): %v", table, err)
	}
	c.Reset()
	return k, c
}

// savedDevice stores a new device of k with a JID and returns it.
func savedDevice(t *testing.T, k *Keys, user string) *store.Device {
	t.Helper()
	dev := k.NewDevice()
	jid := types.NewADJID(user, 0, 7)
	dev.ID = &jid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte("details"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := dev.Save(t.Context()); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return dev
}

// Several processes and goroutines opening one fresh table at once all
// succeed: the table's creation and the layout version's conditional write
// tolerate each other.
func TestKeysOpenConcurrently(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	if table := os.Getenv("WAGO_TEST_KEYS_OPEN_TABLE"); table != "" {
		// The helper process of this test: open and report.
		if _, err := OpenKeys(context.Background(), KeysConfig{Table: table, Endpoint: ep, CreateTable: true}); err != nil {
			fmt.Println("open failed:", err)
			os.Exit(1)
		}
		return
	}
	table := dynamotest.RandomTable(t)
	const goroutines, procs = 4, 3
	errs := make(chan error, goroutines+procs)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			<-start
			_, err := OpenKeys(t.Context(), KeysConfig{Table: table, Endpoint: ep, CreateTable: true})
			errs <- err
		})
	}
	for range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKeysOpenConcurrently$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WAGO_TEST_KEYS_OPEN_TABLE="+table)
		wg.Go(func() {
			<-start
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("helper process: %v: %s", err, out)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	k, _ := openCounted(t, ep, table)
	dynamotest.DropAtEnd(t, k.client, table)
	out, err := k.client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: itemKey{schemaPK, schemaSK}.av()})
	if err != nil || getN(out.Item, attrV) != keysSchema {
		t.Errorf("schema item = %v, %v; want version %d", out.Item, err, keysSchema)
	}
}

// A table written by a newer layout is refused, not misread.
func TestKeysRefuseNewerLayout(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	table := dynamotest.RandomTable(t)
	k := openTestKeys(t, ep, table)
	_, err := k.client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table,
		Item: itemKey{schemaPK, schemaSK}.with(map[string]ddbtypes.AttributeValue{attrV: num(keysSchema + 1)})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenKeys(t.Context(), KeysConfig{Table: table, Endpoint: ep, CreateTable: true})
	if err == nil || !strings.Contains(err.Error(), "layout version 2") {
		t.Errorf("OpenKeys on a newer layout: %v, want a refusal", err)
	}
}

// Pre-key IDs come from one atomic counter: two processes' stores of one
// device, generating at once, never hand out the same ID, and the IDs are
// 1, 2, ... as sqlstore's.
func TestKeysPreKeyIDsUniqueAcrossInstances(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	table := dynamotest.RandomTable(t)
	k1 := openTestKeys(t, ep, table)
	k2, _ := openCounted(t, ep, table)
	dev1 := savedDevice(t, k1, "5511999990001")
	dev2, err := k2.GetDevice(t.Context(), *dev1.ID)
	if err != nil || dev2 == nil {
		t.Fatalf("GetDevice on the second store: %v, %v", dev2, err)
	}
	batch, err := dev1.PreKeys.GetOrGenPreKeys(t.Context(), 30)
	if err != nil || len(batch) != 30 || batch[0].KeyID != 1 || batch[29].KeyID != 30 {
		t.Fatalf("GetOrGenPreKeys(30) = %d keys from %v, %v; want 1..30", len(batch), batch[0].KeyID, err)
	}
	const each = 15
	var mu sync.Mutex
	seen := map[uint32]int{}
	var wg sync.WaitGroup
	for _, dev := range []*store.Device{dev1, dev2} {
		for range each {
			wg.Go(func() {
				key, err := dev.PreKeys.GenOnePreKey(t.Context())
				if err != nil {
					t.Errorf("GenOnePreKey: %v", err)
					return
				}
				mu.Lock()
				seen[key.KeyID]++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for id := uint32(31); id <= 30+2*each; id++ {
		if seen[id] != 1 {
			t.Errorf("pre-key ID %d handed out %d times", id, seen[id])
		}
	}
	// The 30 are not uploaded yet: both stores return the same 30.
	again, err := dev2.PreKeys.GetOrGenPreKeys(t.Context(), 30)
	if err != nil || len(again) != 30 || again[0].KeyID != 1 || *again[0].Priv != *batch[0].Priv {
		t.Fatalf("GetOrGenPreKeys(30) on the second store = %d keys, %v; want the same 1..30", len(again), err)
	}
	must(t, dev2.PreKeys.MarkPreKeysAsUploaded(t.Context(), 30))
	if n, err := dev1.PreKeys.UploadedPreKeyCount(t.Context()); err != nil || n != 30+2*each {
		t.Errorf("UploadedPreKeyCount = %d, %v; want %d", n, err, 30+2*each)
	}
	next, err := dev1.PreKeys.GetOrGenPreKeys(t.Context(), 5)
	if err != nil || len(next) != 5 || next[0].KeyID != 31+2*each {
		t.Errorf("GetOrGenPreKeys(5) after the upload = %v, %v; want new keys from %d", next, err, 31+2*each)
	}
}

// Many keys go in as few calls as DynamoDB's batch limits allow: 25 writes
// per BatchWriteItem, 100 reads per BatchGetItem.
func TestKeysBatchLimits(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	table := dynamotest.RandomTable(t)
	k := openTestKeys(t, ep, table)
	k2, counter := openCounted(t, ep, table)
	dev, err := k2.GetDevice(t.Context(), *savedDevice(t, k, "5511999990002").ID)
	if err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	const n = 260
	sessions := map[string][]byte{}
	var addrs []string
	for i := range n {
		addr := fmt.Sprintf("55119%08d:1", i)
		sessions[addr] = []byte("session " + addr)
		addrs = append(addrs, addr)
	}
	must(t, dev.Sessions.PutManySessions(t.Context(), sessions))
	calls, _, _ := counter.Snapshot()
	if calls["BatchWriteItem"] != (n+24)/25 || len(calls) != 1 {
		t.Errorf("PutManySessions(%d) made %v; want %d BatchWriteItem", n, counter, (n+24)/25)
	}
	counter.Reset()
	got, err := dev.Sessions.GetManySessions(t.Context(), append(addrs, "none:1"))
	if err != nil || len(got) != n+1 || got["none:1"] != nil {
		t.Fatalf("GetManySessions = %d, %v", len(got), err)
	}
	for _, addr := range addrs {
		if string(got[addr]) != "session "+addr {
			t.Fatalf("GetManySessions[%s] = %q", addr, got[addr])
		}
	}
	calls, _, _ = counter.Snapshot()
	if calls["BatchGetItem"] != (n+1+99)/100 || len(calls) != 1 {
		t.Errorf("GetManySessions(%d) made %v; want %d BatchGetItem", n+1, counter, (n+1+99)/100)
	}
}

// A decryption transaction is all or nothing, also when DynamoDB refuses
// it: a buffered event that exists already fails the commit, and none of
// the transaction's writes are stored. Reads inside see its writes.
func TestKeysDecryptionTxnAtomic(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	k := openTestKeys(t, ep, dynamotest.RandomTable(t))
	dev := savedDevice(t, k, "5511999990003")
	hash := [32]byte{1}
	must(t, dev.EventBuffer.PutBufferedEvent(t.Context(), hash, []byte("first"), time.Unix(100, 0)))
	must(t, dev.Sessions.PutSession(t.Context(), "a:1", []byte("before")))
	err := dev.EventBuffer.DoDecryptionTxn(t.Context(), func(ctx context.Context) error {
		must(t, dev.Sessions.PutSession(ctx, "a:1", []byte("after")))
		must(t, dev.Identities.DeleteIdentity(ctx, "a:1"))
		if s, err := dev.Sessions.GetSession(ctx, "a:1"); err != nil || string(s) != "after" {
			t.Errorf("GetSession inside the transaction = %q, %v; want its own write", s, err)
		}
		if s, err := dev.Sessions.GetSession(t.Context(), "a:1"); err != nil || string(s) != "before" {
			t.Errorf("GetSession outside the transaction = %q, %v; want the stored session", s, err)
		}
		return dev.EventBuffer.PutBufferedEvent(ctx, hash, []byte("again"), time.Unix(200, 0))
	})
	if err == nil {
		t.Fatal("DoDecryptionTxn with a duplicate buffered event succeeded")
	}
	if s, _ := dev.Sessions.GetSession(t.Context(), "a:1"); string(s) != "before" {
		t.Errorf("session after the failed commit = %q, want %q", s, "before")
	}
	if ev, _ := dev.EventBuffer.GetBufferedEvent(t.Context(), hash); ev == nil || string(ev.Plaintext) != "first" {
		t.Errorf("buffered event after the failed commit = %+v", ev)
	}

	// More than DynamoDB's 100 items per transaction are committed too.
	err = dev.EventBuffer.DoDecryptionTxn(t.Context(), func(ctx context.Context) error {
		for i := range 130 {
			if err := dev.Sessions.PutSession(ctx, fmt.Sprintf("b%d:1", i), []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err)
	if s, _ := dev.Sessions.GetSession(t.Context(), "b129:1"); string(s) != "x" {
		t.Errorf("session 129 of a 130-item transaction = %q", s)
	}
}

// A device deleted halfway (its item gone, a crash before its partition
// was cleared) leaves nothing behind for the next device of the same JID.
func TestKeysInterruptedDeleteIsCleared(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	k := openTestKeys(t, ep, dynamotest.RandomTable(t))
	dev := savedDevice(t, k, "5511999990004")
	must(t, dev.Sessions.PutSession(t.Context(), "c:1", []byte("stale")))
	if _, err := dev.PreKeys.GetOrGenPreKeys(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	must(t, dev.PreKeys.MarkPreKeysAsUploaded(t.Context(), 3))
	// The crash: only the device item is deleted.
	_, err := k.client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &k.table, Key: itemKey{devicesPK, dev.ID.String()}.av()})
	must(t, err)
	again := savedDevice(t, k, "5511999990004")
	if has, err := again.Sessions.HasSession(t.Context(), "c:1"); err != nil || has {
		t.Errorf("HasSession of the new device = %v, %v; want false", has, err)
	}
	if n, err := again.PreKeys.UploadedPreKeyCount(t.Context()); err != nil || n != 0 {
		t.Errorf("UploadedPreKeyCount of the new device = %d, %v; want 0", n, err)
	}
	keys, err := k.keysWithPrefix(t.Context(), devicePK(*again.ID), "")
	if err != nil || len(keys) != 0 {
		t.Errorf("the new device's partition holds %v, %v; want nothing", keys, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Storing a mapping the table already has (as whatsmeow does at every
// login, with an empty cache after a restart) writes nothing and succeeds.
func TestKeysLIDMappingAlreadyStored(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	table := dynamotest.RandomTable(t)
	k := openTestKeys(t, ep, table)
	lid, pn := types.NewJID("123456789", types.HiddenUserServer), types.NewJID("5511999990005", types.DefaultUserServer)
	must(t, k.LIDMap.PutLIDMapping(t.Context(), lid, pn))
	k2, counter := openCounted(t, ep, table)
	must(t, k2.LIDMap.PutLIDMapping(t.Context(), lid, pn))
	if w := counter.Writes(); w != 0 {
		t.Errorf("the second PutLIDMapping made %d writes (%v), want none", w, counter)
	}
	if got, err := k2.LIDMap.GetPNForLID(t.Context(), lid); err != nil || got != pn {
		t.Errorf("GetPNForLID = %v, %v; want %v", got, err, pn)
	}
}

// Saving a stored device again (whatsmeow does on a new LID or push name)
// keeps its keys and everything in its partition.
func TestKeysPutDeviceAgainKeepsData(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	k := openTestKeys(t, ep, dynamotest.RandomTable(t))
	dev := savedDevice(t, k, "5511999990006")
	must(t, dev.Sessions.PutSession(t.Context(), "d:1", []byte("kept")))
	noise := *dev.NoiseKey.Priv
	dev.PushName, dev.NoiseKey = "New name", k.NewDevice().NoiseKey
	must(t, dev.Save(t.Context()))
	got, err := k.GetDevice(t.Context(), *dev.ID)
	if err != nil || got == nil || got.PushName != "New name" || *got.NoiseKey.Priv != noise {
		t.Fatalf("GetDevice after a second Save = %+v, %v; want the new push name and the first noise key", got, err)
	}
	if s, err := got.Sessions.GetSession(t.Context(), "d:1"); err != nil || string(s) != "kept" {
		t.Errorf("session after a second Save = %q, %v; want %q", s, err, "kept")
	}
}
