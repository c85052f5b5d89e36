package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wago-gw/wago/shared"
)

// outboxSchema: one row per event not yet delivered (dead = 0) or parked
// after its last attempt (dead = 1); outbox_seq holds each token's last
// sequence number, so numbers never repeat even after the rows are gone.
const outboxSchema = `
CREATE TABLE IF NOT EXISTS outbox (
	id         TEXT PRIMARY KEY,
	token      TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	class      TEXT NOT NULL,
	type       TEXT NOT NULL,
	state      TEXT NOT NULL DEFAULT '',
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	dead       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (dead, next_at, token, seq);
CREATE TABLE IF NOT EXISTS outbox_seq (
	token TEXT PRIMARY KEY,
	seq   INTEGER NOT NULL
)`

// Outbox is shared.Outbox on its own SQLite file. The process that opens
// it owns it: deliveries it hands out are remembered in memory (a crash
// forgets them, so they are due again at the next start). Appends commit
// in WAL mode with synchronous=NORMAL: durable across a crash of the
// process, not across a power loss.
type Outbox struct {
	db  *sql.DB
	now func() time.Time

	// wake is signalled (without blocking) when a delivery may have
	// become due: an append, a retry, a replay.
	wake chan struct{}
	// leasedLock guards leased: the IDs handed out by Next and not yet
	// ended by Done, Retry or Bury.
	leasedLock sync.Mutex
	leased     map[string]bool
}

var _ shared.Outbox = (*Outbox)(nil)

// OpenOutbox opens (creating if needed) the outbox database at path.
func OpenOutbox(ctx context.Context, path string) (*Outbox, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("failed to open the webhook outbox: %w", err)
	}
	db.SetMaxOpenConns(1) // one writer, queued in Go rather than SQLITE_BUSY
	if _, err := db.ExecContext(ctx, outboxSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to create the webhook outbox tables: %w", err)
	}
	return &Outbox{db: db, now: time.Now, wake: make(chan struct{}, 1), leased: map[string]bool{}}, nil
}

// Close closes the database.
func (o *Outbox) Close() error { return o.db.Close() }

func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Append implements shared.Outbox.
func (o *Outbox) Append(ctx context.Context, ev *shared.Event) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin an outbox append: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	err = tx.QueryRowContext(ctx, `INSERT INTO outbox_seq (token, seq) VALUES (?, 1)
		ON CONFLICT (token) DO UPDATE SET seq = seq + 1 RETURNING seq`, ev.Token).Scan(&seq)
	if err != nil {
		return fmt.Errorf("failed to number an outbox event: %w", err)
	}
	at := ev.Time.UnixNano()
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO outbox (id, token, seq, class, type, state, data, created_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.ID, ev.Token, seq, ev.Class, ev.Type, ev.State, []byte(ev.Data), at, at)
	if err != nil {
		return fmt.Errorf("failed to append to the outbox: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // already stored: the rollback keeps the number unused
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit an outbox append: %w", err)
	}
	ev.Seq = seq
	o.signal()
	return nil
}

const deliveryColumns = `id, token, seq, class, type, state, data, created_at, attempts, next_at, last_error`

func scanDelivery(rows *sql.Rows) (shared.Delivery, error) {
	var (
		d             shared.Delivery
		data          []byte
		created, next int64
	)
	err := rows.Scan(&d.ID, &d.Token, &d.Seq, &d.Class, &d.Type, &d.State, &data, &created, &d.Attempts, &next, &d.LastError)
	d.Data = data
	d.Time, d.NextAt = time.Unix(0, created).UTC(), time.Unix(0, next).UTC()
	return d, err
}

// Next implements shared.Outbox.
func (o *Outbox) Next(ctx context.Context, max int, wait time.Duration) ([]shared.Delivery, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		out, nextAt, err := o.due(ctx, max)
		if err != nil || len(out) > 0 {
			return out, err
		}
		var soon <-chan time.Time
		var t *time.Timer
		if !nextAt.IsZero() {
			t = time.NewTimer(max64(time.Until(nextAt), time.Millisecond))
			soon = t.C
		}
		select {
		case <-o.wake:
		case <-soon:
		case <-deadline.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
	}
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// due returns up to max due deliveries that are not leased, and leases
// them; with none, it returns when the next one is due (zero: none waits).
func (o *Outbox) due(ctx context.Context, max int) ([]shared.Delivery, time.Time, error) {
	o.leasedLock.Lock()
	defer o.leasedLock.Unlock()
	now := o.now().UnixNano()
	rows, err := o.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM outbox
		WHERE dead = 0 AND next_at <= ? ORDER BY next_at, token, seq LIMIT ?`, now, max+len(o.leased))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	var out []shared.Delivery
	for rows.Next() && len(out) < max {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
		}
		if !o.leased[d.ID] {
			out = append(out, d)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	for _, d := range out {
		o.leased[d.ID] = true
	}
	if len(out) > 0 {
		return out, time.Time{}, nil
	}
	var next sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT MIN(next_at) FROM outbox WHERE dead = 0 AND next_at > ?`, now).Scan(&next); err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	if !next.Valid {
		return nil, time.Time{}, nil
	}
	return nil, time.Unix(0, next.Int64), nil
}

func (o *Outbox) release(id string) {
	o.leasedLock.Lock()
	delete(o.leased, id)
	o.leasedLock.Unlock()
}

// Done implements shared.Outbox.
func (o *Outbox) Done(ctx context.Context, d shared.Delivery) error {
	defer o.release(d.ID)
	if _, err := o.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, d.ID); err != nil {
		return fmt.Errorf("failed to remove a delivered event: %w", err)
	}
	return nil
}

// Retry implements shared.Outbox.
func (o *Outbox) Retry(ctx context.Context, d shared.Delivery) error {
	defer o.signal()
	defer o.release(d.ID)
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`,
		d.Attempts, d.NextAt.UnixNano(), d.LastError, d.ID); err != nil {
		return fmt.Errorf("failed to schedule a webhook retry: %w", err)
	}
	return nil
}

// Bury implements shared.Outbox.
func (o *Outbox) Bury(ctx context.Context, d shared.Delivery) error {
	defer o.release(d.ID)
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET dead = 1, attempts = ?, last_error = ? WHERE id = ?`,
		d.Attempts, d.LastError, d.ID); err != nil {
		return fmt.Errorf("failed to park a dead letter: %w", err)
	}
	return nil
}

// Failed implements shared.DeadLetters.
func (o *Outbox) Failed(ctx context.Context, token string, limit int) ([]shared.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM outbox WHERE dead = 1`
	args := []any{}
	if token != "" {
		q += ` AND token = ?`
		args = append(args, token)
	}
	q += ` ORDER BY created_at, token, seq LIMIT ?`
	rows, err := o.db.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("failed to read the dead letters: %w", err)
	}
	defer rows.Close()
	out := []shared.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read the dead letters: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Replay implements shared.DeadLetters.
func (o *Outbox) Replay(ctx context.Context, token string, ids []string) (int, error) {
	q := `UPDATE outbox SET dead = 0, attempts = 0, next_at = ?, last_error = '' WHERE dead = 1`
	args := []any{o.now().UnixNano()}
	if token != "" {
		q += ` AND token = ?`
		args = append(args, token)
	}
	if len(ids) > 0 {
		if len(ids) > 1000 {
			return 0, shared.Errorf(shared.EINVALID, "too many ids: at most 1000 at once")
		}
		q += ` AND id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	res, err := o.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("failed to replay dead letters: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("failed to replay dead letters: %w", err)
	}
	o.signal()
	return int(n), nil
}
