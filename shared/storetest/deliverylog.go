package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/wago-gw/wago/shared"
)

// DeliveryLog is the contract of a shared.DeliveryLog, given an empty one:
// newest first, one record per event ID (the later replaces the earlier),
// at most shared.MaxRecentDeliveries per token, tokens apart.
func DeliveryLog(t *testing.T, l shared.DeliveryLog) {
	t.Helper()
	ctx := context.Background()
	if got, err := l.Recent(ctx, "tok"); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v %v", got, err)
	}
	rec := func(token, id, status string, attempts int) {
		t.Helper()
		d := shared.Delivery{Event: shared.Event{ID: id, Token: token, Type: "Message", Class: shared.EventMessage}, Attempts: attempts}
		if err := l.Record(ctx, token, shared.NewDeliveryRecord(d, status)); err != nil {
			t.Fatal(err)
		}
	}
	rec("tok", "evt_a", shared.DeliveryRetrying, 1)
	rec("tok", "evt_b", shared.DeliveryDelivered, 1)
	rec("tok", "evt_a", shared.DeliveryDelivered, 2) // evt_a again: replaces its first record
	rec("other", "evt_c", shared.DeliveryFailed, 10)
	got, err := l.Recent(ctx, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "evt_a" || got[0].Status != shared.DeliveryDelivered || got[0].Attempts != 2 || got[1].ID != "evt_b" {
		t.Fatalf("Recent = %+v, want evt_a (delivered, 2 attempts) then evt_b", got)
	}
	for i := range shared.MaxRecentDeliveries + 5 {
		rec("tok", fmt.Sprintf("evt_n%02d", i), shared.DeliveryDelivered, 1)
	}
	got, _ = l.Recent(ctx, "tok")
	last := fmt.Sprintf("evt_n%02d", shared.MaxRecentDeliveries+4)
	if len(got) != shared.MaxRecentDeliveries || got[0].ID != last {
		t.Fatalf("after many: %d records, newest %q; want %d, newest %q", len(got), got[0].ID, shared.MaxRecentDeliveries, last)
	}
	if other, _ := l.Recent(ctx, "other"); len(other) != 1 || other[0].ID != "evt_c" {
		t.Fatalf("other token: %+v", other)
	}
}
