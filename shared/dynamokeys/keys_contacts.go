package dynamokeys

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
	wtypes "go.mau.fi/whatsmeow/types"
)

// Contacts: C#<JID>#<part>, one item per part that sqlstore updates on its
// own, so that a batch of names (BatchWriteItem has no partial update)
// cannot overwrite push names:
//
//	n  first name (f) and full name (l)
//	p  push name (v)
//	b  business name (v)
//	r  redacted phone (v)
//
// A contact exists (Found) when any part does. The contact cache works as
// sqlstore's, so PutPushName and PutBusinessName answer alike.
const (
	partNames    = "n"
	partPush     = "p"
	partBusiness = "b"
	partRedacted = "r"
	attrFirst    = "f"
	attrFull     = "l"
)

func (d *deviceKeys) contactKey(user wtypes.JID, part string) itemKey {
	return d.key("C#" + user.String() + "#" + part)
}

// setContactPart adds one stored part of a contact to info.
func setContactPart(info *wtypes.ContactInfo, part string, item map[string]types.AttributeValue) {
	switch part {
	case partNames:
		info.FirstName, info.FullName = getS(item, attrFirst), getS(item, attrFull)
	case partPush:
		info.PushName = getS(item, attrV)
	case partBusiness:
		info.BusinessName = getS(item, attrV)
	case partRedacted:
		info.RedactedPhone = getS(item, attrV)
	}
}

// getContact returns the cached contact, reading it on a miss; the caller
// holds contactCacheLock.
func (d *deviceKeys) getContact(ctx context.Context, user wtypes.JID) (*wtypes.ContactInfo, error) {
	if cached, ok := d.contactCache[user]; ok {
		return cached, nil
	}
	prefix := "C#" + user.String() + "#"
	info := &wtypes.ContactInfo{}
	err := d.k.queryPrefix(ctx, d.pk, prefix, func(item map[string]types.AttributeValue) error {
		info.Found = true
		setContactPart(info, strings.TrimPrefix(getS(item, attrSK), prefix), item)
		return nil
	})
	if err != nil {
		return nil, wrapErr("get contact", err)
	}
	d.contactCache[user] = info
	return info, nil
}

// putNamePart stores a push or business name if it differs from the cached
// one, and returns whether it did and the previous name.
func (d *deviceKeys) putNamePart(ctx context.Context, user wtypes.JID, part, name string, field func(*wtypes.ContactInfo) *string) (bool, string, error) {
	d.contactCacheLock.Lock()
	defer d.contactCacheLock.Unlock()
	cached, err := d.getContact(ctx, user)
	if err != nil {
		return false, "", err
	}
	if *field(cached) == name {
		return false, "", nil
	}
	item := d.contactKey(user, part).with(map[string]types.AttributeValue{attrV: str(name)})
	if err := d.k.put(ctx, item, ""); err != nil {
		return false, "", wrapErr("put contact", err)
	}
	previous := *field(cached)
	*field(cached) = name
	cached.Found = true
	return true, previous, nil
}

func (d *deviceKeys) PutPushName(ctx context.Context, user wtypes.JID, pushName string) (bool, string, error) {
	return d.putNamePart(ctx, user, partPush, pushName, func(c *wtypes.ContactInfo) *string { return &c.PushName })
}

func (d *deviceKeys) PutBusinessName(ctx context.Context, user wtypes.JID, businessName string) (bool, string, error) {
	return d.putNamePart(ctx, user, partBusiness, businessName, func(c *wtypes.ContactInfo) *string { return &c.BusinessName })
}

func (d *deviceKeys) namesItem(user wtypes.JID, firstName, fullName string) map[string]types.AttributeValue {
	return d.contactKey(user, partNames).with(map[string]types.AttributeValue{attrFirst: str(firstName), attrFull: str(fullName)})
}

// PutContactName stores the names (the second argument is the first name,
// as in sqlstore and whatsmeow's callers) if they differ from the cached
// ones.
func (d *deviceKeys) PutContactName(ctx context.Context, user wtypes.JID, firstName, fullName string) error {
	d.contactCacheLock.Lock()
	defer d.contactCacheLock.Unlock()
	cached, err := d.getContact(ctx, user)
	if err != nil {
		return err
	}
	if cached.FirstName == firstName && cached.FullName == fullName {
		return nil
	}
	if err := d.k.put(ctx, d.namesItem(user, firstName, fullName), ""); err != nil {
		return wrapErr("put contact name", err)
	}
	cached.FirstName, cached.FullName, cached.Found = firstName, fullName, true
	return nil
}

