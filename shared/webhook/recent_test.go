package webhook

import (
	"context"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/storetest"
)

func TestMemoryLog(t *testing.T) {
	storetest.DeliveryLog(t, NewMemoryLog(0))
}

// TestMemoryLogEvictsOldestToken: past maxTokens, the token recorded least
// recently is forgotten, not the one just recorded.
func TestMemoryLogEvictsOldestToken(t *testing.T) {
	l := NewMemoryLog(2)
	ctx := context.Background()
	for _, tok := range []string{"a", "b", "a", "c"} {
		l.Record(ctx, tok, shared.DeliveryRecord{ID: "evt_" + tok})
	}
	for tok, want := range map[string]int{"a": 1, "b": 0, "c": 1} {
		if got, _ := l.Recent(ctx, tok); len(got) != want {
			t.Errorf("token %s: %d records, want %d", tok, len(got), want)
		}
	}
}
