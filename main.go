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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wago-gw/wago/functions"
)

// shutdownGrace bounds a clean stop after SIGTERM/SIGINT.
const shutdownGrace = 4 * time.Second

func main() {
	role := "serve"
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	switch role {
	case "-h", "--help", "help":
		fmt.Println("usage: wago [serve|api|connector]; configuration: WAGO_* environment variables, see README.md")
		return
	case "serve", "api", "connector":
	default:
		fmt.Fprintf(os.Stderr, "wago: unknown role %q: use serve, api or connector\n", role)
		os.Exit(2)
	}
	if role == "serve" && functions.OnLambda() {
		role = "api"
	}
	// The configuration is read once, before anything else happens: a bad
	// value stops the process here, with every bad variable named.
	cfg, err := loadConfig()
	if err = errors.Join(err, cfg.validateRole(role)); err != nil {
		fmt.Fprintf(os.Stderr, "wago: invalid configuration (see \"Configuration\" in README.md):\n  %s\n",
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.slogLevel()}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch role {
	case "serve":
		err = serve(ctx, log, cfg)
	case "api":
		err = api(ctx, log, cfg)
	case "connector":
		err = connectorRole(ctx, log, cfg)
	}
	if err != nil {
		log.Error("wago stopped", "err", err)
		os.Exit(1)
	}
}

// listen serves h on cfg.Listen until ctx ends, then shuts down within
// shutdownGrace: the server first, then whatever closeParts closes. The
// server's timeouts and header limit come from cfg: a client that sends
// its headers or body too slowly, or headers that are too large, loses its
// connection instead of holding it (and its memory) forever.
func listen(ctx context.Context, log *slog.Logger, cfg Config, h http.Handler, closeParts func(context.Context)) error {
	srv := &http.Server{
		Addr:              cfg.Listen,
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
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
