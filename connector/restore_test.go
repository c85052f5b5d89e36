package connector

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/sqlite"
)

// TestRestoreSchedule: every token is restored once, at a random start
// within the jitter, in the order of the starts; without jitter, at once.
func TestRestoreSchedule(t *testing.T) {
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = fmt.Sprint("t", i)
	}
	const jitter = 200 * time.Millisecond
	got := restoreSchedule(tokens, jitter)
	seen := map[string]bool{}
	var spread time.Duration
	for i, s := range got {
		if s.at < 0 || s.at >= jitter {
			t.Fatalf("%s starts at %s, outside [0, %s)", s.token, s.at, jitter)
		}
		if i > 0 && s.at < got[i-1].at {
			t.Fatalf("start %d (%s) before start %d (%s)", i, s.at, i-1, got[i-1].at)
		}
		seen[s.token] = true
		spread = max(spread, s.at)
	}
	if len(seen) != len(tokens) || len(got) != len(tokens) {
		t.Fatalf("%d entries, %d distinct tokens, want %d", len(got), len(seen), len(tokens))
	}
	if spread < jitter/2 || got[0].at > jitter/2 {
		t.Fatalf("1,000 starts within %s..%s of a %s jitter: not spread", got[0].at, spread, jitter)
	}
	for _, s := range restoreSchedule(tokens, 0) {
		if s.at != 0 {
			t.Fatalf("without jitter %s starts at %s", s.token, s.at)
		}
	}
}

// warmLIDs reads the LID mappings of the sessions to restore into the key
// store's cache, so that each login's store of its own mapping
// (Client.StoreLIDPNMapping) finds it there instead of writing it again:
// after the warm-up a mapping deleted behind the store's back is still
// answered, from the cache.
func TestWarmLIDsCachesTheSessionsMappings(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keys.db")
	keys, err := sqlite.OpenKeyStore(ctx, path, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	var rows []*shared.Session
	var pns []types.JID
	for i := range 3 {
		dev := keys.NewDevice()
		jid := types.NewADJID(fmt.Sprint(5511900000000+i), 0, 3)
		lid := types.NewJID(fmt.Sprint(100000000+i), types.HiddenUserServer)
		dev.ID, dev.LID = &jid, lid
		dev.Account = &waAdv.ADVSignedDeviceIdentity{
			Details: []byte("d"), AccountSignature: make([]byte, 64),
			AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
		}
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
		if err := keys.LIDMap.PutLIDMapping(ctx, lid, jid.ToNonAD()); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, &shared.Session{Token: fmt.Sprint("t", i), JID: jid.String(), AutoConnect: true})
		pns = append(pns, jid.ToNonAD())
	}
	keys.Close()

	// A fresh process: the store's cache is cold.
	keys, err = sqlite.OpenKeyStore(ctx, path, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	m := New(Config{Container: keys})
	defer m.Close(ctx)
	m.warmLIDs(ctx, rows)

	other, err := sqlite.OpenKeyStore(ctx, path, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	dev, err := other.GetDevice(ctx, types.NewADJID(pns[0].User, 0, 3))
	if err != nil || dev == nil {
		t.Fatalf("GetDevice: %v, %v", dev, err)
	}
	for _, pn := range pns {
		if err := dev.LIDs.PutLIDMapping(ctx, types.NewJID("999"+pn.User[3:], types.HiddenUserServer), pn); err != nil {
			t.Fatal(err)
		}
	}
	for i, pn := range pns {
		lid, err := keys.LIDMap.GetLIDForPN(ctx, pn)
		if want := fmt.Sprint(100000000 + i); err != nil || lid.User != want {
			t.Errorf("LID of %s after the warm-up = %v, %v; want %s from the cache", pn, lid, err, want)
		}
	}
}
