package dynamo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts a DynamoDB client's calls per operation and the capacity
// they consumed (it asks every call for ReturnConsumedCapacity TOTAL), for
// benchmarks and tests. Install it with KeysConfig.ClientOptions =
// []func(*dynamodb.Options){c.Install}.
type Counter struct {
	mu    sync.Mutex
	calls map[string]int
	read  float64
	write float64
}

// Install adds the counting middleware to a client's options.
func (c *Counter) Install(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("wagoCounter",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				askCapacity(in.Parameters)
				out, md, err := next.HandleInitialize(ctx, in)
				c.add(middleware.GetOperationName(ctx), out.Result)
				return out, md, err
			}), middleware.After)
	})
}

func askCapacity(params any) {
	total := types.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = total
	}
}

func (c *Counter) add(op string, result any) {
	var cc []types.ConsumedCapacity
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		cc = out.ConsumedCapacity
	case *dynamodb.BatchWriteItemOutput:
		cc = out.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		cc = out.ConsumedCapacity
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	for _, x := range cc {
		// DynamoDB Local reports only CapacityUnits; AWS splits them.
		r, w := aws.ToFloat64(x.ReadCapacityUnits), aws.ToFloat64(x.WriteCapacityUnits)
		if r == 0 && w == 0 {
			if isWriteOp(op) {
				w = aws.ToFloat64(x.CapacityUnits)
			} else {
				r = aws.ToFloat64(x.CapacityUnits)
			}
		}
		c.read += r
		c.write += w
	}
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

func isWriteOp(op string) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
		return true
	}
	return false
}

// Snapshot returns the calls per operation and the read and write capacity
// units consumed so far.
func (c *Counter) Snapshot() (calls map[string]int, readUnits, writeUnits float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls = make(map[string]int, len(c.calls))
	for op, n := range c.calls {
		calls[op] = n
	}
	return calls, c.read, c.write
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	c.calls, c.read, c.write = nil, 0, 0
	c.mu.Unlock()
}

// Reads and Writes return the number of read and write calls so far.
func (c *Counter) Reads() int  { return c.sum(false) }
func (c *Counter) Writes() int { return c.sum(true) }

func (c *Counter) sum(writes bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for op, k := range c.calls {
		if isWriteOp(op) == writes {
			n += k
		}
	}
	return n
}

// String lists the calls per operation, "GetItem=2 Query=1".
func (c *Counter) String() string {
	calls, _, _ := c.Snapshot()
	ops := make([]string, 0, len(calls))
	for op := range calls {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s=%d", op, calls[op])
	}
	return strings.Join(parts, " ")
}
