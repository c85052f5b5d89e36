package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared"
)

// probeToken is the token readiness reads from the token store: no row has
// it, and reading it proves the store answers.
const probeToken = "wago-readiness-probe"

// storeCheck is readiness's check of the token store.
func storeCheck(s shared.Store) functions.Check {
	return functions.Check{Name: "store", Probe: func(ctx context.Context) error {
		_, err := s.Get(ctx, probeToken)
		if shared.ErrorCode(err) == shared.ENOTFOUND {
			return nil
		}
		return err
	}}
}

// redisCheck is readiness's check of Redis.
func redisCheck(rdb *redis.Client) functions.Check {
	return functions.Check{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
}
