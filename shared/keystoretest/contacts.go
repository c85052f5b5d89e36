package keystoretest

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/keystore"
)

func getContact(t *testing.T, ks keystore.Store, dev *store.Device, user types.JID) types.ContactInfo {
	t.Helper()
	ci, err := reload(t, ks, dev).Contacts.GetContact(ctx(t), user)
	must(t, "GetContact", err)
	return ci
}

// putName calls put and checks its two results: whether the name changed
// and the previous one.
func putName(t *testing.T, what string, put func() (bool, string, error), wantChanged bool, wantPrev string) {
	t.Helper()
	changed, prev, err := put()
	if err != nil || changed != wantChanged || prev != wantPrev {
		t.Errorf("%s = %v, %q, %v; want %v, %q", what, changed, prev, err, wantChanged, wantPrev)
	}
}

// testContactPushName: PutPushName reports a change and the previous name,
// and nothing for the same name, also through another instance.
func testContactPushName(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	user := pnJID()
	if ci := getContact(t, ks, dev, user); ci != (types.ContactInfo{}) {
		t.Errorf("GetContact(unknown) = %+v, want zero", ci)
	}
	c := dev.Contacts
	putName(t, "PutPushName(A)", func() (bool, string, error) { return c.PutPushName(ctx(t), user, "A") }, true, "")
	putName(t, "PutPushName(A) again", func() (bool, string, error) { return c.PutPushName(ctx(t), user, "A") }, false, "")
	putName(t, "PutPushName(B)", func() (bool, string, error) { return c.PutPushName(ctx(t), user, "B") }, true, "A")
	if ci := getContact(t, ks, dev, user); !ci.Found || ci.PushName != "B" {
		t.Errorf("GetContact = %+v, want found with push name B", ci)
	}
	// Another instance reads the stored name, not its own memory.
	c2 := reload(t, ks, dev).Contacts
	putName(t, "PutPushName(B) on another instance", func() (bool, string, error) { return c2.PutPushName(ctx(t), user, "B") }, false, "")
	putName(t, "PutPushName(C) on another instance", func() (bool, string, error) { return c2.PutPushName(ctx(t), user, "C") }, true, "B")
}

// testContactBusinessName: as PutPushName, for business names; the two
// names are independent.
func testContactBusinessName(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	user := pnJID()
	c := dev.Contacts
	_, _, err := c.PutPushName(ctx(t), user, "Push")
	must(t, "PutPushName", err)
	putName(t, "PutBusinessName(X)", func() (bool, string, error) { return c.PutBusinessName(ctx(t), user, "X") }, true, "")
	putName(t, "PutBusinessName(X) again", func() (bool, string, error) { return c.PutBusinessName(ctx(t), user, "X") }, false, "")
	c2 := reload(t, ks, dev).Contacts
	putName(t, "PutBusinessName(Y) on another instance", func() (bool, string, error) { return c2.PutBusinessName(ctx(t), user, "Y") }, true, "X")
	if ci := getContact(t, ks, dev, user); !ci.Found || ci.BusinessName != "Y" || ci.PushName != "Push" {
		t.Errorf("GetContact = %+v, want business name Y and push name Push", ci)
	}
}

// testContactName: PutContactName's third argument is the first name
// (whatsmeow's callers pass first, then full), and it leaves the other
// names alone.
func testContactName(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	user := pnJID()
	_, _, err := dev.Contacts.PutPushName(ctx(t), user, "Push")
	must(t, "PutPushName", err)
	must(t, "PutContactName", dev.Contacts.PutContactName(ctx(t), user, "Ana", "Ana Lima"))
	if ci := getContact(t, ks, dev, user); !ci.Found || ci.FirstName != "Ana" || ci.FullName != "Ana Lima" || ci.PushName != "Push" {
		t.Errorf("GetContact = %+v, want first Ana, full Ana Lima, push Push", ci)
	}
	must(t, "PutContactName again", reload(t, ks, dev).Contacts.PutContactName(ctx(t), user, "Bia", "Bia Lima"))
	if ci := getContact(t, ks, dev, user); ci.FirstName != "Bia" || ci.FullName != "Bia Lima" {
		t.Errorf("GetContact = %+v, want first Bia, full Bia Lima", ci)
	}
}

