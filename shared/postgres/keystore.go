// Package postgres opens whatsmeow's key store (sqlstore) on PostgreSQL,
// through the pgx driver.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared/keystore"
)

// maxConns bounds each key store's connection pool: a connector's sessions
// write through it at once, and a server's max_connections (100 by
// default) is shared by every connector of a fleet. sqlstore needs one
// connection per statement or transaction in flight, never two at once in
// one goroutine, so any bound is safe from deadlock.
const maxConns = 20

// upgradeLockKey is the pg_advisory_lock key that serializes whatsmeow's
// schema upgrade among the processes opening one database at once.
// Advisory locks are per database, so databases do not wait on each other.
const upgradeLockKey int64 = 0x7761676f_6b657973 // "wagokeys"

// IsURL reports whether addr names a PostgreSQL database (postgres:// or
// postgresql://) rather than a SQLite file.
func IsURL(addr string) bool {
	return strings.HasPrefix(addr, "postgres://") || strings.HasPrefix(addr, "postgresql://")
}

// OpenKeyStore opens the whatsmeow key store in the PostgreSQL database at
// url, a postgres:// or postgresql:// URL as pgx reads it, creating or
// upgrading whatsmeow's schema first (with keystore.PreKeyCountIndex).
// Processes that open one database at once (a fleet of connectors
// starting together) upgrade it one after the other, under an advisory
// lock, so none fails on a table another one is creating. Closing the
// container closes the pool.
func OpenKeyStore(ctx context.Context, url string, log waLog.Logger) (*sqlstore.Container, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("failed to open key database: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	c := sqlstore.NewWithDB(db, "pgx", log)
	up := func(ctx context.Context) error {
		if err := c.Upgrade(ctx); err != nil {
			return err
		}
		_, err := db.ExecContext(ctx, keystore.PreKeyCountIndex)
		return err
	}
	if err := upgrade(ctx, db, up); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to upgrade key database: %w", err)
	}
	return c, nil
}

// upgrade runs up (the container's schema upgrade) while it holds the
// upgrade advisory lock on a connection of db kept for that. The lock is a
// session lock: if the process dies, the server ends the session and
// releases it.
func upgrade(ctx context.Context, db *sql.DB, up func(context.Context) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", upgradeLockKey); err != nil {
		return fmt.Errorf("failed to take the schema upgrade lock: %w", err)
	}
	err = up(ctx)
	if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", upgradeLockKey); uerr != nil {
		// Never give a connection that may still hold the lock back to
		// the pool: closing it ends the session, which releases it.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}
