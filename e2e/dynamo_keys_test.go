package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	wtypes "go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared/dynamokeys"
)

// redisDBDynamoKeys is TestDistributedDynamoKeyStore's Redis database, apart
// from the other tests' (distributed_test.go, fleet_test.go, ops_test.go,
// webhook_test.go).
const redisDBDynamoKeys = 6

// TestDistributedDynamoKeyStore runs the lifecycle with no SQL at all:
// `wago api` and `wago connector` on Redis and DynamoDB Local, the
// whatsmeow keys in a DynamoDB table (WAGO_WHATSMEOW_DB=dynamodb://<table>)
// that the connector creates. Link by QR, send, receive (the decryption
// transaction lands in the table), kill -9 the connector and start another
// with an empty data directory: it restores the session from the table by
// itself, and sends and receives on the stored Signal sessions; logout
// deletes the device's keys.
func TestDistributedDynamoKeyStore(t *testing.T) {
	e := newDistEnv(t, redisDBDynamoKeys)
	keysTable := e.table + "-keys"
	keysEnv := []string{"WAGO_WHATSMEOW_DB=dynamodb://" + keysTable, "WAGO_DYNAMODB_CREATE_TABLE=true"}
	emu := startEmulator(t)
	dir1 := t.TempDir()
	conn := startConnectorVia(t, e, emu, emu.Addr(), dir1, keysEnv...)
	api := startDistAPI(t, e)

	// The test reads the table the connector created (same credentials and
	// region as the processes, distProcEnv).
	t.Setenv("AWS_REGION", lambdaRegion)
	t.Setenv("AWS_ACCESS_KEY_ID", lambdaAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", lambdaAccessKey)
	keys, err := dynamokeys.OpenKeys(t.Context(), dynamokeys.KeysConfig{Table: keysTable, Endpoint: e.dynamoEndpoint})
	if err != nil {
		t.Fatalf("the connector did not create the key table: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys.Client().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(keysTable)})
	})

	const token = "dynamo-keys-token"
	distInit(api, "dynamo-keys", token)
	jid := distLink(t, api, emu, token)
	dev, err := keys.GetDevice(t.Context(), jid)
	if err != nil || dev == nil {
		t.Fatalf("the linked device is not in the key table: %v, %v", dev, err)
	}
	contact := emu.Contact()
	send := func(text string) {
		t.Helper()
		var res sendAnswer
		api.ok(api.call("POST", "/send/text", fmt.Sprintf(`{"Phone":"+%s","Body":%q}`, contact.User, text), "token", token), &res)
		if got := inboxWith(t, emu, res.ID); got.Text != text || got.From.User != jid.User {
			t.Fatalf("the contact received %+v, want %q", got, text)
		}
	}
	// receive has the contact send text to the device and waits until its
	// decryption transaction is in the table: a buffered event whose
	// plaintext was cleared once the message was handled.
	receive := func(text string) {
		t.Helper()
		before := bufferedEvents(t, keys, jid)
		if _, err := emu.SendTextFromContact(t.Context(), jid, text); err != nil {
			t.Fatalf("the contact's send: %v", err)
		}
		waitFor(t, 15*time.Second, "the received message's buffered event", func() bool {
			return bufferedEvents(t, keys, jid) > before
		})
	}
	send("stored in DynamoDB")
	receive("hello wago")
	if has, err := dev.Sessions.HasSession(t.Context(), contact.SignalAddress().String()); err != nil || !has {
		t.Fatalf("no Signal session with the contact in the key table: %v, %v", has, err)
	}
	if n, err := dev.PreKeys.UploadedPreKeyCount(t.Context()); err != nil || n == 0 {
		t.Fatalf("uploaded pre-keys in the key table: %d, %v", n, err)
	}

	// kill -9, then a connector with nothing on disk: the session comes
	// back from the table once the dead one's leases expire.
	before := logins(emu, jid)
	conn.kill()
	dir2 := t.TempDir()
	startConnectorVia(t, e, emu, emu.Addr(), dir2, keysEnv...)
	// (The dead connector's status may read Connected until its TTL: the
	// emulator tells when the device is back.)
	waitFor(t, 45*time.Second, "the new connector to log the device in from the table", func() bool {
		return logins(emu, jid) > before && emu.SocketsFor(jid) == 1
	})
	distWaitStatus(t, api, token, 10*time.Second, "restored by the new connector", func(s status) bool {
		return s.Connected && s.LoggedIn && s.Jid == jid.String()
	})
	if after := logins(emu, jid); after != before+1 {
		t.Fatalf("logins %d -> %d, want one more (a restore, not a new link)", before, after)
	}
	send("after the restore")
	receive("still there?")

	// logout unlinks and deletes the device's keys.
	api.ok(api.call("POST", "/session/logout", "", "token", token), nil)
	distWaitStatus(t, api, token, 10*time.Second, "logged out", func(s status) bool { return s.State == "logged_out" })
	waitFor(t, 10*time.Second, "the device's keys to be deleted", func() bool {
		d, err := keys.GetDevice(t.Context(), jid)
		return err == nil && d == nil && partitionSize(t, keys, jid) == 0
	})
	for _, dir := range []string{dir1, dir2} {
		if _, err := os.Stat(filepath.Join(dir, "whatsmeow.db")); !os.IsNotExist(err) {
			t.Errorf("%s has a whatsmeow.db (%v): the keys must be in DynamoDB only", dir, err)
		}
	}
}

// bufferedEvents counts the device's buffered events whose plaintext was
// cleared (handled messages).
func bufferedEvents(t *testing.T, keys *dynamokeys.Keys, jid wtypes.JID) int {
	t.Helper()
	n := 0
	forPartition(t, keys, jid, func(item map[string]types.AttributeValue) {
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		if _, hasPlaintext := item["v"]; strings.HasPrefix(sk, "E#") && !hasPlaintext {
			n++
		}
	})
	return n
}

// partitionSize counts the items of the device's partition.
func partitionSize(t *testing.T, keys *dynamokeys.Keys, jid wtypes.JID) int {
	t.Helper()
	n := 0
	forPartition(t, keys, jid, func(map[string]types.AttributeValue) { n++ })
	return n
}

// forPartition calls fn with each item of the device's partition in the
// key table (its layout: pk "D#<JID>").
func forPartition(t *testing.T, keys *dynamokeys.Keys, jid wtypes.JID, fn func(map[string]types.AttributeValue)) {
	t.Helper()
	p := dynamodb.NewQueryPaginator(keys.Client(), &dynamodb.QueryInput{
		TableName:                 aws.String(keys.Table()),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "D#" + jid.String()}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("query the key table: %v", err)
		}
		for _, item := range page.Items {
			fn(item)
		}
	}
}
