package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared/cachedstore"
	"github.com/wago-gw/wago/shared/dynamo"
	"github.com/wago-gw/wago/shared/redisbus"
)

// distributedConfig is what both distributed roles read.
type distributedConfig struct {
	redisURL    string
	table       string
	endpoint    string
	createTable bool
	shards      int
}

func readDistributedConfig() (distributedConfig, error) {
	c := distributedConfig{
		redisURL: os.Getenv("WAGO_REDIS_URL"),
		table:    env("WAGO_DYNAMODB_TABLE", "wago-sessions"),
		endpoint: os.Getenv("WAGO_DYNAMODB_ENDPOINT"),
	}
	if c.redisURL == "" {
		return c, fmt.Errorf("WAGO_REDIS_URL is required in distributed mode")
	}
	var err error
	if c.createTable, err = strconv.ParseBool(env("WAGO_DYNAMODB_CREATE_TABLE", "true")); err != nil {
		return c, fmt.Errorf("WAGO_DYNAMODB_CREATE_TABLE: %w", err)
	}
	if c.shards, err = strconv.Atoi(env("WAGO_SHARDS", strconv.Itoa(redisbus.DefaultShards))); err != nil || c.shards < 1 {
		return c, fmt.Errorf("WAGO_SHARDS must be a positive number")
	}
	return c, nil
}

// openRedis connects to WAGO_REDIS_URL with short timeouts, so that an
// outage answers 503 quickly instead of hanging requests.
func openRedis(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("WAGO_REDIS_URL: %w", err)
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.PoolTimeout = 3 * time.Second
	opts.MaxRetries = 1
	opts.DialerRetries = 1            // a refused dial answers at once, not after 5 tries
	opts.ContextTimeoutEnabled = true // a hung Redis is cut by each call's deadline
	if opts.PoolSize == 0 {           // not set in the URL (?pool_size=)
		// Every API request makes one short Redis call: with go-redis's
		// default of 10 per CPU, 50 concurrent requests queue for a
		// connection. Connections are opened on demand.
		opts.PoolSize = 128
	}
	return redis.NewClient(opts), nil
}

// openState opens what both distributed roles share: Redis and the token
// table. The caller closes the Redis client.
func openState(ctx context.Context, c distributedConfig) (*redis.Client, *dynamo.Store, error) {
	rdb, err := openRedis(c.redisURL)
	if err != nil {
		return nil, nil, err
	}
	rows, err := dynamo.Open(ctx, dynamo.Config{Table: c.table, Endpoint: c.endpoint, CreateTable: c.createTable})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, rows, nil
}

// api runs the stateless HTTP API: rows in DynamoDB (behind a short read
// cache), everything else through Redis. On AWS Lambda it serves API
// Gateway events instead of listening.
func api(ctx context.Context, log *slog.Logger) error {
	c, err := readDistributedConfig()
	if err != nil {
		return err
	}
	admin := os.Getenv("WAGO_ADMIN_TOKEN")
	if admin == "" {
		return fmt.Errorf("WAGO_ADMIN_TOKEN is required in distributed mode")
	}
	cacheTTL, err := time.ParseDuration(env("WAGO_TOKEN_CACHE_TTL", "5s"))
	if err != nil {
		return fmt.Errorf("WAGO_TOKEN_CACHE_TTL: %w", err)
	}
	rdb, rows, err := openState(ctx, c)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := cachedstore.New(rows, cacheTTL, 0)
	h, err := functions.New(functions.Config{
		Store:      store,
		Connector:  redisbus.NewClient(rdb, redisbus.ClientConfig{Shards: c.shards}),
		AdminToken: admin,
		Log:        log.With("part", "api"),
	})
	if err != nil {
		return err
	}
	if functions.OnLambda() {
		functions.ServeLambda(h)
		return nil
	}
	return listen(ctx, log, h, func(context.Context) {})
}
