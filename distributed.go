package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared/cachedstore"
	"github.com/wago-gw/wago/shared/dynamo"
	"github.com/wago-gw/wago/shared/redisbus"
)

// openRedis connects to url (WAGO_REDIS_URL) with short timeouts, so that an
// outage answers 503 quickly instead of hanging requests.
func openRedis(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("failed to parse WAGO_REDIS_URL: %w", err)
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.PoolTimeout = 3 * time.Second
	opts.MaxRetries = 1
	opts.DialerRetries = 1            // a refused dial answers at once, not after 5 tries
	opts.ContextTimeoutEnabled = true // a hung Redis is cut by each call's deadline
	if opts.Protocol == 0 {           // not set in the URL (?protocol=)
		// RESP2: wago needs none of RESP3's push messages, and with RESP3
		// go-redis looks for them before every command it sends (3.5% of
		// the API's CPU under load).
		opts.Protocol = 2
	}
	if opts.PoolSize == 0 { // not set in the URL (?pool_size=)
		// Every API request makes one short Redis call: with go-redis's
		// default of 10 per CPU, 50 concurrent requests queue for a
		// connection. Connections are opened on demand.
		opts.PoolSize = 128
	}
	return redis.NewClient(opts), nil
}

// openState opens what both distributed roles share: Redis and the token
// table. The caller closes the Redis client.
func openState(ctx context.Context, cfg Config) (*redis.Client, *dynamo.Store, error) {
	rdb, err := openRedis(cfg.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	rows, err := dynamo.Open(ctx, dynamo.Config{Table: cfg.DynamoDBTable, Endpoint: cfg.DynamoDBEndpoint, CreateTable: cfg.DynamoDBCreateTable})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, rows, nil
}

// api runs the stateless HTTP API: rows in DynamoDB (behind a short read
// cache), everything else through Redis. On AWS Lambda it serves API
// Gateway events instead of listening.
func api(ctx context.Context, log *slog.Logger, cfg Config) error {
	rdb, rows, err := openState(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// The list of rows (/session/all) is read again when a connector
	// writes one: RowsVersion counts the writes of every process.
	version := redisbus.NewRowsVersion(rdb, "")
	store := cachedstore.New(version.Track(rows), cfg.TokenCacheTTL, 0).TrackList(version.Version)
	var reg prometheus.Registerer
	var metrics http.Handler
	if !functions.OnLambda() {
		reg, metrics = newMetrics()
	}
	ready := functions.Readiness{Checks: []functions.Check{storeCheck(rows), redisCheck(rdb)}}
	// The status cache needs its subscription to hear every change: a
	// Lambda instance, frozen between events, would not.
	conn := redisbus.NewClient(rdb, redisbus.ClientConfig{
		Shards: cfg.Shards, Registerer: reg, Logger: log.With("part", "api"),
		StatusCache: cfg.StatusCache && !functions.OnLambda(),
	})
	defer conn.Close()
	h, err := functions.New(functions.Config{
		Store:      store,
		Connector:  conn,
		AdminToken: cfg.AdminToken,
		Log:        log.With("part", "api"),
		// The dead letters of the connectors' webhook outbox.
		DeadLetters: redisbus.NewOutbox(rdb, redisbus.OutboxConfig{Shards: cfg.Shards}),
		Readiness:   ready, Metrics: metrics, Registerer: reg,
		// What the connectors' delivery workers record (the dashboard's last events).
		Deliveries: redisbus.NewDeliveryLog(rdb, ""),
	})
	if err != nil {
		return err
	}
	if functions.OnLambda() {
		functions.ServeLambda(h)
		return nil
	}
	probes := functions.Probes(functions.ProbesConfig{Log: log.With("part", "probes"), Readiness: ready, Metrics: metrics})
	return listen(ctx, log, cfg, endpoints(cfg, h, probes), func(context.Context) {})
}
