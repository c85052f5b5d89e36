package dynamokeys

import (
	"context"
	"errors"
	"fmt"
	"github.com/wago-gw/wago/shared/dynamo"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
	wtypes "go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// deviceKeys holds one device's stores, as sqlstore's SQLStore does, with
// the same in-memory caches (contacts, migrated phone numbers).
type deviceKeys struct {
	k  *Keys
	pk string

	preKeyLock sync.Mutex

	contactCache     map[wtypes.JID]*wtypes.ContactInfo
	contactCacheLock sync.Mutex

	migratedLock sync.Mutex
	migrated     map[string]bool
}

var _ store.AllSessionSpecificStores = (*deviceKeys)(nil)

func newDeviceKeys(k *Keys, jid wtypes.JID) *deviceKeys {
	return &deviceKeys{
		k: k, pk: devicePK(jid),
		contactCache: map[wtypes.JID]*wtypes.ContactInfo{},
		migrated:     map[string]bool{},
	}
}

func (d *deviceKeys) key(sk string) itemKey { return itemKey{d.pk, sk} }

// Identities: I#<address>.

func (d *deviceKeys) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	item := d.key("I#" + address).with(map[string]types.AttributeValue{attrV: bin(key[:])})
	return wrapErr("put identity", d.k.put(ctx, item, ""))
}

func (d *deviceKeys) DeleteAllIdentities(ctx context.Context, phone string) error {
	return wrapErr("delete identities", d.k.deletePrefix(ctx, d.pk, "I#"+phone+":"))
}

func (d *deviceKeys) DeleteIdentity(ctx context.Context, address string) error {
	return wrapErr("delete identity", d.k.del(ctx, d.key("I#"+address)))
}

// IsTrustedIdentity trusts an unknown identity (whatsmeow saves it next),
// and a known one only if it is key.
func (d *deviceKeys) IsTrustedIdentity(ctx context.Context, address string, key [32]byte) (bool, error) {
	item, err := d.k.get(ctx, d.key("I#"+address))
	if err != nil {
		return false, wrapErr("get identity", err)
	} else if item == nil {
		return true, nil
	}
	existing := getB(item, attrV)
	if len(existing) != 32 {
		return false, ErrInvalidLength
	}
	return [32]byte(existing) == key, nil
}

// Sessions: S#<address>.

func (d *deviceKeys) sessionKey(address string) itemKey { return d.key("S#" + address) }

// GetSession returns the session, or nil if there is none.
func (d *deviceKeys) GetSession(ctx context.Context, address string) ([]byte, error) {
	item, err := d.k.get(ctx, d.sessionKey(address))
	if err != nil || item == nil {
		return nil, wrapErr("get session", err)
	}
	return getB(item, attrV), nil
}

func (d *deviceKeys) HasSession(ctx context.Context, address string) (bool, error) {
	item, err := d.k.get(ctx, d.sessionKey(address))
	return item != nil, wrapErr("get session", err)
}

// GetManySessions reads the sessions with BatchGetItem; the result has
// every address, nil for those without a session (nil for no addresses).
func (d *deviceKeys) GetManySessions(ctx context.Context, addresses []string) (map[string][]byte, error) {
	if len(addresses) == 0 {
		return nil, nil
	}
	keys := make([]itemKey, len(addresses))
	for i, addr := range addresses {
		keys[i] = d.sessionKey(addr)
	}
	found, err := d.k.batchGet(ctx, keys)
	if err != nil {
		return nil, wrapErr("get sessions", err)
	}
	result := make(map[string][]byte, len(addresses))
	for i, addr := range addresses {
		result[addr] = getB(found[keys[i]], attrV)
	}
	return result, nil
}

func (d *deviceKeys) sessionItem(address string, session []byte) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{}
	if session != nil {
		item[attrV] = bin(session)
	}
	return d.sessionKey(address).with(item)
}

func (d *deviceKeys) PutSession(ctx context.Context, address string, session []byte) error {
	return wrapErr("put session", d.k.put(ctx, d.sessionItem(address, session), ""))
}

// PutManySessions writes the sessions with BatchWriteItem.
func (d *deviceKeys) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	items := make([]map[string]types.AttributeValue, 0, len(sessions))
	for addr, sess := range sessions {
		items = append(items, d.sessionItem(addr, sess))
	}
	return wrapErr("put sessions", d.k.batchWrite(ctx, items, nil))
}

func (d *deviceKeys) DeleteAllSessions(ctx context.Context, phone string) error {
	return wrapErr("delete sessions", d.k.deletePrefix(ctx, d.pk, "S#"+phone+":"))
}

func (d *deviceKeys) DeleteSession(ctx context.Context, address string) error {
	return wrapErr("delete session", d.k.del(ctx, d.sessionKey(address)))
}

