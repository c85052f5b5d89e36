package dynamokeys

import (
	"context"
	"encoding/hex"
	"github.com/wago-gw/wago/shared/dynamo"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
)

// App state sync keys: A#<hex key ID> (v = data, fp, ts, id).

const (
	attrFingerprint = "fp"
	attrTimestamp   = "ts"
	attrID          = "id"
	attrVersion     = "ver"
	attrHash        = "hash"
)

func (d *deviceKeys) syncKeyKey(id []byte) itemKey { return d.key("A#" + hex.EncodeToString(id)) }

// PutAppStateSyncKey stores the key unless a stored one of the same ID is
// as new or newer.
func (d *deviceKeys) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	item := d.syncKeyKey(id).with(map[string]types.AttributeValue{
		attrV: bin(key.Data), attrFingerprint: bin(key.Fingerprint), attrTimestamp: num(key.Timestamp), attrID: bin(id),
	})
	_, err := d.k.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &d.k.table, Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR ts < :ts"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":ts": num(key.Timestamp)},
	})
	if dynamo.IsConditionFailed(err) {
		err = nil
	}
	return wrapErr("put app state sync key", err)
}

// GetAppStateSyncKey returns the key, or nil if there is none.
func (d *deviceKeys) GetAppStateSyncKey(ctx context.Context, id []byte) (*store.AppStateSyncKey, error) {
	item, err := d.k.get(ctx, d.syncKeyKey(id))
	if err != nil || item == nil {
		return nil, wrapErr("get app state sync key", err)
	}
	return &store.AppStateSyncKey{Data: getB(item, attrV), Fingerprint: getB(item, attrFingerprint), Timestamp: getN(item, attrTimestamp)}, nil
}

// GetLatestAppStateSyncKeyID returns the ID of the newest key, or nil.
func (d *deviceKeys) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	var latest []byte
	var latestTS int64
	err := d.k.queryPrefix(ctx, d.pk, "A#", func(item map[string]types.AttributeValue) error {
		if ts := getN(item, attrTimestamp); latest == nil || ts > latestTS {
			latest, latestTS = getB(item, attrID), ts
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("get latest app state sync key", err)
	}
	return latest, nil
}

// App state versions: V#<name> (ver, hash); mutation MACs:
// M#<name>#<hex index MAC> (ver, v). sqlstore keeps a row per version of
// an index MAC and reads the highest; whatsmeow writes a collection's
// patches in version order, so one item per index MAC, overwritten by the
// newer version, gives the same reads and deletes.

func (d *deviceKeys) versionKey(name string) itemKey { return d.key("V#" + name) }
func (d *deviceKeys) macKey(name string, indexMAC []byte) itemKey {
	return d.key("M#" + name + "#" + hex.EncodeToString(indexMAC))
}

func (d *deviceKeys) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	item := d.versionKey(name).with(map[string]types.AttributeValue{attrVersion: num(int64(version)), attrHash: bin(hash[:])})
	return wrapErr("put app state version", d.k.put(ctx, item, ""))
}

// GetAppStateVersion returns the version and hash; 0 and a zero hash if
// there is none (the initial state).
func (d *deviceKeys) GetAppStateVersion(ctx context.Context, name string) (version uint64, hash [128]byte, err error) {
	item, err := d.k.get(ctx, d.versionKey(name))
	if err != nil || item == nil {
		return 0, hash, wrapErr("get app state version", err)
	}
	h := getB(item, attrHash)
	if len(h) != 128 {
		return 0, hash, ErrInvalidLength
	}
	return uint64(getN(item, attrVersion)), [128]byte(h), nil
}

// DeleteAppStateVersion deletes the version and, as sqlstore's foreign key
// cascades, the collection's mutation MACs.
func (d *deviceKeys) DeleteAppStateVersion(ctx context.Context, name string) error {
	if err := d.k.del(ctx, d.versionKey(name)); err != nil {
		return wrapErr("delete app state version", err)
	}
	return wrapErr("delete app state mutation MACs", d.k.deletePrefix(ctx, d.pk, "M#"+name+"#"))
}

func (d *deviceKeys) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	if len(mutations) == 0 {
		return nil
	}
	items := make([]map[string]types.AttributeValue, len(mutations))
	for i, m := range mutations {
		items[i] = d.macKey(name, m.IndexMAC).with(map[string]types.AttributeValue{attrVersion: num(int64(version)), attrV: bin(m.ValueMAC)})
	}
	return wrapErr("put app state mutation MACs", d.k.batchWrite(ctx, items, nil))
}

func (d *deviceKeys) DeleteAppStateMutationMACs(ctx context.Context, name string, indexMACs [][]byte) error {
	if len(indexMACs) == 0 {
		return nil
	}
	keys := make([]itemKey, len(indexMACs))
	for i, mac := range indexMACs {
		keys[i] = d.macKey(name, mac)
	}
	return wrapErr("delete app state mutation MACs", d.k.batchWrite(ctx, nil, keys))
}

// GetAppStateMutationMAC returns the value MAC, or nil if there is none.
func (d *deviceKeys) GetAppStateMutationMAC(ctx context.Context, name string, indexMAC []byte) ([]byte, error) {
	item, err := d.k.get(ctx, d.macKey(name, indexMAC))
	if err != nil || item == nil {
		return nil, wrapErr("get app state mutation MAC", err)
	}
	return getB(item, attrV), nil
}
