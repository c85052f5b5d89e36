package dynamokeys

import (
	"context"
	"fmt"
	"github.com/wago-gw/wago/shared/dynamo"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB's limits on one batch request.
const (
	batchGetMax   = 100
	batchWriteMax = 25
	transactMax   = 100
	// batchRetries bounds the retries of a batch's unprocessed part
	// (throttling) before the call fails.
	batchRetries = 12
)

// itemKey is an item's primary key.
type itemKey struct{ pk, sk string }

func (k itemKey) av() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynamo.AttrPK: str(k.pk), attrSK: str(k.sk)}
}

// with returns attrs with k's key attributes added.
func (k itemKey) with(attrs map[string]types.AttributeValue) map[string]types.AttributeValue {
	attrs[dynamo.AttrPK], attrs[attrSK] = str(k.pk), str(k.sk)
	return attrs
}

func keyOf(item map[string]types.AttributeValue) itemKey {
	return itemKey{getS(item, dynamo.AttrPK), getS(item, attrSK)}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func bin(b []byte) types.AttributeValue {
	if b == nil {
		b = []byte{}
	}
	return &types.AttributeValueMemberB{Value: b}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// getB returns a binary attribute, nil if absent.
func getB(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		if v.Value == nil {
			return []byte{}
		}
		return v.Value
	}
	return nil
}

func getBool(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// keyError wraps a failed call of the key store.
func keyError(op string, err error) error {
	return fmt.Errorf("dynamo key store: %s: %w", op, err)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func joinComma(parts []string) string { return strings.Join(parts, ", ") }

// get returns the item at key (nil if absent) with a strongly consistent
// read; inside a decryption transaction, the transaction's own write of
// the key if it made one.
func (k *Keys) get(ctx context.Context, key itemKey) (map[string]types.AttributeValue, error) {
	if t := txnOf(ctx); t != nil {
		if item, ok := t.lookup(key); ok {
			return item, nil
		}
	}
	out, err := k.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &k.table, Key: key.av(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// batchGet reads keys with strongly consistent BatchGetItem calls (100 keys
// each, unprocessed keys retried) and returns the items found.
func (k *Keys) batchGet(ctx context.Context, keys []itemKey) (map[itemKey]map[string]types.AttributeValue, error) {
	found := make(map[itemKey]map[string]types.AttributeValue, len(keys))
	t := txnOf(ctx)
	seen := make(map[itemKey]bool, len(keys))
	var pending []map[string]types.AttributeValue
	for _, key := range keys {
		if seen[key] {
			continue
		}
		seen[key] = true
		if t != nil {
			if item, ok := t.lookup(key); ok {
				if item != nil {
					found[key] = item
				}
				continue
			}
		}
		pending = append(pending, key.av())
	}
	for attempt := 0; len(pending) > 0; {
		n := min(len(pending), batchGetMax)
		out, err := k.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			k.table: {Keys: pending[:n], ConsistentRead: aws.Bool(true)},
		}})
		if err != nil {
			return nil, err
		}
		for _, item := range out.Responses[k.table] {
			found[keyOf(item)] = item
		}
		pending = append(out.UnprocessedKeys[k.table].Keys, pending[n:]...)
		if len(out.UnprocessedKeys[k.table].Keys) > 0 {
			if attempt++; attempt > batchRetries {
				return nil, fmt.Errorf("%d keys still unprocessed after %d retries", len(out.UnprocessedKeys[k.table].Keys), batchRetries)
			}
			if err := dynamo.Backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
	}
	return found, nil
}

// put writes item, if cond (when not empty) holds; inside a decryption
// transaction it is only recorded there.
func (k *Keys) put(ctx context.Context, item map[string]types.AttributeValue, cond string) error {
	if t := txnOf(ctx); t != nil {
		t.record(keyOf(item), &txnWrite{item: item, cond: cond})
		return nil
	}
	in := &dynamodb.PutItemInput{TableName: &k.table, Item: item}
	if cond != "" {
		in.ConditionExpression = &cond
	}
	_, err := k.client.PutItem(ctx, in)
	return err
}

// del deletes the item at key; inside a decryption transaction it is only
// recorded there.
func (k *Keys) del(ctx context.Context, key itemKey) error {
	if t := txnOf(ctx); t != nil {
		t.record(key, &txnWrite{})
		return nil
	}
	_, err := k.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &k.table, Key: key.av()})
	return err
}

// batchWrite puts items and deletes dels with BatchWriteItem calls (25 each,
// unprocessed items retried); a key written twice keeps its last write.
// Inside a decryption transaction the writes are only recorded there.
func (k *Keys) batchWrite(ctx context.Context, puts []map[string]types.AttributeValue, dels []itemKey) error {
	if t := txnOf(ctx); t != nil {
		for _, item := range puts {
			t.record(keyOf(item), &txnWrite{item: item})
		}
		for _, key := range dels {
			t.record(key, &txnWrite{})
		}
		return nil
	}
	last := make(map[itemKey]int, len(puts)+len(dels))
	reqs := make([]types.WriteRequest, 0, len(puts)+len(dels))
	addReq := func(key itemKey, r types.WriteRequest) {
		if i, ok := last[key]; ok {
			reqs[i] = r
			return
		}
		last[key] = len(reqs)
		reqs = append(reqs, r)
	}
	for _, item := range puts {
		addReq(keyOf(item), types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	for _, key := range dels {
		addReq(key, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key.av()}})
	}
	for attempt := 0; len(reqs) > 0; {
		n := min(len(reqs), batchWriteMax)
		out, err := k.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{k.table: reqs[:n]},
		})
		if err != nil {
			return err
		}
		left := out.UnprocessedItems[k.table]
		reqs = append(left, reqs[n:]...)
		if len(left) > 0 {
			if attempt++; attempt > batchRetries {
				return fmt.Errorf("%d writes still unprocessed after %d retries", len(left), batchRetries)
			}
			if err := dynamo.Backoff(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// query runs a strongly consistent Query on the table, page by page, and
// calls fn with each item until fn fails.
func (k *Keys) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) error) error {
	in.TableName, in.ConsistentRead = &k.table, aws.Bool(true)
	for {
		out, err := k.client.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// queryPrefix calls fn with each item of partition pk whose sort key begins
// with prefix, in sort key order.
func (k *Keys) queryPrefix(ctx context.Context, pk, prefix string, fn func(map[string]types.AttributeValue) error) error {
	return k.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":p": str(prefix)},
	}, fn)
}

// keysWithPrefix returns the keys of partition pk's items whose sort key
// begins with prefix ("": all).
func (k *Keys) keysWithPrefix(ctx context.Context, pk, prefix string) ([]itemKey, error) {
	var keys []itemKey
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ProjectionExpression:      aws.String("pk, sk"),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :p)")
		in.ExpressionAttributeValues[":p"] = str(prefix)
	}
	err := k.query(ctx, in, func(item map[string]types.AttributeValue) error {
		keys = append(keys, keyOf(item))
		return nil
	})
	return keys, err
}

// deletePrefix deletes partition pk's items whose sort key begins with
// prefix ("": the whole partition).
func (k *Keys) deletePrefix(ctx context.Context, pk, prefix string) error {
	keys, err := k.keysWithPrefix(ctx, pk, prefix)
	if err != nil {
		return err
	}
	return k.batchWrite(ctx, nil, keys)
}

// purge deletes a whole partition.
func (k *Keys) purge(ctx context.Context, pk string) error {
	if err := k.deletePrefix(withoutTxn(ctx), pk, ""); err != nil {
		return keyError("delete the device's data", err)
	}
	return nil
}
