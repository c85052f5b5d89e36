// Package sqlite is the embedded token store: shared.Store on a SQLite file
// (modernc.org/sqlite, pure Go). The process that opens the file owns it, so
// every row is also kept in memory: reads never touch the disk, and every
// write reaches the file before it returns.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wago-gw/wago/shared"
)

const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	token        TEXT PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	os           TEXT NOT NULL,
	webhook      TEXT NOT NULL DEFAULT '',
	events       TEXT NOT NULL DEFAULT '',
	webhook_secret TEXT NOT NULL DEFAULT '',
	webhook_format TEXT NOT NULL DEFAULT '',
	jid          TEXT NOT NULL DEFAULT '',
	auto_connect INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
)`

// DSN returns the database/sql data source name for a SQLite file with the
// settings wago needs: foreign keys, WAL, a busy timeout and immediate
// write transactions.
func DSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// Store is shared.Store on a SQLite file.
type Store struct {
	db *sql.DB

	// rowsLock guards rows, names and sorted, and serialises writes so that
	// the memory copy and the file change in the same order.
	rowsLock sync.RWMutex
	rows     map[string]*shared.Session // by token; values are never modified
	names    map[string]string          // name -> token
	sorted   []*shared.Session          // List's answer; nil when stale
	now      func() time.Time
}

var _ shared.Store = (*Store)(nil)

// Open opens (creating if needed) the token database at path and loads its
// rows. The file is used through one connection (see openDB): writes are
// serialised by rowsLock anyway and reads are served from memory, so a
// second connection would only be a second writer for SQLite to arbitrate.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open token database: %w", err)
	}
	s := &Store{db: db, rows: map[string]*shared.Session{}, names: map[string]string{}, now: time.Now}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to create token table: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// addedColumns are the columns added to the sessions table after its first
// release, with their definitions: migrate adds those a file lacks.
var addedColumns = [][2]string{
	{"webhook_secret", "TEXT NOT NULL DEFAULT ''"},
	{"webhook_format", "TEXT NOT NULL DEFAULT ''"},
}

// migrate brings a sessions table created by an older version up to the
// current schema (ALTER TABLE ADD COLUMN for each missing column).
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('sessions')`)
	if err != nil {
		return fmt.Errorf("failed to read the token table's columns: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("failed to read the token table's columns: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to read the token table's columns: %w", err)
	}
	for _, c := range addedColumns {
		if have[c[0]] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE sessions ADD COLUMN `+c[0]+` `+c[1]); err != nil {
			return fmt.Errorf("failed to add column %s to the token table: %w", c[0], err)
		}
	}
	return nil
}

func (s *Store) load(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT token, name, os, webhook, events, webhook_secret, webhook_format, jid, auto_connect, created_at, updated_at FROM sessions`)
	if err != nil {
		return fmt.Errorf("failed to read token table: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r               shared.Session
			events          string
			created, update int64
		)
		if err := rows.Scan(&r.Token, &r.Name, &r.Os, &r.Webhook, &events, &r.WebhookSecret, &r.WebhookFormat, &r.JID, &r.AutoConnect, &created, &update); err != nil {
			return fmt.Errorf("failed to read token row: %w", err)
		}
		r.Events = splitEvents(events)
		r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, update).UTC()
		s.rows[r.Token] = &r
		s.names[r.Name] = r.Token
	}
	return rows.Err()
}

func splitEvents(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// Create implements shared.Store.
func (s *Store) Create(ctx context.Context, in *shared.Session) error {
	if in.Name == "" || in.Token == "" {
		return shared.Errorf(shared.EINVALID, "a session needs a Name and a Token")
	}
	row := in.Clone()
	if row.Events == nil {
		row.Events = []string{}
	}
	now := s.now().UTC()
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	row.CreatedAt = row.CreatedAt.UTC()
	row.UpdatedAt = now

	s.rowsLock.Lock()
	defer s.rowsLock.Unlock()
	if _, ok := s.rows[row.Token]; ok {
		return shared.ErrAlreadyExists
	}
	if _, ok := s.names[row.Name]; ok {
		return shared.ErrAlreadyExists
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token, name, os, webhook, events, webhook_secret, webhook_format, jid, auto_connect, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		row.Token, row.Name, row.Os, row.Webhook, row.EventsString(), row.WebhookSecret, row.WebhookFormat, row.JID, row.AutoConnect, row.CreatedAt.UnixNano(), row.UpdatedAt.UnixNano())
	if isConstraint(err) {
		return shared.ErrAlreadyExists
	} else if err != nil {
		return shared.Wrap(err, shared.EINTERNAL, "failed to store token")
	}
	s.rows[row.Token] = row
	s.names[row.Name] = row.Token
	s.sorted = nil
	*in = *row.Clone()
	return nil
}

func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// Get implements shared.Store.
func (s *Store) Get(_ context.Context, token string) (*shared.Session, error) {
	s.rowsLock.RLock()
	row, ok := s.rows[token]
	s.rowsLock.RUnlock()
	if !ok || token == "" {
		return nil, shared.ErrSessionNotFound
	}
	return row.Clone(), nil
}

// List implements shared.Store.
func (s *Store) List(_ context.Context) ([]*shared.Session, error) {
	s.rowsLock.RLock()
	sorted := s.sorted
	s.rowsLock.RUnlock()
	if sorted == nil {
		sorted = s.sort()
	}
	return slices.Clone(sorted), nil // the rows are never modified: they are shared
}

// sort refreshes and returns the sorted list of rows.
func (s *Store) sort() []*shared.Session {
	s.rowsLock.Lock()
	defer s.rowsLock.Unlock()
	if s.sorted == nil {
		all := make([]*shared.Session, 0, len(s.rows))
		for _, r := range s.rows {
			all = append(all, r)
		}
		slices.SortFunc(all, func(a, b *shared.Session) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
		s.sorted = all
	}
	return s.sorted
}

// Update implements shared.Store.
func (s *Store) Update(ctx context.Context, token string, u shared.SessionUpdate) (*shared.Session, error) {
	s.rowsLock.Lock()
	defer s.rowsLock.Unlock()
	old, ok := s.rows[token]
	if !ok {
		return nil, shared.ErrSessionNotFound
	}
	row := old.Clone()
	u.Apply(row, s.now().UTC())
	_, err := s.db.ExecContext(ctx, `UPDATE sessions SET webhook = ?, events = ?, webhook_secret = ?, webhook_format = ?, jid = ?, auto_connect = ?, updated_at = ? WHERE token = ?`,
		row.Webhook, row.EventsString(), row.WebhookSecret, row.WebhookFormat, row.JID, row.AutoConnect, row.UpdatedAt.UnixNano(), token)
	if err != nil {
		return nil, shared.Wrap(err, shared.EINTERNAL, "failed to update token")
	}
	s.rows[token] = row
	s.sorted = nil
	return row, nil
}

// Delete implements shared.Store.
func (s *Store) Delete(ctx context.Context, token string) error {
	s.rowsLock.Lock()
	defer s.rowsLock.Unlock()
	row, ok := s.rows[token]
	if !ok {
		return shared.ErrSessionNotFound
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token = ?`, token); err != nil {
		return shared.Wrap(err, shared.EINTERNAL, "failed to delete token")
	}
	delete(s.rows, token)
	delete(s.names, row.Name)
	s.sorted = nil
	return nil
}

// Close implements shared.Store.
func (s *Store) Close() error { return s.db.Close() }
