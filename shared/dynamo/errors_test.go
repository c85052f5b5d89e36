package dynamo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wago-gw/wago/shared"
)

func TestCancelled(t *testing.T) {
	reasons := func(codes ...string) error {
		var rs []types.CancellationReason
		for _, c := range codes {
			rs = append(rs, types.CancellationReason{Code: aws.String(c)})
		}
		return fmt.Errorf("operation error: %w", &types.TransactionCanceledException{
			Message: aws.String("Transaction Cancelled"), CancellationReasons: rs,
		})
	}
	tests := []struct {
		name                             string
		err                              error
		isCancel, condFailed, isConflict bool
	}{
		{"other error", errors.New("boom"), false, false, false},
		{"condition", reasons("ConditionalCheckFailed", "None"), true, true, false},
		{"second condition", reasons("None", "ConditionalCheckFailed"), true, true, false},
		{"conflict", reasons("TransactionConflict", "None"), true, false, true},
		{"both", reasons("TransactionConflict", "ConditionalCheckFailed"), true, true, true},
		{"throttled", reasons("ThrottlingError", "None"), true, false, false},
		{"reasons only in the message", &types.TransactionCanceledException{
			Message: aws.String("Transaction Cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"),
		}, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isCancel, condFailed, conflict := Cancelled(tt.err)
			if got, want := [3]bool{isCancel, condFailed, conflict}, [3]bool{tt.isCancel, tt.condFailed, tt.isConflict}; got != want {
				t.Errorf("Cancelled = %v, want %v", got, want)
			}
		})
	}
}

func TestStoreError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"network", errors.New("dial tcp: connection refused"), shared.EUNAVAILABLE},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException"}, shared.EUNAVAILABLE},
		{"server", &types.InternalServerError{}, shared.EUNAVAILABLE},
		{"no table", &types.ResourceNotFoundException{}, shared.EUNAVAILABLE},
		{"bad request", &smithy.GenericAPIError{Code: "ValidationException"}, shared.EINTERNAL},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), shared.ETIMEOUT},
		{"Cancelled", fmt.Errorf("op: %w", context.Canceled), shared.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storeError("get session", tt.err)
			if got, want := shared.ErrorCode(err), tt.code; got != want {
				t.Errorf("code = %q, want %q (%v)", got, want, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}
