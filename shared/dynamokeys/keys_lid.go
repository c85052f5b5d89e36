package dynamokeys

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
	wtypes "go.mau.fi/whatsmeow/types"
)

// LIDMap is the LID store shared by every device of the table, as
// sqlstore's CachedLIDMap: a mapping is stored in both directions,
// "L#<lid>"/pn -> phone number and "P#<pn>"/lid -> LID, each in its own
// partition, and kept one-to-one (a phone number has one LID and a LID
// one phone number). Lookups go through the same in-process cache,
// negative results included.
type LIDMap struct {
	k *Keys

	mu      sync.RWMutex
	pnToLID map[string]string
	lidToPN map[string]string
}

var _ store.LIDStore = (*LIDMap)(nil)

func lidKey(lid string) itemKey { return itemKey{"L#" + lid, "pn"} }
func pnKey(pn string) itemKey   { return itemKey{"P#" + pn, "lid"} }

func (m *LIDMap) lookup(ctx context.Context, source wtypes.JID, targetServer string, key itemKey, sourceToTarget, targetToSource map[string]string) (wtypes.JID, error) {
	m.mu.RLock()
	target, ok := sourceToTarget[source.User]
	m.mu.RUnlock()
	if !ok {
		m.mu.Lock()
		defer m.mu.Unlock()
		item, err := m.k.get(withoutTxn(ctx), key)
		if err != nil {
			return wtypes.JID{}, wrapErr("get LID mapping", err)
		}
		target = getS(item, attrV)
		sourceToTarget[source.User] = target
		if target != "" {
			targetToSource[target] = source.User
		}
	}
	if target == "" {
		return wtypes.JID{}, nil
	}
	return wtypes.JID{User: target, Device: source.Device, Server: targetServer}, nil
}

// GetLIDForPN returns the LID of pn's user (with pn's device), or an empty
// JID.
func (m *LIDMap) GetLIDForPN(ctx context.Context, pn wtypes.JID) (wtypes.JID, error) {
	if pn.Server != wtypes.DefaultUserServer {
		return wtypes.JID{}, fmt.Errorf("invalid GetLIDForPN call with non-PN JID %s", pn)
	}
	return m.lookup(ctx, pn, wtypes.HiddenUserServer, pnKey(pn.User), m.pnToLID, m.lidToPN)
}

// GetPNForLID returns the phone number of lid's user (with lid's device),
// or an empty JID.
func (m *LIDMap) GetPNForLID(ctx context.Context, lid wtypes.JID) (wtypes.JID, error) {
	if lid.Server != wtypes.HiddenUserServer {
		return wtypes.JID{}, fmt.Errorf("invalid GetPNForLID call with non-LID JID %s", lid)
	}
	return m.lookup(ctx, lid, wtypes.DefaultUserServer, lidKey(lid.User), m.lidToPN, m.pnToLID)
}

