// Package dynamotest has what the DynamoDB tests share: DynamoDB Local's
// endpoint and throwaway tables.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// EndpointEnv names DynamoDB Local's endpoint (make services sets it).
const EndpointEnv = "WAGO_TEST_DYNAMODB_ENDPOINT"

// Endpoint returns DynamoDB Local's endpoint; without it the test is
// skipped, or fails under CI=true.
func Endpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv(EndpointEnv)
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the DynamoDB tests (start .ci/dynamodb-local)", EndpointEnv)
		}
		t.Skipf("%s is not set: start .ci/dynamodb-local to run the DynamoDB tests", EndpointEnv)
	}
	return ep
}

// RandomTable returns a table name no other test uses.
func RandomTable(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "wago-test-" + hex.EncodeToString(b)
}

// DropAtEnd deletes table when t ends.
func DropAtEnd(t *testing.T, client *dynamodb.Client, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
}
