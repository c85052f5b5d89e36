// Command wago is a WhatsApp session gateway compatible with the WaGo API.
//
// One binary, three roles:
//
//	wago [serve]    all-in-one: HTTP API and connector in one process, SQLite under WAGO_DATA_DIR
//	wago api        the stateless HTTP API (Redis + DynamoDB); automatic on AWS Lambda
//	wago connector  the whatsmeow sockets, commanded over Redis Streams
//
// Configuration comes from the environment: see README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared/sqlite"
)

// shutdownGrace bounds a clean stop after SIGTERM/SIGINT.
const shutdownGrace = 4 * time.Second

func main() {
	role := "serve"
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	log := newLogger(os.Getenv("WAGO_LOG_LEVEL"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var err error
	switch role {
	case "serve":
		err = serve(ctx, log)
	case "-h", "--help", "help":
		fmt.Println("usage: wago [serve|api|connector]")
		return
	default:
		err = fmt.Errorf("unknown role %q: use serve, api or connector", role)
	}
	if err != nil {
		log.Error("wago stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// serve runs the all-in-one process: HTTP API and connector, state in
// SQLite files under WAGO_DATA_DIR.
func serve(ctx context.Context, log *slog.Logger) error {
	dataDir := env("WAGO_DATA_DIR", "./data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("failed to create data directory: %w", err)
	}
	adminToken, err := adminToken(dataDir, log)
	if err != nil {
		return err
	}
	hooks, err := whatsappHooks()
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "wago.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := openKeyStore(ctx, env("WAGO_WHATSMEOW_DB", filepath.Join(dataDir, "whatsmeow.db")), log)
	if err != nil {
		return err
	}
	defer keys.Close()

	mgr := connector.New(connector.Config{
		Store: store, Container: keys, Log: log.With("part", "connector"), Hooks: hooks,
		WAVersion: os.Getenv("WAGO_WA_VERSION"), FetchWAVersion: true,
	})
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

// listen serves h on WAGO_LISTEN until ctx ends, then shuts down within
// shutdownGrace: the server first, then whatever closeParts closes.
func listen(ctx context.Context, log *slog.Logger, h http.Handler, closeParts func(context.Context)) error {
	srv := &http.Server{
		Addr:              env("WAGO_LISTEN", ":1337"),
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("wago listening", "addr", srv.Addr)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	hctx, hcancel := context.WithTimeout(sctx, shutdownGrace/2)
	defer hcancel()
	if err := srv.Shutdown(hctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	closeParts(sctx)
	return nil
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
