package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/dynamo"
	"github.com/wago-gw/wago/shared/dynamokeys"
	"github.com/wago-gw/wago/shared/keystore"
	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
	"github.com/wago-gw/wago/shared/sqlite"
)

// BenchmarkKeyStoreRestore measures what a session restore costs its key
// store: the statements (SQL) or requests (DynamoDB) that a connector
// starting on a store of linked sessions sends while it restores them,
// until they are all Connected and the store has been quiet for a second.
// Reported per session: reads/session, writes/session, txns/session (SQL
// transactions; DynamoDB has none apart from its writes). Each store is
// opened anew for the restore, as by a process that just started, so no
// cache of the linking process helps.
//
//	go test -run '^$' -bench KeyStoreRestore -benchtime 1x ./e2e/
func BenchmarkKeyStoreRestore(b *testing.B) {
	const sessions = 4
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "whatsmeow.db")
		benchRestore(b, sessions, func(b *testing.B) (keystore.Store, restoreCounter) {
			// As sqlite.OpenKeyStore: the upgrade first, then one connection.
			up, err := sqlite.OpenKeyStore(b.Context(), path, waLog.Noop)
			if err != nil {
				b.Fatal(err)
			}
			up.Close()
			c := &storeCounts{}
			db := countingDB(b, "sqlite", sqlite.DSN(path), c)
			db.SetMaxOpenConns(1)
			return sqlstore.NewWithDB(db, "sqlite", waLog.Noop), c
		})
	})
	b.Run("postgres", func(b *testing.B) {
		url := pgtest.NewDatabase(b)
		benchRestore(b, sessions, func(b *testing.B) (keystore.Store, restoreCounter) {
			up, err := postgres.OpenKeyStore(b.Context(), url, waLog.Noop)
			if err != nil {
				b.Fatal(err)
			}
			up.Close()
			c := &storeCounts{}
			return sqlstore.NewWithDB(countingDB(b, "pgx", url, c), "pgx", waLog.Noop), c
		})
	})
	b.Run("dynamodb", func(b *testing.B) {
		e := newLambdaEnv(b)
		b.Setenv("AWS_REGION", lambdaRegion)
		b.Setenv("AWS_ACCESS_KEY_ID", lambdaAccessKey)
		b.Setenv("AWS_SECRET_ACCESS_KEY", lambdaAccessKey)
		table := e.table + "-keys"
		benchRestore(b, sessions, func(b *testing.B) (keystore.Store, restoreCounter) {
			c := &dynamo.Counter{}
			k, err := dynamokeys.OpenKeys(b.Context(), dynamokeys.KeysConfig{
				Table: table, Endpoint: e.dynamoEndpoint, CreateTable: true,
				ClientOptions: []func(*dynamodb.Options){c.Install},
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				k.Client().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
			})
			return k, dynamoCounts{c}
		})
	})
}

