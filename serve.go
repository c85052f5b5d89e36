//go:build !lambda.norpc

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/dynamokeys"
	"github.com/wago-gw/wago/shared/keystore"
	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/webhook"
)

// serve runs the all-in-one process: HTTP API and connector, state in
// SQLite files under cfg.DataDir.
func serve(ctx context.Context, log *slog.Logger, cfg Config) error {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	adminToken, err := adminToken(cfg, log)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "wago.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	outbox, err := sqlite.OpenOutbox(ctx, filepath.Join(cfg.DataDir, "outbox.db"))
	if err != nil {
		return err
	}
	defer outbox.Close()
	reg, metrics := newMetrics()
	mgr, keys, err := newConnector(ctx, log, cfg, connector.Config{Store: store, Outbox: outbox, Registerer: reg})
	if err != nil {
		return err
	}
	defer keys.Close()

	ready := functions.Readiness{Checks: []functions.Check{storeCheck(store)}, View: managerView(mgr, nil)}
	deliveries := webhook.NewMemoryLog(0) // the dashboard's last events
	api, err := functions.New(functions.Config{
		Store: store, Connector: mgr, AdminToken: adminToken, Log: log.With("part", "api"), DeadLetters: outbox,
		Readiness: ready, Metrics: metrics, Registerer: reg, Deliveries: deliveries,
	})
	if err != nil {
		return err
	}
	probes := functions.Probes(functions.ProbesConfig{Log: log.With("part", "probes"), Readiness: ready, Metrics: metrics})
	hooksCtx, stopHooks := context.WithCancel(context.Background())
	hooksDone := make(chan struct{})
	go func() {
		defer close(hooksDone)
		newWebhookWorker(log, cfg, outbox, store, mgr, reg, deliveries).Run(hooksCtx)
	}()
	defer func() { stopHooks(); <-hooksDone }() // before the outbox closes
	go func() {
		start := time.Now()
		ok, failed := mgr.Restore(ctx, nil)
		if ok+failed > 0 {
			log.Info("restored sessions", "restored", ok, "failed", failed, "took", time.Since(start).Round(time.Millisecond))
		}
	}()
	// On SIGTERM: no new requests, those in flight finish; the sockets
	// close without logging out; then (deferred) the webhook worker stops,
	// its attempts in flight staying in the outbox, and the outbox commits
	// what it queued and closes.
	return listen(ctx, log, cfg, endpoints(cfg, api, probes), func(ctx context.Context) { mgr.Close(ctx) })
}

// managerView is readiness's view of mgr: its sessions connected and in
// total, and the shards owned when owned is set (the connector role).
func managerView(mgr *connector.Manager, owned func() []int) func() map[string]any {
	return func() map[string]any {
		states := mgr.States()
		total := 0
		for _, n := range states {
			total += n
		}
		view := map[string]any{"sessions": map[string]int{"connected": states[shared.StateConnected], "total": total}}
		if owned != nil {
			view["shards"] = owned()
		}
		return view
	}
}

// newWebhookWorker returns the delivery worker of outbox, configured from
// cfg; rows gives each token's receiver, mgr hears of a webhook that a
// receiver's 410 removed, reg gets its metrics, and deliveries records how
// each attempt ended.
func newWebhookWorker(log *slog.Logger, cfg Config, outbox shared.Outbox, rows shared.Store, mgr shared.Invoker, reg prometheus.Registerer, deliveries shared.DeliveryLog) *webhook.Worker {
	return webhook.New(webhook.Config{
		Outbox: outbox, Rows: rows, Secret: cfg.WebhookSecret, Format: cfg.WebhookFormat,
		Schedule: cfg.retrySchedule(), Timeout: cfg.WebhookTimeout, Concurrency: cfg.WebhookConcurrency,
		DenyPrivate: cfg.WebhookDenyPrivate, Log: log.With("part", "webhooks"), Registerer: reg, Deliveries: deliveries,
		InlineMediaMax: int64(cfg.WebhookInlineMedia),
		Media: func(ctx context.Context, token string, req shared.DownloadRequest) (shared.DownloadResult, error) {
			return shared.Call(ctx, mgr, shared.OpDownload, token, req)
		},
		Gone: func(token string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shared.Call(ctx, mgr, shared.OpReloadSession, token, shared.WebhookSettings{})
		},
	})
}

// prepareDataDir creates the data directory if needed and makes sure that
// files can be created in it (SQLite would only say "unable to open
// database file"): it creates and removes a probe file. Its error names the
// directory and the cause.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w", dir, pathCause(err))
	}
	return checkWritable("data directory", dir)
}

