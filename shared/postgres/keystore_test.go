package postgres_test

import (
	"database/sql"
	"strings"
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared/keystore"
	"github.com/wago-gw/wago/shared/keystoretest"
	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on PostgreSQL as OpenKeyStore opens it, a schema (and role) of its own
// for each store.
func TestKeyStoreContract(t *testing.T) {
	var urls sync.Map // keystore.Store -> its URL
	open := func(t *testing.T, url string) keystore.Store {
		c, err := postgres.OpenKeyStore(t.Context(), url, waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		urls.Store(keystore.Store(c), url)
		return c
	}
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		return open(t, pgtest.NewSchema(t))
	}, keystoretest.Reopen(func(t *testing.T, ks keystore.Store) keystore.Store {
		url, _ := urls.Load(ks)
		return open(t, url.(string))
	}))
}

// The uploaded pre-key count that whatsmeow runs at every connect reads
// keystore.PreKeyCountIndex alone (an index-only scan), not the table.
func TestPreKeyCountUsesIndex(t *testing.T) {
	url := pgtest.NewSchema(t)
	c, err := postgres.OpenKeyStore(t.Context(), url, waLog.Noop)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The table is empty and never vacuumed: without these the planner
	// rightly prefers scanning the nothing in it.
	for _, set := range []string{"SET enable_seqscan = off", "SET enable_bitmapscan = off"} {
		if _, err := conn.ExecContext(t.Context(), set); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.QueryContext(t.Context(),
		"EXPLAIN SELECT COUNT(*) FROM whatsmeow_pre_keys WHERE jid=$1 AND uploaded=true", "1@s.whatsapp.net")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "Index Only Scan using wago_pre_keys_uploaded") {
		t.Errorf("the uploaded pre-key count does not use the covering index:\n%s", strings.Join(plan, "\n"))
	}
}
