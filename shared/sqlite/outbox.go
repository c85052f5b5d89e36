package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wago-gw/wago/shared"
)

// outboxSchema: one row per event not yet delivered (dead = 0) or parked
// after its last attempt (dead = 1); lease = 1 while this process attempts
// it (cleared at open: a crash voids the leases). outbox_seq holds each
// token's last sequence number, so numbers never repeat even after the
// rows are gone.
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
	dead       INTEGER NOT NULL DEFAULT 0,
	lease      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_dead ON outbox (dead, created_at);
CREATE TABLE IF NOT EXISTS outbox_seq (
	token TEXT PRIMARY KEY,
	seq   INTEGER NOT NULL
)`

// outboxDueIndex serves Next: the rows waiting for an attempt and not
// handed out, by due time. Created after the lease column exists.
const outboxDueIndex = `
DROP INDEX IF EXISTS outbox_due;
CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (next_at, token, seq) WHERE dead = 0 AND lease = 0`

// Outbox is shared.Outbox on its own SQLite file. The process that opens
// it owns it: deliveries it hands out are leased (a crash voids the
// leases, so they are due again at the next start), and the tokens' last
// sequence numbers are cached in memory. Appends and Done calls that arrive
// together are committed in one transaction (group commit) by one writer
// goroutine, and each returns once its transaction is committed, in WAL
// mode with synchronous=NORMAL: durable across a crash of the process,
// not across a power loss.
type Outbox struct {
	db  *sql.DB
	now func() time.Time

	// writes carries appends and removals to the writer goroutine.
	writes chan write
	stop   chan struct{}
	done   chan struct{}
	// seqs caches each token's last sequence number (writer goroutine only).
	seqs map[string]int64

	// wake is signalled (without blocking) when a delivery may have
	// become due: an append, a retry, a replay.
	wake chan struct{}
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
	// Files of the first version lack the lease column.
	var hasLease int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'lease'`).Scan(&hasLease); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to read the webhook outbox columns: %w", err)
	}
	if hasLease == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE outbox ADD COLUMN lease INTEGER NOT NULL DEFAULT 0`); err != nil {
			db.Close()
			return nil, fmt.Errorf("failed to add the lease column to the webhook outbox: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, outboxDueIndex+`; UPDATE outbox SET lease = 0 WHERE lease <> 0`); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to prepare the webhook outbox: %w", err)
	}
	o := &Outbox{
		db: db, now: time.Now, wake: make(chan struct{}, 1),
		writes: make(chan write, maxBatch), stop: make(chan struct{}), done: make(chan struct{}),
		seqs: map[string]int64{},
	}
	go o.writer()
	return o, nil
}

// Close stops the writer and closes the database.
func (o *Outbox) Close() error {
	close(o.stop)
	<-o.done
	return o.db.Close()
}

// maxBatch bounds the writes committed in one transaction.
const maxBatch = 512

// errOutboxClosed answers writes after Close.
var errOutboxClosed = errors.New("webhook outbox is closed")

// write is one append (ev) or removal (remove) for the writer; its
// outcome goes to result once committed.
type write struct {
	ev     *shared.Event
	remove string
	result chan error
}

// submit hands w to the writer and waits for its commit.
func (o *Outbox) submit(ctx context.Context, w write) error {
	w.result = make(chan error, 1)
	select {
	case o.writes <- w:
	case <-o.stop:
		return errOutboxClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.result:
		return err
	case <-o.done:
		return errOutboxClosed
	case <-ctx.Done():
		return ctx.Err() // it may still commit: the caller treats it as not done
	}
}

// writer commits the writes that queued up together in one transaction.
func (o *Outbox) writer() {
	defer close(o.done)
	for {
		var batch []write
		stopping := false
		select {
		case w := <-o.writes:
			batch = append(batch, w)
		case <-o.stop:
			stopping = true // commit what is queued, then stop
		}
	more:
		for len(batch) < maxBatch {
			select {
			case w := <-o.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return
		}
		err := o.commit(batch)
		for _, w := range batch {
			w.result <- err
		}
		if stopping {
			return
		}
		if err == nil {
			o.signal()
		} else {
			o.seqs = map[string]int64{} // reread them: the numbers of the batch were not stored
		}
	}
}

// commit stores a batch in one transaction: each new event gets its
// token's next sequence number (an event whose ID is stored takes none).
func (o *Outbox) commit(batch []write) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin an outbox write: %w", err)
	}
	defer tx.Rollback()
	changed := map[string]int64{}
	for _, w := range batch {
		if w.remove != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, w.remove); err != nil {
				return fmt.Errorf("failed to remove a delivered event: %w", err)
			}
			continue
		}
		ev := w.ev
		last, ok := o.seqs[ev.Token]
		if !ok {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM outbox_seq WHERE token = ?), 0)`, ev.Token).Scan(&last); err != nil {
				return fmt.Errorf("failed to number an outbox event: %w", err)
			}
		}
		at := ev.Time.UnixNano()
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO outbox (id, token, seq, class, type, state, data, created_at, next_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.ID, ev.Token, last+1, ev.Class, ev.Type, ev.State, []byte(ev.Data), at, at)
		if err != nil {
			return fmt.Errorf("failed to append to the outbox: %w", err)
		}
		o.seqs[ev.Token] = last
		if n, _ := res.RowsAffected(); n == 1 {
			o.seqs[ev.Token] = last + 1
			changed[ev.Token] = last + 1
			ev.Seq = last + 1
		}
	}
	for token, seq := range changed {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_seq (token, seq) VALUES (?, ?)
			ON CONFLICT (token) DO UPDATE SET seq = excluded.seq`, token, seq); err != nil {
			return fmt.Errorf("failed to number an outbox event: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit an outbox write: %w", err)
	}
	return nil
}

func (o *Outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Append implements shared.Outbox.
func (o *Outbox) Append(ctx context.Context, ev *shared.Event) error {
	return o.submit(ctx, write{ev: ev})
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
	now := o.now().UnixNano()
	rows, err := o.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM outbox
		WHERE dead = 0 AND lease = 0 AND next_at <= ? ORDER BY next_at, token, seq LIMIT ?`, now, max)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	var out []shared.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	if len(out) > 0 {
		args := make([]any, len(out))
		for i, d := range out {
			args[i] = d.ID
		}
		if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET lease = 1 WHERE id IN (?`+strings.Repeat(`, ?`, len(out)-1)+`)`, args...); err != nil {
			return nil, time.Time{}, fmt.Errorf("failed to lease outbox events: %w", err)
		}
		return out, time.Time{}, nil
	}
	var next sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT MIN(next_at) FROM outbox WHERE dead = 0 AND lease = 0`).Scan(&next); err != nil {
		return nil, time.Time{}, fmt.Errorf("failed to read the outbox: %w", err)
	}
	if !next.Valid {
		return nil, time.Time{}, nil
	}
	return nil, time.Unix(0, next.Int64), nil
}

