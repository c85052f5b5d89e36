//go:build !lambda.norpc

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared/cachedstore"
	"github.com/wago-gw/wago/shared/redisbus"
)

// connectorRole runs the connector: it owns shards through Redis leases,
// restores each shard's logged-in sessions when it gains it, serves the
// shard's commands, and publishes live state to Redis.
func connectorRole(ctx context.Context, log *slog.Logger, cfg Config) error {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	rdb, rows, err := openState(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// Its writes of rows (JIDs, AutoConnect) reach the APIs' cached lists.
	tracked := redisbus.NewRowsVersion(rdb, "").Track(rows)
	reg, metrics := newMetrics()
	// The publisher stamps statuses with srv's lease of the token's shard,
	// and the outbox delivers the events of the shards srv owns (srv is set
	// before either runs); the outbox reads the stream as srv's member, so
	// that a dead connector's attempts are taken over with its shards.
	var srv *redisbus.Server
	pub := redisbus.NewStatePublisher(rdb, redisbus.PublisherConfig{
		Logger: log.With("part", "publisher"),
		Owner:  func(token string) string { return srv.OwnerOf(token) },
	})
	consumer := redisbus.NewConsumerID()
	outbox := redisbus.NewOutbox(rdb, redisbus.OutboxConfig{
		Shards: cfg.Shards, Owned: func() []int { return srv.Owned() }, Consumer: consumer,
		Alive: func(ctx context.Context, c string) (bool, error) { return srv.Member(ctx, c) },
	})
	mgr, keys, err := newConnector(ctx, log, cfg, connector.Config{
		Store: tracked, OnState: pub.Publish, OnDelete: pub.Forget,
		SentLog: redisbus.NewSentLog(rdb, ""), Outbox: outbox, Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer keys.Close()
	shardOf := func(token string) int { return redisbus.ShardOf(token, cfg.Shards) }
	inShard := func(shard int) func(string) bool {
		return func(token string) bool { return shardOf(token) == shard }
	}
	restorer := mgr.NewShardRestorer(shardOf) // one listing per batch of shards gained
	srv = redisbus.NewServer(rdb, mgr, redisbus.ServerConfig{
		Shards:     cfg.Shards,
		ConsumerID: consumer,
		Logger:     log.With("part", "bus"),
		Registerer: reg,
		OnAcquire: func(ctx context.Context, shard int) {
			ok, failed := restorer.Restore(ctx, shard)
			if ok+failed > 0 {
				log.Info("restored shard", "shard", shard, "restored", ok, "failed", failed)
			}
		},
		OnRelease: func(shard int) {
			// Stop the shard's sockets, then stop publishing their state:
			// the next owner writes it.
			for _, token := range mgr.Stop(inShard(shard)) {
				pub.Release(token)
			}
		},
	})

	// The connector serves no API: its probes and metrics are on
	// WAGO_METRICS_LISTEN, when set.
	probes := functions.Probes(functions.ProbesConfig{
		Log: log.With("part", "probes"), Metrics: metrics, Registerer: reg,
		Readiness: functions.Readiness{
			Checks: []functions.Check{storeCheck(rows), redisCheck(rdb)},
			View:   managerView(mgr, func() []int { return srv.Owned() }),
		},
	})
	stopHTTP, err := startHTTP(log, cfg, endpoints(cfg, nil, probes))
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	pubCtx, stopPub := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); pub.Run(pubCtx) }()
	hooksCtx, stopHooks := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		newWebhookWorker(log, cfg, outbox, cachedstore.New(tracked, cfg.TokenCacheTTL, 0), mgr, reg, redisbus.NewDeliveryLog(rdb, "")).Run(hooksCtx)
	}()
	log.Info("connector running", "shards", cfg.Shards)
	// On SIGTERM, Run releases every shard at once (their leases deleted,
	// so that another connector takes them over without waiting for the
	// TTL), which stops their sockets without logging out.
	err = srv.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), partsBudget(cfg))
	defer cancel()
	mgr.Close(sctx)
	stopHooks() // after the sockets: no event is queued any more
	stopPub()
	wg.Wait()
	stopHTTP(sctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("connector: %w", err)
	}
	return nil
}
