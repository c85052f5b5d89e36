package dynamokeys

import (
	"context"
	"errors"
	"fmt"
	"github.com/wago-gw/wago/shared/dynamo"
	mathRand "math/rand/v2"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	wtypes "go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// The whatsmeow key store's table (one table, apart from the token table)
// has the string hash key pk and the string range key sk:
//
//	pk = "device"       sk = <device JID>   one device: its keys and account
//	pk = "D#<JID>"      sk = <kind>#<key>   the device's signal and app state
//	    I#<address>               identity key (v)
//	    S#<address>               signal session (v)
//	    K#<00000042>              pre-key 42 (v = private key, up = uploaded)
//	    N#prekeys                 pre-key ID counter (n) and upload mark (w)
//	    G#<sender>#<group>        sender key (v)
//	    A#<hex key ID>            app state sync key (v, fp, ts, id)
//	    V#<name>                  app state version (ver, hash)
//	    M#<name>#<hex index MAC>  app state mutation MAC (ver, v)
//	    C#<JID>#n|p|b|r           contact: names (first, full), push name,
//	                              business name, redacted phone (v)
//	    T#<chat JID>              chat settings (muted, pinned, archived)
//	    X#<chat>#<sender>#<id>    message secret (v, sender)
//	    P#<JID>                   privacy token (v, ts)
//	    E#<hex hash>              buffered event (v, sts, its)
//	pk = "L#<lid user>" sk = "pn"           LID -> phone number (v)
//	pk = "P#<pn user>"  sk = "lid"          phone number -> LID (v)
//	pk = "wago"         sk = "schema"       the layout's version (v)
//
// A device's data is one partition, so that deleting the device is one
// Query and batched deletes; the LID map is global (as in sqlstore), one
// partition per mapping and direction.
const (
	attrSK = "sk"
	attrV  = "v"

	devicesPK = "device"
	schemaPK  = "wago"
	schemaSK  = "schema"
	// keysSchema is the version of the layout above. A table written by a
	// newer layout is refused rather than misread.
	keysSchema = 1
)

// KeysConfig says which table holds the whatsmeow keys and how to reach it.
type KeysConfig struct {
	// Table is the DynamoDB table. Required.
	Table string
	// Endpoint and CreateTable are as in Config.
	Endpoint    string
	CreateTable bool
	// Log receives whatsmeow-style log lines; nil: none.
	Log waLog.Logger
	// ClientOptions adjust the DynamoDB client (tests and benchmarks
	// count its calls with a middleware).
	ClientOptions []func(*dynamodb.Options)
}

// Keys is a whatsmeow device container on DynamoDB: the counterpart of
// whatsmeow's sqlstore.Container, with the same results for every method of
// the store interfaces. It is safe for concurrent use, also by several
// processes on one table.
type Keys struct {
	client *dynamodb.Client
	table  string
	log    waLog.Logger
	// LIDMap is the LID store shared by all devices, with the same cache as
	// sqlstore's CachedLIDMap.
	LIDMap *LIDMap
}

var _ store.DeviceContainer = (*Keys)(nil)

// OpenKeys returns the key store on cfg.Table. With cfg.CreateTable it
// creates the table if needed, waits until it is ACTIVE, and records the
// layout's version with a conditional write, so that any number of
// processes may open a fresh table at once.
func OpenKeys(ctx context.Context, cfg KeysConfig) (*Keys, error) {
	if cfg.Table == "" {
		return nil, errors.New("dynamo: open key store: no table name")
	}
	client, err := dynamo.NewClient(ctx, cfg.Endpoint, cfg.ClientOptions...)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = waLog.Noop
	}
	k := &Keys{client: client, table: cfg.Table, log: log}
	k.LIDMap = &LIDMap{k: k, pnToLID: map[string]string{}, lidToPN: map[string]string{}}
	if cfg.CreateTable {
		if err := dynamo.EnsureTable(ctx, client, cfg.Table, attrSK); err != nil {
			return nil, err
		}
	}
	if err := k.checkSchema(ctx, cfg.CreateTable); err != nil {
		return nil, err
	}
	return k, nil
}

// checkSchema writes the layout's version if the table has none (only if
// create) and refuses a table of a newer layout.
func (k *Keys) checkSchema(ctx context.Context, create bool) error {
	key := itemKey{schemaPK, schemaSK}
	if create {
		_, err := k.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           &k.table,
			Item:                key.with(map[string]types.AttributeValue{attrV: num(keysSchema)}),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err == nil {
			return nil
		} else if !dynamo.IsConditionFailed(err) {
			return keyError("record the schema version", err)
		}
	}
	out, err := k.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &k.table, Key: key.av(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return keyError("read the schema version", err)
	}
	if v := getN(out.Item, attrV); v > keysSchema {
		return fmt.Errorf("dynamo: key store table %s has layout version %d; this wago knows up to %d", k.table, v, keysSchema)
	}
	return nil
}

// Client returns the DynamoDB client, for administration and tests.
func (k *Keys) Client() *dynamodb.Client { return k.client }

