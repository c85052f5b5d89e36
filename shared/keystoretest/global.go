package keystoretest

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/keystore"
)

// testMessageSecrets: a secret is keyed by chat, sender (without device)
// and message ID; the first one stored stays.
func testMessageSecrets(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	chat, sender := types.NewJID("120363000000000003", types.GroupServer), pnJID()
	senderDev := sender
	senderDev.Device = 12
	get := func(chat, sender types.JID, id string, want []byte, wantSender types.JID) {
		t.Helper()
		got, real, err := reload(t, ks, dev).MsgSecrets.GetMessageSecret(ctx(t), chat, sender, id)
		if err != nil || string(got) != string(want) || (want == nil) != (got == nil) || real != wantSender {
			t.Errorf("GetMessageSecret(%s, %s, %s) = %q, %v, %v; want %q, %v", chat, sender, id, got, real, err, want, wantSender)
		}
	}
	get(chat, sender, "M1", nil, types.EmptyJID)
	must(t, "PutMessageSecret", dev.MsgSecrets.PutMessageSecret(ctx(t), chat, senderDev, "M1", []byte("s1")))
	get(chat, sender, "M1", []byte("s1"), sender)
	get(chat, senderDev, "M1", []byte("s1"), sender)
	get(chat, sender, "M2", nil, types.EmptyJID)
	get(chat, pnJID(), "M1", nil, types.EmptyJID)
	must(t, "PutMessageSecret again", dev.MsgSecrets.PutMessageSecret(ctx(t), chat, sender, "M1", []byte("other")))
	get(chat, sender, "M1", []byte("s1"), sender)

	var batch []store.MessageSecretInsert
	for i := range 20 {
		batch = append(batch, store.MessageSecretInsert{Chat: chat, Sender: senderDev, ID: types.MessageID("B" + string(rune('A'+i))), Secret: []byte{byte(i)}})
	}
	batch = append(batch, store.MessageSecretInsert{Chat: chat, Sender: sender, ID: "M1", Secret: []byte("batch")})
	must(t, "PutMessageSecrets", dev.MsgSecrets.PutMessageSecrets(ctx(t), batch))
	must(t, "PutMessageSecrets(none)", dev.MsgSecrets.PutMessageSecrets(ctx(t), nil))
	for i := range 20 {
		get(chat, sender, "B"+string(rune('A'+i)), []byte{byte(i)}, sender)
	}
	get(chat, sender, "M1", []byte("s1"), sender)
}

// testMessageSecretsAltJID: a secret stored under a phone-number chat and
// sender is found under their LIDs once the LID map knows them, and the
// other way round; the sender answered is the stored one.
func testMessageSecretsAltJID(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	pn, lid := pnJID(), lidJID()
	pn2, lid2 := pnJID(), lidJID()
	must(t, "PutMessageSecret pn", dev.MsgSecrets.PutMessageSecret(ctx(t), pn, pn, "P1", []byte("by pn")))
	must(t, "PutMessageSecret lid", dev.MsgSecrets.PutMessageSecret(ctx(t), lid2, lid2, "L1", []byte("by lid")))
	d := reload(t, ks, dev)
	if s, _, err := d.MsgSecrets.GetMessageSecret(ctx(t), lid, lid, "P1"); err != nil || s != nil {
		t.Errorf("GetMessageSecret by an unmapped LID = %q, %v; want nil", s, err)
	}
	must(t, "PutLIDMapping", dev.LIDs.PutLIDMapping(ctx(t), lid, pn))
	must(t, "PutLIDMapping", dev.LIDs.PutLIDMapping(ctx(t), lid2, pn2))
	d = reload(t, ks, dev)
	if s, real, err := d.MsgSecrets.GetMessageSecret(ctx(t), lid, lid, "P1"); err != nil || string(s) != "by pn" || real != pn {
		t.Errorf("GetMessageSecret by LID = %q, %v, %v; want the PN's secret, sender %v", s, real, err, pn)
	}
	if s, real, err := d.MsgSecrets.GetMessageSecret(ctx(t), pn2, pn2, "L1"); err != nil || string(s) != "by lid" || real != lid2 {
		t.Errorf("GetMessageSecret by PN = %q, %v, %v; want the LID's secret, sender %v", s, real, err, lid2)
	}
}

