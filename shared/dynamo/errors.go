package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wago-gw/wago/shared"
)

// storeError turns a failed DynamoDB call of operation op (e.g. "get
// session") into the error the Store returns: a timeout becomes ETIMEOUT, a
// request DynamoDB found malformed (a bug here) stays a plain, internal
// error, and everything else (network failures, throttling, server errors,
// a missing table, refused credentials) becomes EUNAVAILABLE. The cause is
// always kept in the chain, with op as context.
func storeError(op string, err error) error {
	cause := fmt.Errorf("dynamo: %s: %w", op, err)
	var apiErr smithy.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return shared.Wrap(cause, shared.ETIMEOUT, "token store timed out")
	case errors.Is(err, context.Canceled):
		return cause
	case errors.As(err, &apiErr) && isBugCode(apiErr.ErrorCode()):
		return cause
	default:
		return shared.Wrap(cause, shared.EUNAVAILABLE, "token store unavailable")
	}
}

// isBugCode reports whether an API error code means that the request itself
// was wrong, which retrying or waiting cannot fix.
func isBugCode(code string) bool {
	switch code {
	case "ValidationException", "SerializationException":
		return true
	}
	return false
}

// Cancellation reason codes of TransactWriteItems.
const (
	reasonConditionFailed = "ConditionalCheckFailed"
	reasonConflict        = "TransactionConflict"
)

// Cancelled reports whether err is a Cancelled transaction and, if so,
// whether a condition failed and whether another transaction conflicted.
func Cancelled(err error) (isCancel, conditionFailed, conflict bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false, false, false
	}
	for _, r := range tce.CancellationReasons {
		if r.Code == nil {
			continue
		}
		switch *r.Code {
		case reasonConditionFailed:
			conditionFailed = true
		case reasonConflict:
			conflict = true
		}
	}
	if len(tce.CancellationReasons) == 0 {
		// Some emulators only name the reasons in the message:
		// "Transaction Cancelled, ... [ConditionalCheckFailed, None]".
		msg := tce.ErrorMessage()
		conditionFailed = strings.Contains(msg, reasonConditionFailed)
		conflict = strings.Contains(msg, reasonConflict)
	}
	return true, conditionFailed, conflict
}

// IsConditionFailed reports whether err is a failed condition of a single
// item write.
func IsConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Retries of transactions Cancelled by a conflicting transaction on the same
// items. DynamoDB cancels rather than queues, so concurrent writers of one
// Name or Token would otherwise fail with a conflict instead of learning that
// the winner now holds it.
const (
	ConflictRetries  = 12
	conflictBaseWait = 10 * time.Millisecond
	conflictMaxWait  = 500 * time.Millisecond
)

// Backoff sleeps before conflict retry attempt (0-based), with full jitter.
// It returns ctx's error if ctx ends first.
func Backoff(ctx context.Context, attempt int) error {
	d := conflictBaseWait << min(attempt, 16)
	d = min(d, conflictMaxWait)
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
