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

// tableWait bounds how long ensureTable waits for ACTIVE when ctx has no
// earlier deadline. On AWS a new on-demand table is usually ACTIVE within
// seconds; DynamoDB Local creates it ACTIVE.
const tableWait = 5 * time.Minute

// ensureTable creates the table unless it exists and waits until it is
// ACTIVE. Another process may create it at the same moment: DynamoDB then
// answers ResourceInUseException to one of them, which is success here.
func (s *Store) ensureTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()

	status, err := s.tableStatus(ctx)
	if err != nil {
		return storeError("describe table", err)
	}
	if status == "" {
		_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   &s.table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return storeError("create table", err)
		}
	}
	for attempt := 0; status != types.TableStatusActive; attempt++ {
		if status != "" && status != types.TableStatusCreating && status != types.TableStatusUpdating {
			return fmt.Errorf("dynamo: table %s is %s", s.table, status)
		}
		if status != "" || attempt > 0 {
			wait := min(50*time.Millisecond<<min(attempt, 10), 2*time.Second)
			select {
			case <-ctx.Done():
				return storeError("wait for table", fmt.Errorf("table %s is not ACTIVE: %w", s.table, ctx.Err()))
			case <-time.After(wait):
			}
		}
		// Right after CreateTable, DescribeTable may still say "not found"
		// for a moment: keep polling.
		if status, err = s.tableStatus(ctx); err != nil {
			return storeError("wait for table", err)
		}
	}
	return nil
}

// tableStatus returns the table's status, or "" if it does not exist.
func (s *Store) tableStatus(ctx context.Context) (types.TableStatus, error) {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
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