// Table returns the table's name.
func (k *Keys) Table() string { return k.table }

// Close releases nothing: the SDK client holds no resources to release.
func (k *Keys) Close() error { return nil }

// ErrDeviceIDMustBeSet is returned by PutDevice and DeleteDevice for a
// device whose JID is not known yet, as sqlstore does.
var ErrDeviceIDMustBeSet = errors.New("device JID must be known before accessing database")

// ErrInvalidLength is returned when a stored key has the wrong length.
var ErrInvalidLength = errors.New("database returned byte array with illegal length")

// NewDevice returns a new device with fresh keys; nothing is stored before
// PutDevice (whatsmeow calls it once paired).
func (k *Keys) NewDevice() *store.Device {
	device := &store.Device{
		Log:       k.log,
		Container: k,

		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    keys.NewKeyPair(),
		RegistrationID: mathRand.Uint32(),
		AdvSecretKey:   random.Bytes(32),
	}
	device.SignedPreKey = device.IdentityKey.CreateSignedPreKey(1)
	return device
}

// Device item attributes.
const (
	devJID, devLID, devRegID           = "jid", "lid", "regID"
	devNoise, devIdentity              = "noiseKey", "identityKey"
	devSPK, devSPKID, devSPKSig        = "signedPreKey", "signedPreKeyID", "signedPreKeySig"
	devAdvKey, devAdvDetails           = "advKey", "advDetails"
	devAccSig, devAccSigKey, devDevSig = "advAccountSig", "advAccountSigKey", "advDeviceSig"
	devPlatform, devBusiness, devPush  = "platform", "businessName", "pushName"
	devFBUUID, devLIDMigration         = "facebookUUID", "lidMigrationTS"
)

// GetDevice returns the device with jid, or nil (and no error) if there is
// none.
func (k *Keys) GetDevice(ctx context.Context, jid wtypes.JID) (*store.Device, error) {
	out, err := k.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &k.table, Key: itemKey{devicesPK, jid.String()}.av(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, keyError("get device", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return k.decodeDevice(out.Item)
}

// GetAllDevices returns every device of the table.
func (k *Keys) GetAllDevices(ctx context.Context) ([]*store.Device, error) {
	devices := make([]*store.Device, 0)
	err := k.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(devicesPK)},
	}, func(item map[string]types.AttributeValue) error {
		dev, err := k.decodeDevice(item)
		if err != nil {
			return err
		}
		devices = append(devices, dev)
		return nil
	})
	return devices, err
}

// GetFirstDevice returns the first stored device, or a new one if there is
// none, as sqlstore's does.
func (k *Keys) GetFirstDevice(ctx context.Context) (*store.Device, error) {
	devices, err := k.GetAllDevices(ctx)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return k.NewDevice(), nil
	}
	return devices[0], nil
}

func (k *Keys) decodeDevice(item map[string]types.AttributeValue) (*store.Device, error) {
	jid, err := wtypes.ParseJID(getS(item, devJID))
	if err != nil {
		return nil, fmt.Errorf("dynamo: stored device JID: %w", err)
	}
	var device store.Device
	device.Log = k.log
	device.ID = &jid
	if lid := getS(item, devLID); lid != "" {
		if device.LID, err = wtypes.ParseJID(lid); err != nil {
			return nil, fmt.Errorf("dynamo: stored device LID: %w", err)
		}
	}
	device.RegistrationID = uint32(getN(item, devRegID))
	noisePriv, identityPriv := getB(item, devNoise), getB(item, devIdentity)
	preKeyPriv, preKeySig := getB(item, devSPK), getB(item, devSPKSig)
	if len(noisePriv) != 32 || len(identityPriv) != 32 || len(preKeyPriv) != 32 || len(preKeySig) != 64 {
		return nil, ErrInvalidLength
	}
	device.NoiseKey = keys.NewKeyPairFromPrivateKey(*(*[32]byte)(noisePriv))
	device.IdentityKey = keys.NewKeyPairFromPrivateKey(*(*[32]byte)(identityPriv))
	device.SignedPreKey = &keys.PreKey{
		KeyPair:   *keys.NewKeyPairFromPrivateKey(*(*[32]byte)(preKeyPriv)),
		KeyID:     uint32(getN(item, devSPKID)),
		Signature: (*[64]byte)(preKeySig),
	}
	device.AdvSecretKey = getB(item, devAdvKey)
	device.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             getB(item, devAdvDetails),
		AccountSignature:    getB(item, devAccSig),
		AccountSignatureKey: getB(item, devAccSigKey),
		DeviceSignature:     getB(item, devDevSig),
	}
	device.Platform = getS(item, devPlatform)
	device.BusinessName = getS(item, devBusiness)
	device.PushName = getS(item, devPush)
	if s := getS(item, devFBUUID); s != "" {
		if device.FacebookUUID, err = uuid.Parse(s); err != nil {
			return nil, fmt.Errorf("dynamo: stored facebook UUID: %w", err)
		}
	}
	device.LIDMigrationTimestamp = getN(item, devLIDMigration)
	k.initializeDevice(&device)
	return &device, nil
}