// testAllContactNames: PutAllContactNames stores many (of duplicates, the
// first in the slice: sqlstore deduplicates keeping it) without touching push names; GetAllContacts lists every
// contact of the device; the writer's own GetContact sees the new names.
func testAllContactNames(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	all, err := dev.Contacts.GetAllContacts(ctx(t))
	if err != nil || len(all) != 0 {
		t.Errorf("GetAllContacts on a new device = %v, %v; want none", all, err)
	}
	pushed := pnJID()
	_, _, err = dev.Contacts.PutPushName(ctx(t), pushed, "Pushed")
	must(t, "PutPushName", err)
	if ci, err := dev.Contacts.GetContact(ctx(t), pushed); err != nil || ci.FirstName != "" { // fills any cache
		t.Fatalf("GetContact = %+v, %v", ci, err)
	}
	var entries []store.ContactEntry
	want := map[types.JID]types.ContactInfo{}
	for i := range 350 { // more than one batch of sqlstore's
		u := pnJID()
		if i == 0 {
			u = pushed
		}
		e := store.ContactEntry{JID: u, FirstName: "F" + u.User, FullName: "Full " + u.User}
		entries = append(entries, e)
		want[u] = types.ContactInfo{Found: true, FirstName: e.FirstName, FullName: e.FullName}
	}
	dup := entries[1]
	dup.FirstName, dup.FullName = "Dup", "Dup Last"
	entries = append(entries, dup)
	p := want[pushed]
	p.PushName = "Pushed"
	want[pushed] = p
	must(t, "PutAllContactNames", dev.Contacts.PutAllContactNames(ctx(t), entries))
	must(t, "PutAllContactNames(none)", dev.Contacts.PutAllContactNames(ctx(t), nil))

	if ci, err := dev.Contacts.GetContact(ctx(t), pushed); err != nil || ci != want[pushed] {
		t.Errorf("the writer's GetContact = %+v, %v; want %+v", ci, err, want[pushed])
	}
	all, err = reload(t, ks, dev).Contacts.GetAllContacts(ctx(t))
	must(t, "GetAllContacts", err)
	if len(all) != len(want) {
		t.Errorf("GetAllContacts: %d contacts, want %d", len(all), len(want))
	}
	for u, w := range want {
		if all[u] != w {
			t.Errorf("GetAllContacts[%s] = %+v, want %+v", u, all[u], w)
		}
	}
}

// testRedactedPhones: PutManyRedactedPhones stores a contact's redacted
// phone without touching its names.
func testRedactedPhones(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	named, fresh := lidJID(), lidJID()
	must(t, "PutContactName", dev.Contacts.PutContactName(ctx(t), named, "Ana", "Ana Lima"))
	if _, err := dev.Contacts.GetContact(ctx(t), named); err != nil {
		t.Fatal(err)
	}
	must(t, "PutManyRedactedPhones", dev.Contacts.PutManyRedactedPhones(ctx(t), []store.RedactedPhoneEntry{
		{JID: named, RedactedPhone: "+55∙∙∙∙∙∙∙∙12"},
		{JID: fresh, RedactedPhone: "+1∙∙∙∙∙∙∙34"},
	}))
	must(t, "PutManyRedactedPhones(none)", dev.Contacts.PutManyRedactedPhones(ctx(t), nil))
	want := types.ContactInfo{Found: true, FirstName: "Ana", FullName: "Ana Lima", RedactedPhone: "+55∙∙∙∙∙∙∙∙12"}
	if ci, err := dev.Contacts.GetContact(ctx(t), named); err != nil || ci != want {
		t.Errorf("the writer's GetContact = %+v, %v; want %+v", ci, err, want)
	}
	if ci := getContact(t, ks, dev, named); ci != want {
		t.Errorf("GetContact = %+v, want %+v", ci, want)
	}
	if ci := getContact(t, ks, dev, fresh); !ci.Found || ci.RedactedPhone != "+1∙∙∙∙∙∙∙34" || ci.FirstName != "" {
		t.Errorf("GetContact(redacted only) = %+v", ci)
	}
}

// testChatSettings: muted-until (forever, a time to the second, or not),
// pinned and archived, each set without resetting the others.
func testChatSettings(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	chat, group := pnJID(), types.NewJID("120363000000000009", types.GroupServer)
	get := func(jid types.JID) types.LocalChatSettings {
		t.Helper()
		s, err := reload(t, ks, dev).ChatSettings.GetChatSettings(ctx(t), jid)
		must(t, "GetChatSettings", err)
		return s
	}
	if s := get(chat); s != (types.LocalChatSettings{}) {
		t.Errorf("GetChatSettings(unknown) = %+v, want zero", s)
	}
	until := time.Date(2031, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	must(t, "PutMutedUntil", dev.ChatSettings.PutMutedUntil(ctx(t), chat, until))
	if s := get(chat); !s.Found || !s.MutedUntil.Equal(until.Truncate(time.Second)) || s.Pinned || s.Archived {
		t.Errorf("GetChatSettings = %+v, want muted until %v (to the second) only", s, until)
	}
	must(t, "PutPinned", dev.ChatSettings.PutPinned(ctx(t), chat, true))
	must(t, "PutArchived", dev.ChatSettings.PutArchived(ctx(t), chat, true))
	if s := get(chat); !s.MutedUntil.Equal(until.Truncate(time.Second)) || !s.Pinned || !s.Archived {
		t.Errorf("GetChatSettings = %+v, want muted, pinned, archived", s)
	}
	must(t, "PutMutedUntil(forever)", dev.ChatSettings.PutMutedUntil(ctx(t), chat, store.MutedForever))
	if s := get(chat); !s.MutedUntil.Equal(store.MutedForever) {
		t.Errorf("MutedUntil = %v, want store.MutedForever", s.MutedUntil)
	}
	must(t, "PutMutedUntil(zero)", dev.ChatSettings.PutMutedUntil(ctx(t), chat, time.Time{}))
	must(t, "PutPinned(false)", dev.ChatSettings.PutPinned(ctx(t), chat, false))
	if s := get(chat); !s.Found || !s.MutedUntil.IsZero() || s.Pinned || !s.Archived {
		t.Errorf("GetChatSettings = %+v, want found, not muted, not pinned, archived", s)
	}
	must(t, "PutArchived group", dev.ChatSettings.PutArchived(ctx(t), group, true))
	if s := get(group); !s.Found || !s.Archived || s.Pinned || !s.MutedUntil.IsZero() {
		t.Errorf("GetChatSettings(group) = %+v, want archived only", s)
	}
}
