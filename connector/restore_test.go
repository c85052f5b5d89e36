package connector

import (
	"fmt"
	"testing"
	"time"
)

// TestRestoreSchedule: every token is restored once, at a random start
// within the jitter, in the order of the starts; without jitter, at once.
func TestRestoreSchedule(t *testing.T) {
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = fmt.Sprint("t", i)
	}
	const jitter = 200 * time.Millisecond
	got := restoreSchedule(tokens, jitter)
	seen := map[string]bool{}
	var spread time.Duration
	for i, s := range got {
		if s.at < 0 || s.at >= jitter {
			t.Fatalf("%s starts at %s, outside [0, %s)", s.token, s.at, jitter)
		}
		if i > 0 && s.at < got[i-1].at {
			t.Fatalf("start %d (%s) before start %d (%s)", i, s.at, i-1, got[i-1].at)
		}
		seen[s.token] = true
		spread = max(spread, s.at)
	}
	if len(seen) != len(tokens) || len(got) != len(tokens) {
		t.Fatalf("%d entries, %d distinct tokens, want %d", len(got), len(seen), len(tokens))
	}
	if spread < jitter/2 || got[0].at > jitter/2 {
		t.Fatalf("1,000 starts within %s..%s of a %s jitter: not spread", got[0].at, spread, jitter)
	}
	for _, s := range restoreSchedule(tokens, 0) {
		if s.at != 0 {
			t.Fatalf("without jitter %s starts at %s", s.token, s.at)
		}
	}
}
