// Package pgtest gives tests databases of their own on the test PostgreSQL
// server (WAGO_TEST_POSTGRES_URL, see .ci/postgres).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// ServerURL returns WAGO_TEST_POSTGRES_URL. It skips the test when that is
// unset, and fails it instead when CI=true.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("WAGO_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("WAGO_TEST_POSTGRES_URL is not set: start a PostgreSQL with .ci/postgres")
		}
		tb.Skip("WAGO_TEST_POSTGRES_URL is not set: start a PostgreSQL with .ci/postgres")
	}
	return u
}

// withDatabase returns the server URL u naming database name instead.
func withDatabase(tb testing.TB, u, name string) string {
	tb.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("WAGO_TEST_POSTGRES_URL: %v", err)
	}
	parsed.Path = "/" + name
	return parsed.String()
}

// open opens a pool on the database at u.
func open(tb testing.TB, u string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		tb.Fatalf("WAGO_TEST_POSTGRES_URL: %v", err)
	}
	return db
}

// admin runs statement on the test server's postgres database.
func admin(ctx context.Context, tb testing.TB, statement string) error {
	tb.Helper()
	db := open(tb, withDatabase(tb, ServerURL(tb), "postgres"))
	defer db.Close()
	_, err := db.ExecContext(ctx, statement)
	return err
}

// NewDatabase creates an empty database for tb, dropped when tb ends, and
// returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb)
}

// NewSchema creates a role of its own for tb, owning a schema of the same
// name in the server URL's database, both dropped when tb ends, and returns
// the URL that logs in as that role. The role's default search_path
// ("$user") puts its tables in its schema, and what it cannot access it
// does not see in information_schema (where whatsmeow's schema upgrade
// looks for its tables), so it starts with an empty store: as good as a
// database of its own, and much faster to make.
func NewSchema(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("wago_test_%d_%x", time.Now().Unix(), rand.Uint64())
	server := ServerURL(tb)
	db := open(tb, server)
	defer db.Close()
	for _, stmt := range []string{"CREATE ROLE " + name + " LOGIN", "CREATE SCHEMA " + name + " AUTHORIZATION " + name} {
		if _, err := db.ExecContext(tb.Context(), stmt); err != nil {
			tb.Fatalf("failed to create a test schema: %v", err)
		}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db := open(tb, server)
		defer db.Close()
		for _, stmt := range []string{"DROP SCHEMA " + name + " CASCADE", "DROP ROLE " + name} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				tb.Errorf("failed to drop test schema %s: %v", name, err)
			}
		}
	})
	parsed, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("WAGO_TEST_POSTGRES_URL: %v", err)
	}
	parsed.User = url.User(name)
	return parsed.String()
}

func newDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("wago_test_%d_%x", time.Now().Unix(), rand.Uint64())
	if err := admin(tb.Context(), tb, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("failed to create a test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, tb, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("failed to drop test database %s: %v", name, err)
		}
	})
	return withDatabase(tb, ServerURL(tb), name)
}