// MigratePNToLID moves the sessions, identity keys and sender keys of pn's
// devices to lid's, once per phone number and process (as sqlstore).
func (d *deviceKeys) MigratePNToLID(ctx context.Context, pn, lid wtypes.JID) error {
	pnSignal := pn.SignalAddressUser()
	d.migratedLock.Lock()
	done := d.migrated[pnSignal]
	d.migrated[pnSignal] = true
	d.migratedLock.Unlock()
	if done {
		return nil
	}
	lidSignal := lid.SignalAddressUser()
	var puts []map[string]types.AttributeValue
	var dels []itemKey
	counts := map[string]int{}
	for _, kind := range []string{"S#", "I#", "G#"} {
		from := kind + pnSignal + ":"
		err := d.k.queryPrefix(ctx, d.pk, from, func(item map[string]types.AttributeValue) error {
			old := keyOf(item)
			moved := make(map[string]types.AttributeValue, len(item))
			for a, v := range item {
				moved[a] = v
			}
			moved[attrSK] = str(kind + lidSignal + ":" + strings.TrimPrefix(old.sk, from))
			puts = append(puts, moved)
			dels = append(dels, old)
			counts[kind]++
			return nil
		})
		if err != nil {
			return wrapErr("migrate "+pnSignal, err)
		}
	}
	if err := d.k.batchWrite(ctx, puts, dels); err != nil {
		return wrapErr("migrate "+pnSignal, err)
	}
	if len(puts) > 0 {
		d.k.log.Infof("Migrated %d sessions, %d identity keys and %d sender keys from %s to %s", counts["S#"], counts["I#"], counts["G#"], pnSignal, lidSignal)
	} else {
		d.k.log.Debugf("No sessions or sender keys found to migrate from %s to %s", pnSignal, lidSignal)
	}
	return nil
}

// Pre-keys: K#<8-digit ID> (v = private key; up = true for a key generated
// as already uploaded), and the counter item N#prekeys: n, the last ID
// allocated, and w, the upload mark.
//
// IDs come from the counter, advanced atomically by UpdateItem, so that two
// processes never hand out one ID; sqlstore takes MAX(key_id)+1, the same
// sequence (1, 2, ...) except that it would reuse the IDs of removed keys
// above the highest remaining one. Because IDs only grow, "every key up to
// ID x is uploaded" (MarkPreKeysAsUploaded) is the single number w instead
// of a flag written on each key.
const (
	preKeyCounterSK = "N#prekeys"
	preKeyMaxID     = 16777215 // sqlstore's CHECK (key_id < 16777216)
	attrUploaded    = "up"
	attrCounter     = "n"
	attrMark        = "w"
)

func preKeySK(id uint32) string { return fmt.Sprintf("K#%08d", id) }

func (d *deviceKeys) preKeyItem(key *keys.PreKey, uploaded bool) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{attrV: bin(key.Priv[:])}
	if uploaded {
		item[attrUploaded] = boolean(true)
	}
	return d.key(preKeySK(key.KeyID)).with(item)
}

// allocPreKeyIDs reserves count consecutive IDs and returns the first.
func (d *deviceKeys) allocPreKeyIDs(ctx context.Context, count uint32) (uint32, error) {
	out, err := d.k.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.k.table, Key: d.key(preKeyCounterSK).av(),
		UpdateExpression:    aws.String("SET n = if_not_exists(n, :zero) + :c"),
		ConditionExpression: aws.String("attribute_not_exists(n) OR n <= :max"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": num(0), ":c": num(int64(count)), ":max": num(preKeyMaxID - int64(count)),
		},
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if dynamo.IsConditionFailed(err) {
		return 0, errors.New("pre-key IDs exhausted")
	} else if err != nil {
		return 0, err
	}
	return uint32(getN(out.Attributes, attrCounter)) - count + 1, nil
}

// preKeyCounter returns the counter item's n and w.
func (d *deviceKeys) preKeyCounter(ctx context.Context) (last, mark uint32, err error) {
	item, err := d.k.get(ctx, d.key(preKeyCounterSK))
	return uint32(getN(item, attrCounter)), uint32(getN(item, attrMark)), err
}

func (d *deviceKeys) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	d.preKeyLock.Lock()
	defer d.preKeyLock.Unlock()
	id, err := d.allocPreKeyIDs(ctx, 1)
	if err != nil {
		return nil, wrapErr("generate pre-key", err)
	}
	key := keys.NewPreKey(id)
	return key, wrapErr("put pre-key", d.k.put(withoutTxn(ctx), d.preKeyItem(key, true), ""))
}

var errStop = errors.New("stop")