// Done implements shared.Outbox. It queues the removal and returns
// without waiting for its commit: the delivery stays leased meanwhile, and
// if the process dies first (or the removal fails), the event is delivered
// again after the next start, as at-least-once allows.
func (o *Outbox) Done(ctx context.Context, d shared.Delivery) error {
	select {
	case o.writes <- write{remove: d.ID, result: make(chan error, 1)}:
		return nil
	case <-o.stop:
		return errOutboxClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Retry implements shared.Outbox.
func (o *Outbox) Retry(ctx context.Context, d shared.Delivery) error {
	defer o.signal()
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET lease = 0, attempts = ?, next_at = ?, last_error = ? WHERE id = ?`,
		d.Attempts, d.NextAt.UnixNano(), d.LastError, d.ID); err != nil {
		return fmt.Errorf("failed to schedule a webhook retry: %w", err)
	}
	return nil
}

// Bury implements shared.Outbox.
func (o *Outbox) Bury(ctx context.Context, d shared.Delivery) error {
	if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET dead = 1, lease = 0, attempts = ?, last_error = ? WHERE id = ?`,
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
	q := `UPDATE outbox SET dead = 0, lease = 0, attempts = 0, next_at = ?, last_error = '' WHERE dead = 1`
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

// QueueStats implements shared.QueueStater.
func (o *Outbox) QueueStats(ctx context.Context) (shared.QueueStats, error) {
	var st shared.QueueStats
	var oldest sql.NullInt64
	err := o.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(dead = 0 AND attempts = 0), 0), COALESCE(SUM(dead = 0 AND attempts > 0), 0),
		COALESCE(SUM(dead = 1), 0), MIN(CASE WHEN dead = 0 THEN created_at END) FROM outbox`).Scan(&st.New, &st.Retrying, &st.Dead, &oldest)
	if err != nil {
		return st, fmt.Errorf("failed to count the webhook outbox: %w", err)
	}
	if oldest.Valid {
		st.Oldest = time.Unix(0, oldest.Int64)
	}
	return st, nil
}
