// Package dynamo is the distributed token store: a shared.Store on one
// DynamoDB table (or DynamoDB Local), through aws-sdk-go-v2.
//
// The table has a single string hash key, pk. A session row is the item
// "TOKEN#<token>"; the item "NAME#<name>" reserves its name. Both are written
// and deleted together in a transaction whose conditions keep Name and Token
// unique.
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wago-gw/wago/shared"
)

// DefaultRegion is the region used when the AWS environment names none.
const DefaultRegion = "us-east-1"

// Config says which table to use and how to reach it.
type Config struct {
	// Table is the name of the DynamoDB table. Required.
	Table string
	// Endpoint, when set, is the base URL of a DynamoDB-compatible service
	// such as DynamoDB Local ("http://127.0.0.1:8000"). Empty: AWS's
	// regional endpoint. With an Endpoint and no credentials named in the
	// environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...), static dummy
	// credentials are used: DynamoDB Local accepts any. The responses'
	// CRC32 checksums are not checked (DynamoDB Local omits them on errors).
	Endpoint string
	// CreateTable makes Open create the table (on demand, PAY_PER_REQUEST)
	// if it does not exist and wait until it is ACTIVE. Several processes
	// may do so at the same moment. Without it, Open makes no request.
	CreateTable bool
}

// Store is a shared.Store on a DynamoDB table. It is safe for concurrent
// use; its methods make one or a few requests each and keep no cache.
type Store struct {
	client *dynamodb.Client
	table  string
	// pageSize limits the items per Scan page (0: DynamoDB's 1 MB pages);
	// tests set it to exercise pagination.
	pageSize int32
	now      func() time.Time
}

var _ shared.Store = (*Store)(nil)

// Open returns a Store on cfg.Table. Credentials and region come from the
// standard AWS environment (config.LoadDefaultConfig); the region defaults
// to DefaultRegion. With cfg.CreateTable it creates the table if needed and
// waits, within ctx, until it is ACTIVE.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Table == "" {
		return nil, errors.New("dynamo: open: no table name")
	}
	client, err := NewClient(ctx, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	s := &Store{client: client, table: cfg.Table, now: time.Now}
	if cfg.CreateTable {
		if err := EnsureTable(ctx, client, s.table, ""); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewClient returns a DynamoDB client for endpoint (empty: AWS), configured
// from the standard AWS environment as Config.Endpoint describes, then by
// extra.
func NewClient(ctx context.Context, endpoint string, extra ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	var opts []func(*config.LoadOptions) error
	if endpoint != "" && !credentialsInEnv() {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider("wagolocal", "wagolocal", "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dynamo: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	clientOpts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// DynamoDB Local sends no x-amz-crc32 header with error
			// responses, and the SDK logs a warning for each one.
			o.DisableValidateResponseChecksum = true
		}
	}}, extra...)
	return dynamodb.NewFromConfig(awsCfg, clientOpts...), nil
}

// credentialsInEnv reports whether the environment names credentials or a
// place to find them, in which case the default chain is used as is.
func credentialsInEnv() bool {
	for _, v := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// Table returns the name of the store's table.
func (s *Store) Table() string { return s.table }

// Client returns the DynamoDB client the store uses, for administration
// and tests.
func (s *Store) Client() *dynamodb.Client { return s.client }

// Close releases the store's resources. The SDK client holds none that need
// releasing, so Close only exists to satisfy shared.Store.
func (s *Store) Close() error { return nil }

// Create stores a new row as one transaction of two conditional puts: the
// TOKEN# item and the NAME# item. It returns shared.ErrAlreadyExists if
// either exists, and EINVALID if s has no Token or no Name. A zero
// s.CreatedAt is set to now and a zero s.UpdatedAt to s.CreatedAt; both are
// written back to s.
func (s *Store) Create(ctx context.Context, sess *shared.Session) error {
	if sess.Token == "" || sess.Name == "" {
		return shared.Errorf(shared.EINVALID, "name and token are required")
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = s.now()
	}
	if sess.UpdatedAt.IsZero() {
		sess.UpdatedAt = sess.CreatedAt
	}
	notExists := aws.String("attribute_not_exists(" + AttrPK + ")")
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: rowItem(sess), ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &s.table, Item: nameItem(sess), ConditionExpression: notExists}},
	}}
	for attempt := 0; ; attempt++ {
		_, err := s.client.TransactWriteItems(ctx, in)
		if err == nil {
			return nil
		}
		isCancel, condFailed, conflict := Cancelled(err)
		switch {
		case condFailed:
			return shared.ErrAlreadyExists
		case isCancel && conflict && attempt < ConflictRetries:
			if err := Backoff(ctx, attempt); err != nil {
				return storeError("create session", err)
			}
		default:
			return storeError("create session", err)
		}
	}
}

