// Package cachedstore puts a short-lived, bounded memory cache of token rows
// in front of a shared.Store, for the stateless API: every request looks its
// token up, and a DynamoDB read per request would cap throughput and cost
// money. Writes go through this process's cache at once; rows changed by
// other processes are seen within the TTL. A token that is not found is
// remembered as missing for a shorter time (at most a second), so that a
// flood of wrong tokens does not become a flood of table reads. The list
// of every row (GET /session/all, a full table scan) is kept for the TTL
// too, and dropped at every write through this process; with TrackList, at
// every write of any process.
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

	// cacheLock guards cache and the cached list.
	cacheLock sync.RWMutex
	cache     map[string]entry
	list      []*shared.Session
	listOK    bool // list is cached, until listUntil
	listUntil time.Time
	listOf    int64  // the table's version the list was read at (see TrackList)
	writes    uint64 // writes through this Store, to know a list read before one

	// version reads the table's version; nil: the list is kept for the TTL.
	version func(context.Context) (int64, error)

	// listing is held while the inner store lists, so that concurrent
	// misses share one scan.
	listing sync.Mutex
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

// wrote forgets the cached list, after a write (or a failed one: it may
// have changed the table all the same).
func (s *Store) wrote() {
	s.cacheLock.Lock()
	s.list, s.listOK = nil, false
	s.writes++
	s.cacheLock.Unlock()
}

// Create implements shared.Store.
func (s *Store) Create(ctx context.Context, row *shared.Session) error {
	err := s.inner.Create(ctx, row)
	s.wrote()
	if err != nil {
		return err
	}
	s.remember(row)
	return nil
}

// TrackList makes the cached list follow version, the table's version
// (redisbus.RowsVersion: every process that writes rows increments it):
// the list is read again as soon as the version has changed, within the
// TTL. When the version cannot be read, the list is read from the table.
// It returns s; call it before using s.
func (s *Store) TrackList(version func(context.Context) (int64, error)) *Store {
	s.version = version
	return s
}

// List implements shared.Store: the cached list while it is fresh (and of
// the table's current version, with TrackList), else the inner store's,
// cached unless this process wrote meanwhile.
func (s *Store) List(ctx context.Context) ([]*shared.Session, error) {
	if s.ttl <= 0 {
		return s.inner.List(ctx)
	}
	var version int64
	if s.version != nil {
		v, err := s.version(ctx)
		if err != nil {
			return s.inner.List(ctx)
		}
		version = v
	}
	if rows, ok := s.cachedList(version); ok {
		return rows, nil
	}
	s.listing.Lock()
	defer s.listing.Unlock()
	if rows, ok := s.cachedList(version); ok {
		return rows, nil // listed while this one waited
	}
	s.cacheLock.RLock()
	writes := s.writes
	s.cacheLock.RUnlock()
	rows, err := s.inner.List(ctx)
	if err != nil {
		return nil, err
	}
	s.cacheLock.Lock()
	if s.writes == writes {
		s.list, s.listOK, s.listUntil, s.listOf = rows, true, s.now().Add(s.ttl), version
	}
	s.cacheLock.Unlock()
	return append(make([]*shared.Session, 0, len(rows)), rows...), nil
}

// cachedList returns a new slice of the cached list's rows if it is fresh
// and of the table's version (0 without TrackList).
func (s *Store) cachedList(version int64) ([]*shared.Session, bool) {
	s.cacheLock.RLock()
	defer s.cacheLock.RUnlock()
	if !s.listOK || !s.now().Before(s.listUntil) || s.listOf != version {
		return nil, false
	}
	return append(make([]*shared.Session, 0, len(s.list)), s.list...), true
}

// Update implements shared.Store.
func (s *Store) Update(ctx context.Context, token string, u shared.SessionUpdate) (*shared.Session, error) {
	row, err := s.inner.Update(ctx, token, u)
	s.wrote()
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
	s.wrote()
	s.forget(token)
	return err
}

// Close implements shared.Store.
func (s *Store) Close() error { return s.inner.Close() }
