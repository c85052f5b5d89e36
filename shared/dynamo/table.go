package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long EnsureTable waits for ACTIVE when ctx has no
// earlier deadline. On AWS a new on-demand table is usually ACTIVE within
// seconds; DynamoDB Local creates it ACTIVE.
const tableWait = 5 * time.Minute

// EnsureTable creates the table unless it exists and waits until it is
// ACTIVE. Its key is the string hash key pk and, if sortKey is not empty,
// the string range key sortKey. Another process may create it at the same
// moment: DynamoDB then answers ResourceInUseException to one of them, which
// is success here.
func EnsureTable(ctx context.Context, client *dynamodb.Client, table, sortKey string) error {
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()

	status, err := tableStatus(ctx, client, table)
	if err != nil {
		return storeError("describe table", err)
	}
	if status == "" {
		in := &dynamodb.CreateTableInput{
			TableName:   &table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			},
		}
		if sortKey != "" {
			in.AttributeDefinitions = append(in.AttributeDefinitions,
				types.AttributeDefinition{AttributeName: &sortKey, AttributeType: types.ScalarAttributeTypeS})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: &sortKey, KeyType: types.KeyTypeRange})
		}
		_, err := client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return storeError("create table", err)
		}
	}
	for attempt := 0; status != types.TableStatusActive; attempt++ {
		if status != "" && status != types.TableStatusCreating && status != types.TableStatusUpdating {
			return fmt.Errorf("dynamo: table %s is %s", table, status)
		}
		if status != "" || attempt > 0 {
			wait := min(50*time.Millisecond<<min(attempt, 10), 2*time.Second)
			select {
			case <-ctx.Done():
				return storeError("wait for table", fmt.Errorf("table %s is not ACTIVE: %w", table, ctx.Err()))
			case <-time.After(wait):
			}
		}
		// Right after CreateTable, DescribeTable may still say "not found"
		// for a moment: keep polling.
		if status, err = tableStatus(ctx, client, table); err != nil {
			return storeError("wait for table", err)
		}
	}
	return nil
}

// tableStatus returns the table's status, or "" if it does not exist.
func tableStatus(ctx context.Context, client *dynamodb.Client, table string) (types.TableStatus, error) {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if out.Table == nil {
		return "", nil
	}
	return out.Table.TableStatus, nil
}
