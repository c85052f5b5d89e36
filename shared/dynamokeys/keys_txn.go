package dynamokeys

import (
	"context"
	"encoding/hex"
	"github.com/wago-gw/wago/shared/dynamo"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
)

// A decryption transaction (EventBuffer.DoDecryptionTxn): whatsmeow
// decrypts a message (which advances the signal session, may consume a
// pre-key and trust an identity) and stores the plaintext in the event
// buffer, and needs all of it stored or none, or a crash in between would
// leave a ratchet that can no longer decrypt the message WhatsApp sends
// again. SQL has interactive transactions; DynamoDB does not, so the writes
// made with the transaction's context (puts and deletes of whole items) are
// kept in memory, reads through that context see them, and they are
// committed together with TransactWriteItems when fn succeeds, or dropped
// when it fails. A transaction of more than 100 items (DynamoDB's limit;
// one message touches a handful) is committed in several parts.
type txn struct {
	mu     sync.Mutex
	writes map[itemKey]*txnWrite
	order  []itemKey
}

// txnWrite is a put of item (if cond holds), or a delete when item is nil.
type txnWrite struct {
	item map[string]types.AttributeValue
	cond string
}

type txnCtxKey struct{}

func txnOf(ctx context.Context) *txn {
	t, _ := ctx.Value(txnCtxKey{}).(*txn)
	return t
}

// withoutTxn returns ctx detached from its transaction, for writes that must
// happen now.
func withoutTxn(ctx context.Context) context.Context {
	if txnOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, txnCtxKey{}, (*txn)(nil))
}

func (t *txn) record(key itemKey, w *txnWrite) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.writes[key]; ok {
		if w.item != nil && w.cond == "" && prev.item != nil {
			// A put over the transaction's own conditional put keeps
			// the condition on the stored item.
			w.cond = prev.cond
		}
	} else {
		t.order = append(t.order, key)
	}
	t.writes[key] = w
}

// lookup returns the transaction's write of key: the item put (nil for a
// delete) and true, or false if it wrote none.
func (t *txn) lookup(key itemKey) (map[string]types.AttributeValue, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.writes[key]
	if !ok {
		return nil, false
	}
	return w.item, true
}

// DoDecryptionTxn runs fn in a decryption transaction (see txn). Inside
// another transaction, fn joins it, as in sqlstore.
func (d *deviceKeys) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	if txnOf(ctx) != nil {
		return fn(ctx)
	}
	t := &txn{writes: map[itemKey]*txnWrite{}}
	if err := fn(context.WithValue(ctx, txnCtxKey{}, t)); err != nil {
		return err
	}
	return d.k.commit(ctx, t)
}

// commit writes t's writes with TransactWriteItems, retrying when another
// transaction conflicts. A failed condition fails the commit, as the SQL
// statement's constraint would fail the SQL transaction.
func (k *Keys) commit(ctx context.Context, t *txn) error {
	t.mu.Lock()
	items := make([]types.TransactWriteItem, 0, len(t.order))
	for _, key := range t.order {
		w := t.writes[key]
		switch {
		case w.item == nil:
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &k.table, Key: key.av()}})
		case w.cond != "":
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &k.table, Item: w.item, ConditionExpression: aws.String(w.cond)}})
		default:
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &k.table, Item: w.item}})
		}
	}
	t.mu.Unlock()
	for len(items) > 0 {
		n := min(len(items), transactMax)
		if err := k.transact(ctx, items[:n]); err != nil {
			return keyError("commit the decryption transaction", err)
		}
		items = items[n:]
	}
	return nil
}

