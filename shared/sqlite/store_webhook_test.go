package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/wago-gw/wago/shared"
)

// TestOpenMigratesWebhookColumns opens a token file written before the
// webhook secret and format columns existed: its rows load, and the new
// fields can be stored and read back after a reopen.
func TestOpenMigratesWebhookColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wago.db")
	old, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE sessions (
			token TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, os TEXT NOT NULL,
			webhook TEXT NOT NULL DEFAULT '', events TEXT NOT NULL DEFAULT '',
			jid TEXT NOT NULL DEFAULT '', auto_connect INTEGER NOT NULL DEFAULT 0,
			created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
		`INSERT INTO sessions (token, name, os, webhook, events, jid, auto_connect, created_at, updated_at)
			VALUES ('t1', 'n1', 'linux', 'https://example.com/h', 'Message', '', 0, 1, 1)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("old schema: %v", err)
		}
	}
	old.Close()

	st, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open of an old file: %v", err)
	}
	row, err := st.Get(t.Context(), "t1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if row.Webhook != "https://example.com/h" || row.WebhookSecret != "" || row.WebhookFormat != "" {
		t.Fatalf("old row = %+v", row)
	}
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if _, err := st.Update(t.Context(), "t1", shared.SessionUpdate{WebhookSecret: &secret, WebhookFormat: shared.Ptr("json")}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	st.Close()

	st, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer st.Close()
	row, err = st.Get(t.Context(), "t1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if row.WebhookSecret != secret || row.WebhookFormat != "json" {
		t.Errorf("after reopen: secret kept %v, format %q", row.WebhookSecret == secret, row.WebhookFormat)
	}
}
