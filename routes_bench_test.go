package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/functions"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/cachedstore"
	"github.com/wago-gw/wago/shared/dynamo"
	"github.com/wago-gw/wago/shared/redisbus"
	"github.com/wago-gw/wago/shared/sqlite"
)

// The hot routes of `make bench` (.ci/bench) in process, without the
// network and net/http's connection handling: what wago's own code costs
// per request, for pprof (-cpuprofile, -memprofile) and benchstat. The
// embedded composition is serve's (SQLite rows, the real connector); the
// distributed one is api's (cached DynamoDB rows, Redis), run when
// WAGO_TEST_REDIS_URL and WAGO_TEST_DYNAMODB_ENDPOINT are set.
//
//	go test -run '^$' -bench HotRoutes -benchmem -count 6 . | benchstat -

const benchRows = 1000

// discardWriter is a ResponseWriter that keeps only the status, reusing
// its header map, so that the benchmark measures the handler.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// benchRoute serves req to h b.N times and checks the status.
func benchRoute(b *testing.B, h http.Handler, method, path string, want int, header ...string) {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != want {
		b.Fatalf("%s %s: status %d, want %d", method, path, w.status, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != want {
		b.Fatalf("%s %s: status %d, want %d", method, path, w.status, want)
	}
}

// hotRoutes runs the scenarios of .ci/bench on h, whose store holds the
// benchRows rows of seedRows.
func hotRoutes(b *testing.B, h http.Handler) {
	b.Run("status", func(b *testing.B) {
		benchRoute(b, h, "GET", "/session/status", 200, "token", "bench-token-500")
	})
	b.Run("wrong-token", func(b *testing.B) {
		benchRoute(b, h, "GET", "/session/status", 401, "token", "no-such-token")
	})
	b.Run("all-1000", func(b *testing.B) {
		benchRoute(b, h, "GET", "/session/all", 200, "admintoken", benchAdmin)
	})
}

const benchAdmin = "bench-admin-token"

// benchServe runs hotRoutes on serve's composition, with log and reg
// (either may be nil).
func benchServe(b *testing.B, log *slog.Logger, reg prometheus.Registerer) {
	ctx := context.Background()
	dir := b.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "wago.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	keys, err := sqlite.OpenKeyStore(ctx, filepath.Join(dir, "keys.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	mgr := connector.New(connector.Config{Store: store, Container: keys, Hooks: connector.Hooks{Addr: "127.0.0.1:9"}, Registerer: reg})
	defer mgr.Close(ctx)
	api, err := functions.New(functions.Config{Store: store, Connector: mgr, AdminToken: benchAdmin, Log: log, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	seedRows(b, store)
	hotRoutes(b, api)
}

func seedRows(b *testing.B, store shared.Store) {
	ctx := context.Background()
	for i := 1; i <= benchRows; i++ {
		row := &shared.Session{Name: fmt.Sprintf("bench-%d", i), Token: fmt.Sprintf("bench-token-%d", i), Os: "linux"}
		if err := store.Create(ctx, row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotRoutes(b *testing.B) {
	// serve: the API without its log and metrics; serve-metrics: with the
	// Prometheus metrics and the log at warn (no request log);
	// serve-observed: as the binary runs by default, the metrics and the
	// request log (JSON, at info, to /dev/null: a write per request).
	b.Run("serve", func(b *testing.B) { benchServe(b, nil, nil) })
	for _, level := range []string{"warn", defaultLogLevel} {
		name := map[string]string{"warn": "serve-metrics", defaultLogLevel: "serve-observed"}[level]
		b.Run(name, func(b *testing.B) {
			devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer devNull.Close()
			reg, _ := newMetrics()
			benchServe(b, Config{LogLevel: level, LogFormat: defaultLogFormat}.logger(devNull), reg)
		})
	}
	b.Run("api", func(b *testing.B) {
		redisURL, endpoint := os.Getenv("WAGO_TEST_REDIS_URL"), os.Getenv("WAGO_TEST_DYNAMODB_ENDPOINT")
		if redisURL == "" || endpoint == "" {
			b.Skip("WAGO_TEST_REDIS_URL and WAGO_TEST_DYNAMODB_ENDPOINT are not set")
		}
		ctx := context.Background()
		rdb, err := openRedis(redisURL)
		if err != nil {
			b.Fatal(err)
		}
		defer rdb.Close()
		rows, err := dynamo.Open(ctx, dynamo.Config{Table: fmt.Sprintf("bench-routes-%d", time.Now().UnixNano()), Endpoint: endpoint, CreateTable: true})
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		store := cachedstore.New(rows, time.Minute, 0)
		prefix := fmt.Sprintf("bench-routes-%d", time.Now().UnixNano())
		api, err := functions.New(functions.Config{
			Store: store, AdminToken: benchAdmin,
			Connector: redisbus.NewClient(rdb, redisbus.ClientConfig{Prefix: prefix}),
		})
		if err != nil {
			b.Fatal(err)
		}
		seedRows(b, store)
		hotRoutes(b, api)
	})
}
