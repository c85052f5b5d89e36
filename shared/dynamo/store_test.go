package dynamo

import (
	"context"
	"errors"
	"github.com/wago-gw/wago/shared/dynamo/dynamotest"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/storetest"
)

// dynamotest.EndpointEnv names the DynamoDB Local endpoint the tests run against;
// .ci/dynamodb-local starts one and prints the assignment.

// openTest opens a store on a new table and deletes the table when t ends.
func openTest(t *testing.T, ep, table string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := Open(ctx, Config{Table: table, Endpoint: ep, CreateTable: true})
	if err != nil {
		t.Fatalf("Open(%q): %v", table, err)
	}
	dynamotest.DropAtEnd(t, st.client, table)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestStoreContract(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	storetest.Run(t, func(t *testing.T) shared.Store {
		st := openTest(t, ep, dynamotest.RandomTable(t))
		st.pageSize = 16 // make List page through the 200-row test
		return st
	})
}

func TestOpenConcurrentCreateTable(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	table := dynamotest.RandomTable(t)
	const n = 2
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), Config{Table: table, Endpoint: ep, CreateTable: true})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		_, _ = stores[0].client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	in := &shared.Session{Name: "n", Token: "t", Events: []string{"Message"}}
	if err := stores[0].Create(t.Context(), in); err != nil {
		t.Fatalf("Create through the first store: %v", err)
	}
	got, err := stores[1].Get(t.Context(), "t")
	if err != nil {
		t.Fatalf("Get through the second store: %v", err)
	}
	if got.Name != "n" {
		t.Errorf("Name = %q, want %q", got.Name, "n")
	}

	// Opening an existing table with CreateTable is fine too.
	if _, err := Open(t.Context(), Config{Table: table, Endpoint: ep, CreateTable: true}); err != nil {
		t.Errorf("Open of the existing table: %v", err)
	}
}

func TestOpenWithoutAWSEnvironment(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	for _, v := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(v, "") // restored when the test ends
		os.Unsetenv(v)
	}
	t.Setenv("HOME", t.TempDir()) // no ~/.aws files either
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	st := openTest(t, ep, dynamotest.RandomTable(t))
	if err := st.Create(t.Context(), &shared.Session{Name: "n", Token: "t"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := st.Get(t.Context(), "t"); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, want := st.client.Options().Region, DefaultRegion; got != want {
		t.Errorf("region = %q, want %q", got, want)
	}
}

func TestCreateValidates(t *testing.T) {
	// No request is made: the endpoint does not matter.
	st, err := Open(t.Context(), Config{Table: "t", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, s := range []*shared.Session{{Name: "n"}, {Token: "t"}} {
		err := st.Create(t.Context(), s)
		if got, want := shared.ErrorCode(err), shared.EINVALID; got != want {
			t.Errorf("Create(%+v): code %q (%v), want %q", s, got, err, want)
		}
	}
	if _, err := Open(t.Context(), Config{}); err == nil {
		t.Error("Open without a table name succeeded")
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	// A port nothing listens on: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	l.Close()

	st, err := Open(t.Context(), Config{Table: "t", Endpoint: ep})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	st.client = dynamodb.New(st.client.Options(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	_, err = st.Get(t.Context(), "x")
	if got, want := shared.ErrorCode(err), shared.EUNAVAILABLE; got != want {
		t.Errorf("Get: code %q (%v), want %q", got, err, want)
	}
	if got, want := shared.ErrorMessage(err), "token store unavailable"; got != want {
		t.Errorf("Get: message %q, want %q", got, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = st.List(ctx)
	if got, want := shared.ErrorCode(err), shared.ETIMEOUT; got != want {
		t.Errorf("List with an expired context: code %q (%v), want %q", got, err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("List with an expired context: %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestMissingTableIsUnavailable(t *testing.T) {
	ep := dynamotest.Endpoint(t)
	st, err := Open(t.Context(), Config{Table: dynamotest.RandomTable(t), Endpoint: ep})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = st.Get(t.Context(), "x")
	if got, want := shared.ErrorCode(err), shared.EUNAVAILABLE; got != want {
		t.Errorf("Get on a missing table: code %q (%v), want %q", got, err, want)
	}
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("Get on a missing table: %v does not wrap ResourceNotFoundException", err)
	}
}

func TestItemLayout(t *testing.T) {
	// The key schema and item layout are what other tools (and a later
	// version of wago) rely on: check them on the table itself.
	ep := dynamotest.Endpoint(t)
	st := openTest(t, ep, dynamotest.RandomTable(t))
	in := &shared.Session{Name: "alice", Token: "tok", Events: []string{"b", "a"}, AutoConnect: true}
	if err := st.Create(t.Context(), in); err != nil {
		t.Fatalf("Create: %v", err)
	}
	desc, err := st.client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(st.table)})
	if err != nil {
		t.Fatal(err)
	}
	if ks := desc.Table.KeySchema; len(ks) != 1 || aws.ToString(ks[0].AttributeName) != "pk" || ks[0].KeyType != types.KeyTypeHash {
		t.Errorf("key schema = %+v, want the single hash key pk", ks)
	}
	name, err := st.client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key("NAME#alice")})
	if err != nil {
		t.Fatal(err)
	}
	if tok, ok := name.Item["token"].(*types.AttributeValueMemberS); !ok || tok.Value != "tok" {
		t.Errorf("NAME#alice item = %v, want token tok", name.Item)
	}
	row, err := st.client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key("TOKEN#tok")})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := row.Item["name"].(*types.AttributeValueMemberS); !ok || n.Value != "alice" {
		t.Errorf("TOKEN#tok item = %v, want name alice", row.Item)
	}
	if ev, ok := row.Item["events"].(*types.AttributeValueMemberL); !ok || len(ev.Value) != 2 {
		t.Errorf("TOKEN#tok events = %#v, want a list of 2", row.Item["events"])
	}
	if err := st.Delete(t.Context(), "tok"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	out, err := st.client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(st.table)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 0 {
		t.Errorf("after Delete the table holds %d items, want 0: %v", len(out.Items), out.Items)
	}
}
