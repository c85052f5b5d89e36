// Package cachedstore puts a short-lived, bounded memory cache of token rows
// in front of a shared.Store, for the stateless API: every request looks its
// token up, and a DynamoDB read per request would cap throughput and cost
// money. Writes go through this process's cache at once; rows changed by
// other processes are seen within the TTL. A token that is not found is
// remembered as missing for a shorter time (at most a second), so that a
// flood of wrong tokens does not become a flood of table reads.
package cachedstore

import (
	"context"
	"sync"
	"time"

	"github.com/wago-gw/wago/shared"
)

// Store is a shared.Store with a read cache of Get answers.
type Store struct {
	inner shared.Store
	ttl   time.Duration
	max   int
	now   func() time.Time

	// cacheLock guards cache.
	cacheLock sync.RWMutex
	cache     map[string]entry
}

// entry is a cached answer: a row, or a miss when row is nil.
type entry struct {
	row     *shared.Session
	expires time.Time
}

// maxMissTTL bounds how long a miss is remembered: a token created through
// another process works here after at most this long.
const maxMissTTL = time.Second

var _ shared.Store = (*Store)(nil)

// New caches inner's rows for ttl, holding at most max rows (when full, the
// cache starts over). A ttl of 0 disables caching.
func New(inner shared.Store, ttl time.Duration, max int) *Store {
	if max <= 0 {
		max = 100_000
	}
	return &Store{inner: inner, ttl: ttl, max: max, now: time.Now, cache: map[string]entry{}}
}

// Get implements shared.Store: a cached answer while it is fresh, else the
// inner store's.
func (s *Store) Get(ctx context.Context, token string) (*shared.Session, error) {
	if token == "" {
		return nil, shared.ErrSessionNotFound
	}
	if s.ttl > 0 {
		s.cacheLock.RLock()
		e, ok := s.cache[token]
		s.cacheLock.RUnlock()
		if ok && s.now().Before(e.expires) {
			if e.row == nil {
				return nil, shared.ErrSessionNotFound
			}
			return e.row.Clone(), nil
		}
	}
	row, err := s.inner.Get(ctx, token)
	if err != nil {
		if shared.ErrorCode(err) == shared.ENOTFOUND {
			s.put(token, entry{expires: s.now().Add(min(s.ttl, maxMissTTL))})
		}
		return nil, err
	}
	s.remember(row)
	return row.Clone(), nil
}

func (s *Store) remember(row *shared.Session) {
	s.put(row.Token, entry{row: row.Clone(), expires: s.now().Add(s.ttl)})
}

func (s *Store) put(token string, e entry) {
	if s.ttl <= 0 {
		return
	}
	s.cacheLock.Lock()
	defer s.cacheLock.Unlock()
	if len(s.cache) >= s.max {
		s.cache = map[string]entry{}
	}
	s.cache[token] = e
}

func (s *Store) forget(token string) {
	s.cacheLock.Lock()
	delete(s.cache, token)
	s.cacheLock.Unlock()
}

// Create implements shared.Store.
func (s *Store) Create(ctx context.Context, row *shared.Session) error {
	if err := s.inner.Create(ctx, row); err != nil {
		return err
	}
	s.remember(row)
	return nil
}

// List implements shared.Store; it is never cached.
func (s *Store) List(ctx context.Context) ([]*shared.Session, error) { return s.inner.List(ctx) }

// Update implements shared.Store.
func (s *Store) Update(ctx context.Context, token string, u shared.SessionUpdate) (*shared.Session, error) {
	row, err := s.inner.Update(ctx, token, u)
	if err != nil {
		s.forget(token)
		return nil, err
	}
	s.remember(row)
	return row, nil
}

// Delete implements shared.Store.
func (s *Store) Delete(ctx context.Context, token string) error {
	err := s.inner.Delete(ctx, token)
	s.forget(token)
	return err
}

// Close implements shared.Store.
func (s *Store) Close() error { return s.inner.Close() }
