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
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wago-gw/wago/functions"
)

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
	log := cfg.logger(os.Stderr)
	startGCFloor(defaultGCFloor)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal: a second one stops at once, and the stop
		// may take WAGO_SHUTDOWN_TIMEOUT at most.
		<-ctx.Done()
		stop()
		time.Sleep(cfg.ShutdownTimeout)
		log.Error("shutdown deadline passed: exiting now", "timeout", cfg.ShutdownTimeout)
		os.Exit(1)
	}()

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

// endpoint is one address the process serves over HTTP.
type endpoint struct {
	addr string
	h    http.Handler
}

// endpoints returns the API's endpoint (h on WAGO_LISTEN; nil h: none) and
// the operator's (probes on WAGO_METRICS_LISTEN, when set).
func endpoints(cfg Config, h, probes http.Handler) []endpoint {
	var eps []endpoint
	if h != nil {
		eps = append(eps, endpoint{cfg.Listen, h})
	}
	if cfg.MetricsListen != "" {
		eps = append(eps, endpoint{cfg.MetricsListen, probes})
	}
	return eps
}

// startHTTP binds every endpoint (an address in use fails here, at start)
// and serves them in the background. The servers' timeouts and header limit
// come from cfg: a client that sends its headers or body too slowly, or
// headers that are too large, loses its connection instead of holding it
// (and its memory) forever. The timeouts run on a deadlineListener's
// clock (deadlines.go), up to deadlineTick late. stop stops accepting and
// waits for the requests in flight until its context ends.
func startHTTP(log *slog.Logger, cfg Config, eps []endpoint) (stop func(context.Context), err error) {
	var srvs []*http.Server
	stop = func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, srv := range srvs {
			wg.Go(func() {
				if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					log.Warn("http shutdown", "addr", srv.Addr, "err", err)
				}
			})
		}
		wg.Wait()
	}
	for _, ep := range eps {
		l, err := net.Listen("tcp", ep.addr)
		if err != nil {
			stop(context.Background())
			return nil, fmt.Errorf("http server: %w", err)
		}
		l = newDeadlineListener(l, deadlineTick)
		srv := &http.Server{
			Addr:              ep.addr,
			Handler:           ep.h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
		}
		srvs = append(srvs, srv)
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "addr", ep.addr, "err", err)
			}
		}()
		log.Info("wago listening", "addr", ep.addr)
	}
	return stop, nil
}

// listen serves eps until ctx ends, then stops within the shutdown
// timeout: the servers first (no new requests; those in flight finish,
// for up to half of it), then whatever closeParts closes.
func listen(ctx context.Context, log *slog.Logger, cfg Config, eps []endpoint, closeParts func(context.Context)) error {
	stopHTTP, err := startHTTP(log, cfg, eps)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), partsBudget(cfg))
	defer cancel()
	hctx, hcancel := context.WithTimeout(sctx, cfg.ShutdownTimeout/2)
	defer hcancel()
	stopHTTP(hctx)
	closeParts(sctx)
	return nil
}

// partsBudget is the time a stop gives its parts: most of the shutdown
// timeout, leaving room to close files before the deadline.
func partsBudget(cfg Config) time.Duration { return cfg.ShutdownTimeout * 9 / 10 }