// GetManyLIDsForPNs returns the LIDs of the phone numbers it knows (one
// BatchGetItem for those not cached). As sqlstore, a LID read from the
// table comes without device, one from the cache with the phone number's.
func (m *LIDMap) GetManyLIDsForPNs(ctx context.Context, pns []wtypes.JID) (map[wtypes.JID]wtypes.JID, error) {
	if len(pns) == 0 {
		return nil, nil
	}
	result := make(map[wtypes.JID]wtypes.JID, len(pns))
	missing := map[string][]wtypes.JID{}
	var keys []itemKey
	m.mu.RLock()
	for _, pn := range pns {
		if pn.Server != wtypes.DefaultUserServer {
			continue
		}
		if lid, ok := m.pnToLID[pn.User]; ok && lid != "" {
			result[pn] = wtypes.JID{User: lid, Device: pn.Device, Server: wtypes.HiddenUserServer}
		} else {
			if missing[pn.User] == nil {
				keys = append(keys, pnKey(pn.User))
			}
			missing[pn.User] = append(missing[pn.User], pn)
		}
	}
	m.mu.RUnlock()
	if len(keys) == 0 {
		return result, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	found, err := m.k.batchGet(withoutTxn(ctx), keys)
	if err != nil {
		return nil, wrapErr("get LID mappings", err)
	}
	for _, key := range keys {
		item := found[key]
		if item == nil {
			continue
		}
		pn, lid := key.pk[len("P#"):], getS(item, attrV)
		m.pnToLID[pn], m.lidToPN[lid] = lid, pn
		for _, dev := range missing[pn] {
			result[dev] = wtypes.JID{User: lid, Server: wtypes.HiddenUserServer}
		}
	}
	return result, nil
}

// PutLIDMapping stores lid <-> pn, dropping the mappings either had with
// others, in one transaction conditioned on what it read, retried if
// another writer got in between.
func (m *LIDMap) PutLIDMapping(ctx context.Context, lid, pn wtypes.JID) error {
	if lid.Server != wtypes.HiddenUserServer || pn.Server != wtypes.DefaultUserServer {
		return fmt.Errorf("invalid PutLIDMapping call %s/%s", lid, pn)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cached, ok := m.pnToLID[pn.User]; ok && cached == lid.User {
		return nil
	}
	return m.putLocked(withoutTxn(ctx), []store.LIDMapping{{LID: lid, PN: pn}})
}

// PutManyLIDMappings stores the valid mappings not cached already, in
// order (a later one overrides an earlier one with the same LID or phone
// number).
func (m *LIDMap) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var todo []store.LIDMapping
	for _, mp := range mappings {
		if mp.LID.Server != wtypes.HiddenUserServer || mp.PN.Server != wtypes.DefaultUserServer {
			continue
		}
		if cached, ok := m.pnToLID[mp.PN.User]; ok && cached == mp.LID.User {
			continue
		}
		todo = append(todo, mp)
	}
	if len(todo) == 0 {
		return nil
	}
	return m.putLocked(withoutTxn(ctx), todo)
}

// putLocked applies mappings to the stored map: it reads both directions
// of every mapping (BatchGetItem), applies the mappings in order in memory
// as sqlstore's statements would (a mapping replaces those its LID and its
// phone number had), and writes the items that changed: one mapping's
// items together in a transaction, many with BatchWriteItem.
func (m *LIDMap) putLocked(ctx context.Context, mappings []store.LIDMapping) error {
	var keys []itemKey
	read := map[itemKey]bool{}
	for _, mp := range mappings {
		for _, key := range []itemKey{lidKey(mp.LID.User), pnKey(mp.PN.User)} {
			if !read[key] {
				read[key] = true
				keys = append(keys, key)
			}
		}
	}
	found, err := m.k.batchGet(ctx, keys)
	if err != nil {
		return wrapErr("get LID mappings", err)
	}
	state := map[itemKey]string{} // "": no mapping
	val := func(key itemKey) string {
		if v, ok := state[key]; ok {
			return v
		}
		return getS(found[key], attrV)
	}
	for _, mp := range mappings {
		lid, pn := mp.LID.User, mp.PN.User
		if oldLID := val(pnKey(pn)); oldLID != "" && oldLID != lid {
			state[lidKey(oldLID)] = ""
		}
		if oldPN := val(lidKey(lid)); oldPN != "" && oldPN != pn {
			state[pnKey(oldPN)] = ""
		}
		state[lidKey(lid)], state[pnKey(pn)] = pn, lid
	}
	var puts []map[string]types.AttributeValue
	var dels []itemKey
	var tx []types.TransactWriteItem
	for key, v := range state {
		if read[key] && v == getS(found[key], attrV) {
			continue
		}
		if v == "" {
			dels = append(dels, key)
			tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: &m.k.table, Key: key.av()}})
		} else {
			item := key.with(map[string]types.AttributeValue{attrV: str(v)})
			puts = append(puts, item)
			tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: &m.k.table, Item: item}})
		}
	}
	if len(mappings) == 1 {
		err = m.k.transact(ctx, tx)
	} else {
		err = m.k.batchWrite(ctx, puts, dels)
	}
	if err != nil {
		return wrapErr("put LID mappings", err)
	}
	for key, v := range state {
		user := key.pk[len("L#"):]
		byLID := key.sk == "pn"
		switch {
		case byLID && v != "":
			m.lidToPN[user] = v
		case byLID:
			delete(m.lidToPN, user)
		case v != "":
			m.pnToLID[user] = v
		default:
			delete(m.pnToLID, user)
		}
	}
	return nil
}
