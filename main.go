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
	log := newLogger(os.Getenv("WAGO_LOG_LEVEL"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var err error
	switch role {
	case "serve":
		if functions.OnLambda() {
			err = api(ctx, log)
		} else {
			err = serve(ctx, log)
		}
	case "api":
		err = api(ctx, log)
	case "connector":
		err = connectorRole(ctx, log)
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