// Get returns the row for token with a strongly consistent read, or
// shared.ErrSessionNotFound.
func (s *Store) Get(ctx context.Context, token string) (*shared.Session, error) {
	if token == "" {
		return nil, shared.ErrSessionNotFound
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(tokenKey(token)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, storeError("get session", err)
	}
	if out.Item == nil {
		return nil, shared.ErrSessionNotFound
	}
	sess, err := decodeRow(out.Item)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get session: %w", err)
	}
	return sess, nil
}

// List returns every row, oldest (by CreatedAt) first, ties in Token order.
// It scans the whole table with strongly consistent reads, page by page.
func (s *Store) List(ctx context.Context) ([]*shared.Session, error) {
	in := &dynamodb.ScanInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		FilterExpression:          aws.String("begins_with(#pk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": str(tokenPrefix)},
	}
	if s.pageSize > 0 {
		in.Limit = aws.Int32(s.pageSize)
	}
	var rows []*shared.Session
	pages := dynamodb.NewScanPaginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, storeError("list sessions", err)
		}
		for _, item := range page.Items {
			sess, err := decodeRow(item)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list sessions: %w", err)
			}
			rows = append(rows, sess)
		}
	}
	slices.SortFunc(rows, func(a, b *shared.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Token, b.Token)
	})
	return rows, nil
}

// Update changes the fields u names, stamps UpdatedAt with now, and returns
// the new row; it is one conditional UpdateItem, so it never creates a row.
// It returns shared.ErrSessionNotFound if there is no row for token.
func (s *Store) Update(ctx context.Context, token string, u shared.SessionUpdate) (*shared.Session, error) {
	if token == "" {
		return nil, shared.ErrSessionNotFound
	}
	names := map[string]string{"#pk": AttrPK}
	values := map[string]types.AttributeValue{}
	var sets []string
	set := func(attr string, v types.AttributeValue) {
		n := strconv.Itoa(len(sets))
		names["#a"+n] = attr
		values[":v"+n] = v
		sets = append(sets, "#a"+n+" = :v"+n)
	}
	set(attrUpdatedAt, stamp(s.now()))
	if u.Webhook != nil {
		set(attrWebhook, str(*u.Webhook))
	}
	if u.WebhookSecret != nil {
		set(attrWebhookSecret, str(*u.WebhookSecret))
	}
	if u.WebhookFormat != nil {
		set(attrWebhookFormat, str(*u.WebhookFormat))
	}
	if u.Events != nil {
		set(attrEvents, list(u.Events))
	}
	if u.JID != nil {
		set(attrJID, str(*u.JID))
	}
	if u.AutoConnect != nil {
		set(attrAutoConnect, boolean(*u.AutoConnect))
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(tokenKey(token)),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if IsConditionFailed(err) {
		return nil, shared.ErrSessionNotFound
	} else if err != nil {
		return nil, storeError("update session", err)
	}
	sess, err := decodeRow(out.Attributes)
	if err != nil {
		return nil, fmt.Errorf("dynamo: update session: %w", err)
	}
	return sess, nil
}

// Delete removes the row and its name in one transaction, after reading the
// row to learn the name. It returns shared.ErrSessionNotFound if there is no
// row for token.
func (s *Store) Delete(ctx context.Context, token string) error {
	if token == "" {
		return shared.ErrSessionNotFound
	}
	for attempt := 0; ; attempt++ {
		sess, err := s.Get(ctx, token)
		if err != nil {
			return err
		}
		_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: []types.TransactWriteItem{
				{Delete: &types.Delete{
					TableName:                &s.table,
					Key:                      key(tokenKey(token)),
					ConditionExpression:      aws.String("attribute_exists(#pk) AND #name = :name"),
					ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#name": attrName},
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":name": str(sess.Name),
					},
				}},
				{Delete: &types.Delete{
					TableName:                &s.table,
					Key:                      key(nameKey(sess.Name)),
					ConditionExpression:      aws.String("#token = :token"),
					ExpressionAttributeNames: map[string]string{"#token": attrToken},
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":token": str(token),
					},
				}},
			},
		})
		if err == nil {
			return nil
		}
		isCancel, condFailed, conflict := Cancelled(err)
		switch {
		case (condFailed || conflict) && attempt < ConflictRetries:
			// The row changed between the read and the transaction: it was
			// deleted (the next read says so) or deleted and created anew
			// under another name (the next round deletes that one).
			if err := Backoff(ctx, attempt); err != nil {
				return storeError("delete session", err)
			}
		case isCancel && condFailed:
			return shared.ErrSessionNotFound
		default:
			return storeError("delete session", err)
		}
	}
}
