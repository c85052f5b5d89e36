//go:build !lambda.norpc

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared/sqlite"
)

// serve runs the all-in-one process: HTTP API and connector, state in
// SQLite files under WAGO_DATA_DIR.
func serve(ctx context.Context, log *slog.Logger) error {
	dir, err := dataDir()
	if err != nil {
		return err
	}
	adminToken, err := adminToken(dir, log)
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "wago.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	mgr, keys, err := newConnector(ctx, log, dir, connector.Config{Store: store})
	if err != nil {
		return err
	}
	defer keys.Close()

	api, err := functions.New(functions.Config{Store: store, Connector: mgr, AdminToken: adminToken, Log: log.With("part", "api")})
	if err != nil {
		return err
	}
	go func() {
		start := time.Now()
		ok, failed := mgr.Restore(ctx, nil)
		if ok+failed > 0 {
			log.Info("restored sessions", "restored", ok, "failed", failed, "took", time.Since(start).Round(time.Millisecond))
		}
	}()
	return listen(ctx, log, api, func(ctx context.Context) { mgr.Close(ctx) })
}

// dataDir returns WAGO_DATA_DIR, created if needed.
func dataDir() (string, error) {
	dir := env("WAGO_DATA_DIR", "./data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("failed to create data directory: %w", err)
	}
	return dir, nil
}

// newConnector opens the whatsmeow key store (WAGO_WHATSMEOW_DB, by default
// under dataDir) and returns a connector on it configured from the
// environment; cfg supplies the token store and the callbacks. The caller
// closes the key store.
func newConnector(ctx context.Context, log *slog.Logger, dataDir string, cfg connector.Config) (*connector.Manager, *sqlstore.Container, error) {
	hooks, err := whatsappHooks()
	if err != nil {
		return nil, nil, err
	}
	keys, err := openKeyStore(ctx, env("WAGO_WHATSMEOW_DB", filepath.Join(dataDir, "whatsmeow.db")), log)
	if err != nil {
		return nil, nil, err
	}
	cfg.Container, cfg.Hooks = keys, hooks
	cfg.Log = log.With("part", "connector")
	cfg.WAVersion, cfg.FetchWAVersion = os.Getenv("WAGO_WA_VERSION"), true
	return connector.New(cfg), keys, nil
}

// adminToken returns WAGO_ADMIN_TOKEN, or the token generated at the first
// start and kept in the data directory (printed once, when generated).
func adminToken(dataDir string, log *slog.Logger) (string, error) {
	if t := strings.TrimSpace(os.Getenv("WAGO_ADMIN_TOKEN")); t != "" {
		return t, nil
	}
	path := filepath.Join(dataDir, "admin-token")
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

// whatsappHooks reads the two test hooks.
func whatsappHooks() (connector.Hooks, error) {
	h := connector.Hooks{Addr: os.Getenv("WAGO_WHATSAPP_ADDR")}
	if k := os.Getenv("WAGO_WHATSAPP_ROOT_KEY"); k != "" {
		key, err := connector.ParseRootKey(k)
		if err != nil {
			return h, fmt.Errorf("WAGO_WHATSAPP_ROOT_KEY: %w", err)
		}
		h.RootKey = key
	}
	return h, nil
}

// openKeyStore opens the whatsmeow key store: a SQLite file path, or a
// postgres:// URL.
func openKeyStore(ctx context.Context, addr string, log *slog.Logger) (*sqlstore.Container, error) {
	dialect, dsn := "sqlite", sqlite.DSN(addr)
	if strings.HasPrefix(addr, "postgres://") || strings.HasPrefix(addr, "postgresql://") {
		dialect, dsn = "postgres", addr
	}
	c, err := sqlstore.New(ctx, dialect, dsn, connector.WALogger(log.With("part", "keystore")))
	if err != nil {
		return nil, fmt.Errorf("failed to open the whatsmeow key store: %w", err)
	}
	return c, nil
}
