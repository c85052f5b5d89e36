package redisbus

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// RowsVersion is a counter in Redis of the writes to the token table, that
// every process writing rows (API and connectors) increments after each
// write. A process that keeps a copy of the whole table (the API's cached
// list, for /session/all) reads it to know whether its copy is still the
// table's: a row a connector writes (a JID at pairing, cleared at logout)
// shows in every API's next list, not a cache TTL later.
type RowsVersion struct {
	rdb redis.UniversalClient
	key string
}

// NewRowsVersion returns the counter of the token table under prefix (""
// for DefaultPrefix).
func NewRowsVersion(rdb redis.UniversalClient, prefix string) *RowsVersion {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RowsVersion{rdb: rdb, key: prefix + ":rows:version"}
}

// Version reads the counter (0 before the first write), within
// DefaultRedisTimeout.
func (v *RowsVersion) Version(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRedisTimeout)
	defer cancel()
	n, err := v.rdb.Get(ctx, v.key).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// bump increments the counter, within DefaultRedisTimeout. A failure is
// not the write's: readers then see it within their cache's TTL.
func (v *RowsVersion) bump(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultRedisTimeout)
	defer cancel()
	v.rdb.Incr(ctx, v.key)
}

// Track returns inner with every write (create, update, delete; done or
// failed, which may have written all the same) followed by an increment
// of the counter.
func (v *RowsVersion) Track(inner shared.Store) shared.Store {
	return &trackedStore{Store: inner, v: v}
}

// trackedStore is a shared.Store whose writes increment a RowsVersion.
type trackedStore struct {
	shared.Store
	v *RowsVersion
}

func (s *trackedStore) Create(ctx context.Context, row *shared.Session) error {
	defer s.v.bump(ctx)
	return s.Store.Create(ctx, row)
}

func (s *trackedStore) Update(ctx context.Context, token string, u shared.SessionUpdate) (*shared.Session, error) {
	defer s.v.bump(ctx)
	return s.Store.Update(ctx, token, u)
}

func (s *trackedStore) Delete(ctx context.Context, token string) error {
	defer s.v.bump(ctx)
	return s.Store.Delete(ctx, token)
}