// testPrivacyTokens: Put (many at once, overwriting) and Get, keyed by the
// user without device; timestamps to the second.
func testPrivacyTokens(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	u1, u2 := pnJID(), lidJID()
	u1dev := u1
	u1dev.Device = 3
	if tok, err := dev.PrivacyTokens.GetPrivacyToken(ctx(t), u1); err != nil || tok != nil {
		t.Errorf("GetPrivacyToken(unknown) = %v, %v; want nil, nil", tok, err)
	}
	ts := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	must(t, "PutPrivacyTokens", dev.PrivacyTokens.PutPrivacyTokens(ctx(t),
		store.PrivacyToken{User: u1dev, Token: []byte("t1"), Timestamp: ts},
		store.PrivacyToken{User: u2, Token: []byte("t2"), Timestamp: ts.Add(time.Hour)}))
	get := func(user types.JID, wantUser types.JID, want string, wantTS time.Time) {
		t.Helper()
		tok, err := reload(t, ks, dev).PrivacyTokens.GetPrivacyToken(ctx(t), user)
		if err != nil || tok == nil {
			t.Fatalf("GetPrivacyToken(%s) = %v, %v", user, tok, err)
		}
		if tok.User != wantUser || string(tok.Token) != want || !tok.Timestamp.Equal(wantTS.Truncate(time.Second)) {
			t.Errorf("GetPrivacyToken(%s) = %v %q %v; want %v %q %v", user, tok.User, tok.Token, tok.Timestamp, wantUser, want, wantTS.Truncate(time.Second))
		}
	}
	get(u1, u1, "t1", ts)
	get(u1dev, u1, "t1", ts)
	get(u2, u2, "t2", ts.Add(time.Hour))
	must(t, "PutPrivacyTokens again", dev.PrivacyTokens.PutPrivacyTokens(ctx(t), store.PrivacyToken{User: u1, Token: []byte("t1b"), Timestamp: ts.Add(2 * time.Hour)}))
	get(u1, u1, "t1b", ts.Add(2*time.Hour))
}

// testPrivacyTokensAltJID: a token stored under a phone number is found by
// its LID once mapped (and the other way round); with both, the newest.
func testPrivacyTokensAltJID(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	pn, lid := pnJID(), lidJID()
	ts := time.Unix(1_750_000_000, 0)
	must(t, "PutPrivacyTokens", dev.PrivacyTokens.PutPrivacyTokens(ctx(t), store.PrivacyToken{User: pn, Token: []byte("pn token"), Timestamp: ts}))
	if tok, err := reload(t, ks, dev).PrivacyTokens.GetPrivacyToken(ctx(t), lid); err != nil || tok != nil {
		t.Errorf("GetPrivacyToken by an unmapped LID = %v, %v; want nil", tok, err)
	}
	must(t, "PutLIDMapping", dev.LIDs.PutLIDMapping(ctx(t), lid, pn))
	tok, err := reload(t, ks, dev).PrivacyTokens.GetPrivacyToken(ctx(t), lid)
	if err != nil || tok == nil || string(tok.Token) != "pn token" {
		t.Fatalf("GetPrivacyToken by LID = %v, %v; want the PN's token", tok, err)
	}
	must(t, "PutPrivacyTokens lid", dev.PrivacyTokens.PutPrivacyTokens(ctx(t), store.PrivacyToken{User: lid, Token: []byte("lid token"), Timestamp: ts.Add(time.Minute)}))
	for _, u := range []types.JID{pn, lid} {
		tok, err := reload(t, ks, dev).PrivacyTokens.GetPrivacyToken(ctx(t), u)
		if err != nil || tok == nil || string(tok.Token) != "lid token" {
			t.Errorf("GetPrivacyToken(%s) = %v, %v; want the newest (the LID's)", u, tok, err)
		}
	}
}

// lidStore returns the LID map as a device got again from ks sees it.
func lidStore(t *testing.T, ks keystore.Store, dev *store.Device) store.LIDStore {
	t.Helper()
	return reload(t, ks, dev).LIDs
}

func checkLID(t *testing.T, lids store.LIDStore, pn, want types.JID) {
	t.Helper()
	got, err := lids.GetLIDForPN(ctx(t), pn)
	if err != nil || got != want {
		t.Errorf("GetLIDForPN(%s) = %v, %v; want %v", pn, got, err, want)
	}
}

func checkPN(t *testing.T, lids store.LIDStore, lid, want types.JID) {
	t.Helper()
	got, err := lids.GetPNForLID(ctx(t), lid)
	if err != nil || got != want {
		t.Errorf("GetPNForLID(%s) = %v, %v; want %v", lid, got, err, want)
	}
}

// withDevice returns jid with device n.
func withDevice(jid types.JID, n uint16) types.JID {
	jid.Device = n
	return jid
}