// PutDevice stores device as sqlstore does: a new device is written whole;
// of a stored one only the LID, platform, business name, push name and LID
// migration time change (its keys never do). It is one conditional-free
// UpdateItem, so concurrent puts cannot interleave. When the device is new,
// whatever an interrupted DeleteDevice of the same JID left in its
// partition is deleted first.
func (k *Keys) PutDevice(ctx context.Context, device *store.Device) error {
	if device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	if device.Account == nil || device.SignedPreKey == nil || device.SignedPreKey.Signature == nil {
		return errors.New("dynamo: put device: the device has no account or signed pre-key")
	}
	set := map[string]types.AttributeValue{
		devPlatform: str(device.Platform), devBusiness: str(device.BusinessName),
		devPush: str(device.PushName), devLIDMigration: num(device.LIDMigrationTimestamp),
	}
	keep := map[string]types.AttributeValue{
		devJID: str(device.ID.String()), devRegID: num(int64(device.RegistrationID)),
		devNoise: bin(device.NoiseKey.Priv[:]), devIdentity: bin(device.IdentityKey.Priv[:]),
		devSPK: bin(device.SignedPreKey.Priv[:]), devSPKID: num(int64(device.SignedPreKey.KeyID)),
		devSPKSig: bin(device.SignedPreKey.Signature[:]), devAdvKey: bin(device.AdvSecretKey),
		devAdvDetails: bin(device.Account.Details), devAccSig: bin(device.Account.AccountSignature),
		devAccSigKey: bin(device.Account.AccountSignatureKey), devDevSig: bin(device.Account.DeviceSignature),
	}
	if device.FacebookUUID != uuid.Nil {
		keep[devFBUUID] = str(device.FacebookUUID.String())
	}
	var remove []string
	if device.LID.IsEmpty() {
		remove = append(remove, devLID)
	} else {
		set[devLID] = str(device.LID.String())
	}
	expr, names, values := updateExpr(set, keep, remove)
	out, err := k.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &k.table, Key: itemKey{devicesPK, device.ID.String()}.av(),
		UpdateExpression: &expr, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValues: types.ReturnValueUpdatedOld,
	})
	if err != nil {
		return keyError("put device", err)
	}
	if _, existed := out.Attributes[devJID]; !existed {
		if err := k.purge(ctx, devicePK(*device.ID)); err != nil {
			return err
		}
	}
	if !device.Initialized {
		k.initializeDevice(device)
	}
	return nil
}

// DeleteDevice deletes the device and then, as sqlstore's foreign keys
// cascade, everything of its partition. The device item goes first: once
// it is gone, the device no longer exists for GetDevice, and a partition
// left half deleted by a crash is cleared by the next PutDevice of the JID.
func (k *Keys) DeleteDevice(ctx context.Context, device *store.Device) error {
	if device.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	_, err := k.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &k.table, Key: itemKey{devicesPK, device.ID.String()}.av(),
	})
	if err != nil {
		return keyError("delete device", err)
	}
	return k.purge(ctx, devicePK(*device.ID))
}

func (k *Keys) initializeDevice(device *store.Device) {
	inner := newDeviceKeys(k, *device.ID)
	device.Identities = inner
	device.Sessions = inner
	device.PreKeys = inner
	device.SenderKeys = inner
	device.AppStateKeys = inner
	device.AppState = inner
	device.Contacts = inner
	device.ChatSettings = inner
	device.MsgSecrets = inner
	device.PrivacyTokens = inner
	device.EventBuffer = inner
	device.LIDs = k.LIDMap
	device.Container = k
	device.Initialized = true
}

// devicePK is the partition of a device's data.
func devicePK(jid wtypes.JID) string { return "D#" + jid.String() }

// updateExpr builds "SET a = :a, b = if_not_exists(b, :b) REMOVE c" with
// placeholder names, from set (always written), keep (written only if
// absent) and remove.
func updateExpr(set, keep map[string]types.AttributeValue, remove []string) (string, map[string]string, map[string]types.AttributeValue) {
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var parts []string
	i := 0
	add := func(attr string, v types.AttributeValue, ifAbsent bool) {
		n, p := "#a"+strconv.Itoa(i), ":a"+strconv.Itoa(i)
		i++
		names[n], values[p] = attr, v
		if ifAbsent {
			parts = append(parts, n+" = if_not_exists("+n+", "+p+")")
		} else {
			parts = append(parts, n+" = "+p)
		}
	}
	for _, a := range sortedKeys(set) {
		add(a, set[a], false)
	}
	for _, a := range sortedKeys(keep) {
		add(a, keep[a], true)
	}
	expr := "SET " + joinComma(parts)
	if len(remove) > 0 {
		var rm []string
		for _, a := range remove {
			n := "#a" + strconv.Itoa(i)
			i++
			names[n] = a
			rm = append(rm, n)
		}
		expr += " REMOVE " + joinComma(rm)
	}
	return expr, names, values
}
