package webhook

import (
	"context"
	"slices"
	"sync"

	"github.com/wago-gw/wago/shared"
)

// MemoryLog is the in-process shared.DeliveryLog of the all-in-one server:
// up to shared.MaxRecentDeliveries records for each of at most maxTokens
// tokens; past that, the token recorded least recently is forgotten. It is
// lost at restart, as a view of the last minutes should be.
type MemoryLog struct {
	mu        sync.Mutex
	maxTokens int
	tokens    map[string]*recentRing
	clock     uint64
}

type recentRing struct {
	records []shared.DeliveryRecord // newest first
	touched uint64
}

// DefaultMemoryLogTokens bounds the tokens a MemoryLog keeps: about 4 KiB
// each, so 4096 tokens cost some 16 MiB at most.
const DefaultMemoryLogTokens = 4096

// NewMemoryLog returns a MemoryLog of at most maxTokens tokens (0:
// DefaultMemoryLogTokens).
func NewMemoryLog(maxTokens int) *MemoryLog {
	if maxTokens <= 0 {
		maxTokens = DefaultMemoryLogTokens
	}
	return &MemoryLog{maxTokens: maxTokens, tokens: map[string]*recentRing{}}
}

// Record implements shared.DeliveryLog.
func (l *MemoryLog) Record(_ context.Context, token string, r shared.DeliveryRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ring := l.tokens[token]
	if ring == nil {
		if len(l.tokens) >= l.maxTokens {
			l.evictOldest()
		}
		ring = &recentRing{}
		l.tokens[token] = ring
	}
	l.clock++
	ring.touched = l.clock
	ring.records = slices.DeleteFunc(ring.records, func(old shared.DeliveryRecord) bool { return old.ID == r.ID })
	ring.records = slices.Insert(ring.records, 0, r)
	if len(ring.records) > shared.MaxRecentDeliveries {
		ring.records = ring.records[:shared.MaxRecentDeliveries]
	}
	return nil
}

// evictOldest forgets the token recorded least recently.
func (l *MemoryLog) evictOldest() {
	var oldest string
	var at uint64
	for token, ring := range l.tokens {
		if oldest == "" || ring.touched < at {
			oldest, at = token, ring.touched
		}
	}
	delete(l.tokens, oldest)
}

// Recent implements shared.DeliveryLog.
func (l *MemoryLog) Recent(_ context.Context, token string) ([]shared.DeliveryRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ring := l.tokens[token]; ring != nil {
		return slices.Clone(ring.records), nil
	}
	return []shared.DeliveryRecord{}, nil
}