// PutAllContactNames stores the names with BatchWriteItem (the first entry
// of a JID wins, as in sqlstore) and clears the contact cache.
func (d *deviceKeys) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	if len(contacts) == 0 {
		return nil
	}
	contacts = firstPerJID(d, contacts, func(c store.ContactEntry) wtypes.JID { return c.JID }, "PutAllContactNames")
	items := make([]map[string]types.AttributeValue, len(contacts))
	for i, c := range contacts {
		items[i] = d.namesItem(c.JID, c.FirstName, c.FullName)
	}
	if err := d.k.batchWrite(ctx, items, nil); err != nil {
		return wrapErr("put contact names", err)
	}
	d.contactCacheLock.Lock()
	d.contactCache = map[wtypes.JID]*wtypes.ContactInfo{}
	d.contactCacheLock.Unlock()
	return nil
}

func (d *deviceKeys) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	entries = firstPerJID(d, entries, func(e store.RedactedPhoneEntry) wtypes.JID { return e.JID }, "PutManyRedactedPhones")
	items := make([]map[string]types.AttributeValue, len(entries))
	for i, e := range entries {
		items[i] = d.contactKey(e.JID, partRedacted).with(map[string]types.AttributeValue{attrV: str(e.RedactedPhone)})
	}
	if err := d.k.batchWrite(ctx, items, nil); err != nil {
		return wrapErr("put redacted phones", err)
	}
	d.contactCacheLock.Lock()
	for _, e := range entries {
		if cached, ok := d.contactCache[e.JID]; ok && cached.RedactedPhone == e.RedactedPhone {
			continue
		}
		delete(d.contactCache, e.JID)
	}
	d.contactCacheLock.Unlock()
	return nil
}

// GetContact returns the contact; Found is false if nothing is stored.
func (d *deviceKeys) GetContact(ctx context.Context, user wtypes.JID) (wtypes.ContactInfo, error) {
	d.contactCacheLock.Lock()
	info, err := d.getContact(ctx, user)
	d.contactCacheLock.Unlock()
	if err != nil {
		return wtypes.ContactInfo{}, err
	}
	return *info, nil
}

// GetAllContacts returns every stored contact (one Query) and refreshes the
// cache with them.
func (d *deviceKeys) GetAllContacts(ctx context.Context) (map[wtypes.JID]wtypes.ContactInfo, error) {
	d.contactCacheLock.Lock()
	defer d.contactCacheLock.Unlock()
	infos := map[wtypes.JID]*wtypes.ContactInfo{}
	err := d.k.queryPrefix(ctx, d.pk, "C#", func(item map[string]types.AttributeValue) error {
		sk := strings.TrimPrefix(getS(item, attrSK), "C#")
		cut := strings.LastIndexByte(sk, '#')
		if cut < 0 {
			return nil
		}
		jid, err := wtypes.ParseJID(sk[:cut])
		if err != nil {
			return nil // as sqlstore's scan would fail on it, skip
		}
		info := infos[jid]
		if info == nil {
			info = &wtypes.ContactInfo{Found: true}
			infos[jid] = info
		}
		setContactPart(info, sk[cut+1:], item)
		return nil
	})
	if err != nil {
		return nil, wrapErr("get contacts", err)
	}
	output := make(map[wtypes.JID]wtypes.ContactInfo, len(infos))
	for jid, info := range infos {
		output[jid] = *info
		d.contactCache[jid] = info
	}
	return output, nil
}

// firstPerJID returns the entries without those whose JID an earlier entry
// has (sqlstore's deduplication), logging how many it dropped.
func firstPerJID[T any](d *deviceKeys, entries []T, jid func(T) wtypes.JID, op string) []T {
	seen := make(map[wtypes.JID]bool, len(entries))
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		if !seen[jid(e)] {
			seen[jid(e)] = true
			out = append(out, e)
		}
	}
	if dropped := len(entries) - len(out); dropped > 0 {
		d.k.log.Warnf("%d duplicate contacts found in %s", dropped, op)
	}
	return out
}
