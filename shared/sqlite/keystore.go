package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared/keystore"
)

// openDB opens a SQLite file with DSN's settings on a pool of exactly one
// connection, kept open for the life of the pool.
//
// SQLite lets one connection write at a time; a second one that wants to
// write polls SQLite's busy handler (sleeps of 1 to 100 ms, not a queue) and
// fails with SQLITE_BUSY when busy_timeout runs out, which a loaded machine
// with many sessions writing at once reaches. With one connection every
// writer waits its turn in database/sql's queue instead, first come first
// served, with no time limit but its context. busy_timeout stays as the
// fallback for another process on the same file.
//
// The rule this imposes on callers: a goroutine that holds the connection
// (an open transaction, or *sql.Rows not yet closed) must not run a second
// statement on the pool, or it waits for itself forever. whatsmeow's
// sqlstore (see OpenKeyStore) and Store keep to it.
func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// OpenKeyStore opens (creating and upgrading if needed) the whatsmeow key
// store in the SQLite file at path, on a single connection (see openDB), so
// that no store write of any session fails with SQLITE_BUSY however many
// sessions write at once. Closing the container closes the file.
//
// One connection is safe for whatsmeow's sqlstore (go.mau.fi/util/dbutil
// underneath): every statement it runs inside a transaction uses the
// transaction's context, so it goes to the transaction's connection, it
// takes its own locks before the connection, never while holding it, and
// it runs no statement while iterating rows. (dbutil's separate read pool
// would not help: it serves only read-only transactions, which sqlstore
// never starts.)
//
// The schema upgrade runs first on a pool of its own, closed afterwards:
// dbutil runs an upgrade marked "transaction: sqlite-fkey-off" on a
// connection that it never gives back, which on the single connection
// would hang every later statement.
func OpenKeyStore(ctx context.Context, path string, log waLog.Logger) (*sqlstore.Container, error) {
	if err := upgradeKeyStore(ctx, path, log); err != nil {
		return nil, err
	}
	db, err := openDB(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open key database: %w", err)
	}
	return sqlstore.NewWithDB(db, "sqlite", log), nil
}

// upgradeKeyStore creates or upgrades the whatsmeow schema in the SQLite
// file at path, through a pool that it closes.
//
// Processes that open one new file at once (connectors started together
// on a shared volume) would race on the upgrade's check-then-create steps
// and fail with "table whatsmeow_version already exists" or "duplicate
// column name: compat": the upgrade runs under a file lock (path +
// "-upgrade.lock", kept), one process after the other; the later ones
// find the schema done. It adds keystore.PreKeyCountIndex.
func upgradeKeyStore(ctx context.Context, path string, log waLog.Logger) error {
	unlock, err := lockFile(ctx, path+"-upgrade.lock")
	if err != nil {
		return fmt.Errorf("failed to lock the key database for its schema upgrade: %w", err)
	}
	defer unlock()
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return fmt.Errorf("failed to open key database: %w", err)
	}
	defer db.Close()
	if err := sqlstore.NewWithDB(db, "sqlite", log).Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade key database: %w", err)
	}
	if _, err := db.ExecContext(ctx, keystore.PreKeyCountIndex); err != nil {
		return fmt.Errorf("failed to index the key database: %w", err)
	}
	return nil
}

var _ keystore.Store = (*sqlstore.Container)(nil)