// transact runs one TransactWriteItems call, retrying conflicts; no items
// is no call.
func (k *Keys) transact(ctx context.Context, items []types.TransactWriteItem) error {
	if len(items) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		var err error
		if len(items) == 1 {
			err = k.single(ctx, items[0])
		} else {
			_, err = k.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		}
		if err == nil {
			return nil
		}
		isCancel, condFailed, conflict := dynamo.Cancelled(err)
		if !isCancel || condFailed || !conflict || attempt >= dynamo.ConflictRetries {
			return err
		}
		if err := dynamo.Backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// single runs a one-item transaction as a plain write (cheaper: a
// transactional write costs twice the capacity).
func (k *Keys) single(ctx context.Context, it types.TransactWriteItem) error {
	var err error
	switch {
	case it.Put != nil:
		_, err = k.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &k.table, Item: it.Put.Item, ConditionExpression: it.Put.ConditionExpression})
	case it.Delete != nil:
		_, err = k.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &k.table, Key: it.Delete.Key})
	}
	return err
}

// Event buffer items.
const (
	bufServerTS = "sts" // seconds
	bufInsertTS = "its" // milliseconds
	// bufferKeep is how long a buffered hash is kept: WhatsApp's servers
	// buffer events for 14 days.
	bufferKeep = 14 * 24 * time.Hour
)

func (d *deviceKeys) bufKey(hash [32]byte) itemKey { return d.key("E#" + hex.EncodeToString(hash[:])) }

// GetBufferedEvent returns the buffered event, or nil.
func (d *deviceKeys) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*store.BufferedEvent, error) {
	item, err := d.k.get(ctx, d.bufKey(ciphertextHash))
	if err != nil || item == nil {
		return nil, wrapErr("get buffered event", err)
	}
	return &store.BufferedEvent{
		Plaintext:  getB(item, attrV),
		ServerTime: time.Unix(getN(item, bufServerTS), 0),
		InsertTime: time.UnixMilli(getN(item, bufInsertTS)),
	}, nil
}

// PutBufferedEvent inserts the event; as sqlstore's INSERT, it fails if the
// hash is already buffered.
func (d *deviceKeys) PutBufferedEvent(ctx context.Context, ciphertextHash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	item := map[string]types.AttributeValue{
		bufServerTS: num(serverTimestamp.Unix()), bufInsertTS: num(time.Now().UnixMilli()),
	}
	if plaintext != nil {
		item[attrV] = bin(plaintext)
	}
	err := d.k.put(ctx, d.bufKey(ciphertextHash).with(item), "attribute_not_exists(pk)")
	return wrapErr("put buffered event", err)
}

// ClearBufferedEventPlaintext removes the plaintext of a buffered event
// (keeping its hash); nothing if there is none.
func (d *deviceKeys) ClearBufferedEventPlaintext(ctx context.Context, ciphertextHash [32]byte) error {
	key := d.bufKey(ciphertextHash)
	if t := txnOf(ctx); t != nil {
		if item, ok := t.lookup(key); ok {
			if item != nil {
				cleared := make(map[string]types.AttributeValue, len(item))
				for a, v := range item {
					if a != attrV {
						cleared[a] = v
					}
				}
				t.record(key, &txnWrite{item: cleared})
			}
			return nil
		}
	}
	_, err := d.k.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.k.table, Key: key.av(),
		UpdateExpression:    aws.String("REMOVE v"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	if dynamo.IsConditionFailed(err) {
		err = nil
	}
	return wrapErr("clear buffered event", err)
}

// DeleteOldBufferedHashes deletes the device's buffered events older than
// 14 days. (sqlstore's statement covers every device of the database; here
// each device clears its own partition when its client calls this.)
func (d *deviceKeys) DeleteOldBufferedHashes(ctx context.Context) error {
	cutoff := time.Now().Add(-bufferKeep).UnixMilli()
	var old []itemKey
	err := d.k.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		FilterExpression:          aws.String("its < :cut"),
		ProjectionExpression:      aws.String("pk, sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(d.pk), ":p": str("E#"), ":cut": num(cutoff)},
	}, func(item map[string]types.AttributeValue) error {
		old = append(old, keyOf(item))
		return nil
	})
	if err == nil {
		err = d.k.batchWrite(withoutTxn(ctx), nil, old)
	}
	return wrapErr("delete old buffered events", err)
}

// wrapErr wraps a failed call of op; nil stays nil.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return keyError(op, err)
}