// checkWritable creates and removes a probe file in dir, an existing
// directory; what names dir in the error.
func checkWritable(what, dir string) error {
	f, err := os.CreateTemp(dir, ".wago-probe-*")
	if err != nil {
		return fmt.Errorf("%s %s is not writable: %w", what, dir, pathCause(err))
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("%s %s is not writable: %w", what, dir, pathCause(err))
	}
	return nil
}

// pathCause returns the cause inside a *fs.PathError (such as "permission
// denied"), whose own text repeats an operation and a path.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// newConnector opens the whatsmeow key store (cfg.KeyStore()) and returns a
// connector on it configured from cfg; base supplies the token store and
// the callbacks. The caller closes the key store.
func newConnector(ctx context.Context, log *slog.Logger, cfg Config, base connector.Config) (*connector.Manager, keystore.Store, error) {
	hooks, err := whatsappHooks(cfg)
	if err != nil {
		return nil, nil, err
	}
	if db := cfg.WhatsmeowDB; db != "" && !strings.Contains(db, "://") {
		// An explicit SQLite path: SQLite creates the file and its
		// journal in that directory, which must therefore be writable.
		if err := checkWritable("key store directory", filepath.Dir(db)); err != nil {
			return nil, nil, err
		}
	}
	keys, err := openKeyStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	base.Container, base.Hooks = keys, hooks
	base.Log = log.With("part", "connector")
	base.WhatsmeowLevel = cfg.whatsmeowLevel()
	base.WAVersion, base.FetchWAVersion = cfg.WAVersion, true
	base.ConnectTimeout = cfg.ConnectTimeout
	return connector.New(base), keys, nil
}

// adminToken returns cfg.AdminToken, or the token generated at the first
// start and kept in the data directory (printed once, when generated).
func adminToken(cfg Config, log *slog.Logger) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	path := filepath.Join(cfg.DataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		log.Info("using the generated admin token", "file", path)
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("failed to generate an admin token: %w", err)
	}
	token := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("failed to save the generated admin token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\nWAGO_ADMIN_TOKEN was not set: generated admin token (kept in %s):\n\n    %s\n\n", path, token)
	return token, nil
}

// whatsappHooks returns the two test hooks of cfg.
func whatsappHooks(cfg Config) (connector.Hooks, error) {
	h := connector.Hooks{Addr: cfg.WhatsAppAddr}
	if cfg.WhatsAppRootKey != "" {
		key, err := parseRootKey(cfg.WhatsAppRootKey)
		if err != nil {
			return h, fmt.Errorf("WAGO_WHATSAPP_ROOT_KEY: %w", err)
		}
		h.RootKey = key
	}
	return h, nil
}

// checkWAVersion is Config.Validate's rule for WAGO_WA_VERSION: the
// connector's own parser.
func checkWAVersion(s string) error {
	_, err := connector.ParseWAVersion(s)
	return err
}

// parseRootKey decodes WAGO_WHATSAPP_ROOT_KEY with the connector's parser.
func parseRootKey(s string) (*[32]byte, error) { return connector.ParseRootKey(s) }

// openKeyStore opens the whatsmeow key store: a SQLite file path, a
// postgres:// (postgresql://) URL, or dynamodb://<table> (on the token
// table's endpoint, created if missing when WAGO_DYNAMODB_CREATE_TABLE is
// on).
func openKeyStore(ctx context.Context, cfg Config, log *slog.Logger) (keystore.Store, error) {
	addr := cfg.KeyStore()
	keysLog := connector.WALogger(log.With("part", "keystore"), cfg.whatsmeowLevel())
	var (
		c   keystore.Store
		err error
	)
	if table, ok := strings.CutPrefix(addr, "dynamodb://"); ok {
		c, err = dynamokeys.OpenKeys(ctx, dynamokeys.KeysConfig{
			Table: table, Endpoint: cfg.DynamoDBEndpoint, CreateTable: cfg.DynamoDBCreateTable, Log: keysLog,
		})
	} else if postgres.IsURL(addr) {
		c, err = postgres.OpenKeyStore(ctx, addr, keysLog)
	} else {
		// One connection: writers queue in Go instead of failing with
		// SQLITE_BUSY under load.
		c, err = sqlite.OpenKeyStore(ctx, addr, keysLog)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open the whatsmeow key store: %w", err)
	}
	return c, nil
}