// GetOrGenPreKeys returns count keys not uploaded yet: the stored ones,
// lowest ID first, then new ones.
func (d *deviceKeys) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	d.preKeyLock.Lock()
	defer d.preKeyLock.Unlock()
	_, mark, err := d.preKeyCounter(ctx)
	if err != nil {
		return nil, wrapErr("get pre-key counter", err)
	}
	newKeys := make([]*keys.PreKey, 0, count)
	if count > 0 {
		err = d.k.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
			FilterExpression:       aws.String("attribute_not_exists(up)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(d.pk), ":from": str(preKeySK(mark + 1)), ":to": str(preKeySK(preKeyMaxID)),
			},
		}, func(item map[string]types.AttributeValue) error {
			key, err := decodePreKey(item)
			if err != nil {
				return err
			}
			newKeys = append(newKeys, key)
			if uint32(len(newKeys)) == count {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			return nil, wrapErr("query pre-keys", err)
		}
	}
	if missing := count - uint32(len(newKeys)); missing > 0 {
		first, err := d.allocPreKeyIDs(ctx, missing)
		if err != nil {
			return nil, wrapErr("generate pre-keys", err)
		}
		items := make([]map[string]types.AttributeValue, 0, missing)
		for id := first; id < first+missing; id++ {
			key := keys.NewPreKey(id)
			newKeys = append(newKeys, key)
			items = append(items, d.preKeyItem(key, false))
		}
		if err := d.k.batchWrite(withoutTxn(ctx), items, nil); err != nil {
			return nil, wrapErr("put pre-keys", err)
		}
	}
	return newKeys, nil
}

func decodePreKey(item map[string]types.AttributeValue) (*keys.PreKey, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(getS(item, attrSK), "K#"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pre-key item %q: %w", getS(item, attrSK), err)
	}
	priv := getB(item, attrV)
	if len(priv) != 32 {
		return nil, ErrInvalidLength
	}
	return &keys.PreKey{KeyPair: *keys.NewKeyPairFromPrivateKey([32]byte(priv)), KeyID: uint32(id)}, nil
}

// GetPreKey returns the key, or nil if there is none.
func (d *deviceKeys) GetPreKey(ctx context.Context, id uint32) (*keys.PreKey, error) {
	item, err := d.k.get(ctx, d.key(preKeySK(id)))
	if err != nil || item == nil {
		return nil, wrapErr("get pre-key", err)
	}
	return decodePreKey(item)
}

func (d *deviceKeys) RemovePreKey(ctx context.Context, id uint32) error {
	return wrapErr("remove pre-key", d.k.del(ctx, d.key(preKeySK(id))))
}

// MarkPreKeysAsUploaded marks every key up to upToID uploaded: it raises
// the upload mark (never past the last ID allocated, as sqlstore marks only
// existing keys).
func (d *deviceKeys) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	last, mark, err := d.preKeyCounter(ctx)
	if err != nil {
		return wrapErr("get pre-key counter", err)
	}
	upTo := min(upToID, last)
	if upTo <= mark {
		return nil
	}
	_, err = d.k.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.k.table, Key: d.key(preKeyCounterSK).av(),
		UpdateExpression:          aws.String("SET w = :u"),
		ConditionExpression:       aws.String("attribute_not_exists(w) OR w < :u"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": num(int64(upTo))},
	})
	if dynamo.IsConditionFailed(err) {
		err = nil // another process marked as far or further
	}
	return wrapErr("mark pre-keys uploaded", err)
}

// UploadedPreKeyCount counts the stored keys up to the upload mark and
// those generated as uploaded above it.
func (d *deviceKeys) UploadedPreKeyCount(ctx context.Context) (int, error) {
	_, mark, err := d.preKeyCounter(ctx)
	if err != nil {
		return 0, wrapErr("get pre-key counter", err)
	}
	below, err := d.k.count(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(d.pk), ":from": str(preKeySK(0)), ":to": str(preKeySK(mark)),
		},
	})
	if err != nil {
		return 0, wrapErr("count pre-keys", err)
	}
	above, err := d.k.count(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		FilterExpression:       aws.String("up = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(d.pk), ":from": str(preKeySK(mark + 1)), ":to": str(preKeySK(preKeyMaxID)), ":t": boolean(true),
		},
	})
	return below + above, wrapErr("count pre-keys", err)
}

// count runs a Query with Select COUNT over all pages.
func (k *Keys) count(ctx context.Context, in *dynamodb.QueryInput) (int, error) {
	in.TableName, in.ConsistentRead, in.Select = &k.table, aws.Bool(true), types.SelectCount
	total := 0
	for {
		out, err := k.client.Query(ctx, in)
		if err != nil {
			return 0, err
		}
		total += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return total, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Sender keys: G#<sender>#<group> (sender first, so that MigratePNToLID
// finds a phone number's keys by prefix).

func (d *deviceKeys) senderKey(group, user string) itemKey { return d.key("G#" + user + "#" + group) }

func (d *deviceKeys) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	item := d.senderKey(group, user).with(map[string]types.AttributeValue{attrV: bin(session)})
	return wrapErr("put sender key", d.k.put(ctx, item, ""))
}

// GetSenderKey returns the sender key, or nil if there is none.
func (d *deviceKeys) GetSenderKey(ctx context.Context, group, user string) ([]byte, error) {
	item, err := d.k.get(ctx, d.senderKey(group, user))
	if err != nil || item == nil {
		return nil, wrapErr("get sender key", err)
	}
	return getB(item, attrV), nil
}