// testLIDMap: one mapping, read both ways with the asking JID's device;
// unknown answers the empty JID; the map is shared by all devices.
func testLIDMap(t *testing.T, ks keystore.Store) {
	a, b := saved(t, ks), saved(t, ks)
	pn, lid := pnJID(), lidJID()
	checkLID(t, a.LIDs, pn, types.EmptyJID)
	checkPN(t, a.LIDs, lid, types.EmptyJID)
	must(t, "PutLIDMapping", a.LIDs.PutLIDMapping(ctx(t), lid, pn))
	must(t, "PutLIDMapping again", a.LIDs.PutLIDMapping(ctx(t), lid, pn))
	for _, d := range []*store.Device{a, b} {
		lids := lidStore(t, ks, d)
		checkLID(t, lids, pn, lid)
		checkPN(t, lids, lid, pn)
		checkLID(t, lids, withDevice(pn, 4), withDevice(lid, 4))
		checkPN(t, lids, withDevice(lid, 9), withDevice(pn, 9))
		if alt, err := d.GetAltJID(ctx(t), pn); err != nil || alt != lid {
			t.Errorf("GetAltJID(%s) = %v, %v; want %v", pn, alt, err, lid)
		}
	}
}

// testLIDMapRemap: a phone number has one LID: mapping it to another LID
// replaces the first mapping; a LID remapped to another number moves.
func testLIDMapRemap(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	pn, lid1, lid2 := pnJID(), lidJID(), lidJID()
	must(t, "PutLIDMapping", dev.LIDs.PutLIDMapping(ctx(t), lid1, pn))
	must(t, "PutLIDMapping new LID", dev.LIDs.PutLIDMapping(ctx(t), lid2, pn))
	lids := lidStore(t, ks, dev)
	checkLID(t, lids, pn, lid2)
	checkPN(t, lids, lid2, pn)
	pn2 := pnJID()
	must(t, "PutLIDMapping new PN", dev.LIDs.PutLIDMapping(ctx(t), lid2, pn2))
	lids = lidStore(t, ks, dev)
	checkPN(t, lids, lid2, pn2)
	checkLID(t, lids, pn2, lid2)
}

// testLIDMapMany: PutManyLIDMappings stores many and skips invalid
// entries; GetManyLIDsForPNs answers the known phone numbers only.
func testLIDMapMany(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	var maps []store.LIDMapping
	for range 60 {
		maps = append(maps, store.LIDMapping{LID: lidJID(), PN: pnJID()})
	}
	bad := store.LIDMapping{LID: pnJID(), PN: pnJID()} // a PN as the LID
	must(t, "PutManyLIDMappings", dev.LIDs.PutManyLIDMappings(ctx(t), append(maps, bad)))
	must(t, "PutManyLIDMappings(none)", dev.LIDs.PutManyLIDMappings(ctx(t), nil))
	lids := lidStore(t, ks, dev)
	checkPN(t, lids, maps[0].LID, maps[0].PN)
	checkLID(t, lids, maps[59].PN, maps[59].LID)
	checkLID(t, lids, bad.PN, types.EmptyJID)

	unknown := pnJID()
	ask := []types.JID{withDevice(maps[1].PN, 3), maps[2].PN, unknown, maps[3].LID}
	got, err := lidStore(t, ks, dev).GetManyLIDsForPNs(ctx(t), ask)
	must(t, "GetManyLIDsForPNs", err)
	if len(got) != 2 {
		t.Errorf("GetManyLIDsForPNs: %d answers (%v), want 2 (the known phone numbers)", len(got), got)
	}
	for i, want := range map[int]types.JID{0: maps[1].LID, 1: maps[2].LID} {
		// The answer's device is not specified (sqlstore differs between
		// its cache and its table); its user and server are.
		if g, ok := got[ask[i]]; !ok || g.User != want.User || g.Server != types.HiddenUserServer {
			t.Errorf("GetManyLIDsForPNs[%s] = %v (present %v), want %v", ask[i], g, ok, want)
		}
	}
	if empty, err := dev.LIDs.GetManyLIDsForPNs(ctx(t), nil); err != nil || len(empty) != 0 {
		t.Errorf("GetManyLIDsForPNs(none) = %v, %v; want empty", empty, err)
	}
}

// testLIDMapInvalid: the LID map refuses JIDs of the wrong server.
func testLIDMapInvalid(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	pn, lid := pnJID(), lidJID()
	if err := dev.LIDs.PutLIDMapping(ctx(t), pn, lid); err == nil {
		t.Error("PutLIDMapping(pn, lid) (swapped) succeeded")
	}
	if _, err := dev.LIDs.GetLIDForPN(ctx(t), lid); err == nil {
		t.Error("GetLIDForPN(a LID) succeeded")
	}
	if _, err := dev.LIDs.GetPNForLID(ctx(t), pn); err == nil {
		t.Error("GetPNForLID(a PN) succeeded")
	}
}