// benchRestore links sessions on a store that open returns, stops that
// connector, and then, b.N times, starts a connector on a store opened
// anew and counts what the restore of every session sends it.
func benchRestore(b *testing.B, sessions int, open func(*testing.B) (keystore.Store, restoreCounter)) {
	emu := startEmulator(b)
	root, err := connector.ParseRootKey(emu.RootPublicKeyHex())
	if err != nil {
		b.Fatal(err)
	}
	rows, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "wago.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rows.Close() })
	start := func() (*connector.Manager, restoreCounter, func()) {
		keys, c := open(b)
		mgr := connector.New(connector.Config{
			Store: rows, Container: keys, Hooks: connector.Hooks{Addr: emu.Addr(), RootKey: root},
			Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		return mgr, c, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			mgr.Close(ctx)
			keys.Close()
		}
	}

	mgr, linking, stop := start()
	e := contractEnv{conn: mgr, store: rows, emu: emu}
	var tokens []string
	for i := range sessions {
		token := fmt.Sprintf("restore-bench-%d", i)
		if err := rows.Create(b.Context(), &shared.Session{Name: token, Token: token, Os: "linux"}); err != nil {
			b.Fatal(err)
		}
		e.link(b, token)
		tokens = append(tokens, token)
	}
	waitQuiet(b, linking)
	b.Logf("linking %d sessions: %d reads, %d writes, %d txns", sessions, linking.Reads(), linking.Writes(), linking.Txns())
	stop()

	var reads, writes, txns int
	b.ResetTimer()
	for range b.N {
		mgr, c, stop := start()
		e.conn = mgr
		// Only the restore counts, not the opening of the store.
		c.Reset()
		if ok, failed := mgr.Restore(b.Context(), nil); ok != sessions || failed != 0 {
			b.Fatalf("restored %d, failed %d; want %d restored", ok, failed, sessions)
		}
		for _, token := range tokens {
			e.eventually(b, token, "restored", func(s shared.Status) bool { return s.Connected && s.LoggedIn })
		}
		waitQuiet(b, c)
		stop()
		reads, writes, txns = reads+c.Reads(), writes+c.Writes(), txns+c.Txns()
		if d, ok := c.(dynamoCounts); ok {
			_, rcu, wcu := d.Snapshot()
			b.Logf("restore calls: %s; per session %.1f RCU, %.1f WCU", d, rcu/float64(sessions), wcu/float64(sessions))
		}
	}
	b.StopTimer()
	n := float64(b.N * sessions)
	b.ReportMetric(float64(reads)/n, "reads/session")
	b.ReportMetric(float64(writes)/n, "writes/session")
	b.ReportMetric(float64(txns)/n, "txns/session")
}

// restoreCounter counts what a key store was sent: reads, writes and
// transactions (statements for SQL, requests for DynamoDB).
type restoreCounter interface {
	Reads() int
	Writes() int
	Txns() int
	Reset()
}

// dynamoCounts is the DynamoDB key store's call counter: its writes are
// atomic by themselves, so it counts no transactions apart.
type dynamoCounts struct{ *dynamo.Counter }

func (dynamoCounts) Txns() int { return 0 }

// storeCounts counts the statements that a SQL key store is sent: those
// that read (SELECT) or write (INSERT, UPDATE, DELETE), and transactions.
type storeCounts struct {
	reads, writes, txns, other atomic.Int64
}

func (c *storeCounts) statement(query string) {
	verb, _, _ := strings.Cut(strings.TrimSpace(query), " ")
	switch strings.ToUpper(strings.TrimSpace(verb)) {
	case "SELECT", "WITH":
		c.reads.Add(1)
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		c.writes.Add(1)
	default:
		c.other.Add(1)
	}
}

func (c *storeCounts) Reads() int  { return int(c.reads.Load()) }
func (c *storeCounts) Writes() int { return int(c.writes.Load()) }
func (c *storeCounts) Txns() int   { return int(c.txns.Load()) }

func (c *storeCounts) Reset() {
	c.reads.Store(0)
	c.writes.Store(0)
	c.txns.Store(0)
	c.other.Store(0)
}

// waitQuiet waits until nothing was sent for a second (at most 30 s):
// whatsmeow keeps writing for a moment after a login (pre-keys, app
// state, contacts).
func waitQuiet(tb testing.TB, c restoreCounter) {
	tb.Helper()
	sum := func() int { return c.Reads() + c.Writes() + c.Txns() }
	deadline := time.Now().Add(30 * time.Second)
	last, since := sum(), time.Now()
	for time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			tb.Fatalf("the key store was not quiet for a second within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
		if n := sum(); n != last {
			last, since = n, time.Now()
		}
	}
}

// countingDB opens dsn with the driver registered as name, wrapped so that
// c counts every statement and transaction.
func countingDB(tb testing.TB, name, dsn string, c *storeCounts) *sql.DB {
	tb.Helper()
	probe, err := sql.Open(name, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	drv := probe.Driver()
	probe.Close()
	db := sql.OpenDB(countingConnector{drv: drv, dsn: dsn, c: c})
	tb.Cleanup(func() { db.Close() })
	return db
}

type countingConnector struct {
	drv driver.Driver
	dsn string
	c   *storeCounts
}

func (cc countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := cc.drv.Open(cc.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

func (cc countingConnector) Driver() driver.Driver { return cc.drv }

// countingConn passes everything to the driver's connection and counts.
// Both drivers in use (modernc's sqlite, pgx's stdlib) implement the
// context interfaces that it forwards.
type countingConn struct {
	driver.Conn
	c *storeCounts
}

func (cc *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cc.c.statement(query)
	return cc.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (cc *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cc.c.statement(query)
	return cc.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (cc *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return cc.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (cc *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cc.c.txns.Add(1)
	return cc.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (cc *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := cc.Conn.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (cc *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cc.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cc *countingConn) IsValid() bool {
	if v, ok := cc.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}
