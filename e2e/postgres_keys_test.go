package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared/postgres/pgtest"
)

// TestPostgresKeyStore runs the embedded binary with its whatsmeow keys in
// a fresh PostgreSQL database (WAGO_WHATSMEOW_DB=postgres://...): link by
// QR, send, receive (the decryption transaction lands in the database),
// kill -9 and start again: the session comes back by itself from the
// database and sends and receives on the stored Signal sessions; logout
// deletes every row of the device. No whatsmeow.db is ever written.
func TestPostgresKeyStore(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	emu := startEmulator(t)
	dir := t.TempDir()
	env := append(embeddedEnv(emu, dir), "WAGO_WHATSMEOW_DB="+dbURL)
	p := startWago(t, env)
	const token = "postgres-keys-token"
	initToken(p, "postgres-keys", token)
	jid := link(t, p, emu, token)
	if n := count("SELECT count(*) FROM whatsmeow_device WHERE jid=$1", jid.String()); n != 1 {
		t.Fatalf("%d device rows for %s in PostgreSQL, want 1", n, jid)
	}
	if n := count("SELECT count(*) FROM whatsmeow_pre_keys WHERE jid=$1 AND uploaded", jid.String()); n == 0 {
		t.Fatal("no uploaded pre-keys in PostgreSQL")
	}

	contact := emu.Contact()
	send := func(text string) {
		t.Helper()
		var res sendAnswer
		p.ok(p.call("POST", "/send/text", fmt.Sprintf(`{"Phone":"+%s","Body":%q}`, contact.User, text), "token", token), &res)
		if got := inboxWith(t, emu, res.ID); got.Text != text || got.From.User != jid.User {
			t.Fatalf("the contact received %+v, want %q", got, text)
		}
	}
	// receive has the contact send text and waits until its decryption
	// transaction is in the database: a buffered event whose plaintext was
	// cleared once the message was handled.
	handled := func() int {
		return count("SELECT count(*) FROM whatsmeow_event_buffer WHERE our_jid=$1 AND plaintext IS NULL", jid.String())
	}
	receive := func(text string) {
		t.Helper()
		before := handled()
		sendFromContact(t, emu, jid, text)
		waitFor(t, 15*time.Second, "the received message's buffered event", func() bool { return handled() > before })
	}
	send("stored in PostgreSQL")
	receive("hello wago")
	sessionAddr := contact.SignalAddress().String()
	if n := count("SELECT count(*) FROM whatsmeow_sessions WHERE our_jid=$1 AND their_id=$2", jid.String(), sessionAddr); n != 1 {
		t.Fatalf("no Signal session with the contact (%s) in PostgreSQL", sessionAddr)
	}

	// kill -9, then start again: the session comes back by itself.
	before := logins(emu, jid)
	p.kill()
	waitFor(t, 10*time.Second, "the dead process's socket to close", func() bool { return emu.SocketsFor(jid) == 0 })
	p = startWago(t, env)
	p.waitStatus(token, 30*time.Second, "restored at start", func(s status) bool { return s.Connected && s.LoggedIn && s.Jid == jid.String() })
	if after := logins(emu, jid); after != before+1 {
		t.Fatalf("logins %d -> %d, want one more (a restore, not a new link)", before, after)
	}
	send("after the restore")
	receive("still there?")

	// logout unlinks and deletes every row of the device.
	p.ok(p.call("POST", "/session/logout", "", "token", token), nil)
	if _, ok := device(emu, jid); ok {
		t.Fatal("the emulator still has the device after logout")
	}
	waitFor(t, 10*time.Second, "the device's keys to be deleted", func() bool {
		return count("SELECT count(*) FROM whatsmeow_device WHERE jid=$1", jid.String()) == 0
	})
	for _, table := range []string{"whatsmeow_sessions", "whatsmeow_identity_keys", "whatsmeow_event_buffer", "whatsmeow_contacts"} {
		if n := count("SELECT count(*) FROM "+table+" WHERE our_jid=$1", jid.String()); n != 0 {
			t.Errorf("%d rows of the logged-out device left in %s", n, table)
		}
	}
	if n := count("SELECT count(*) FROM whatsmeow_pre_keys WHERE jid=$1", jid.String()); n != 0 {
		t.Errorf("%d pre-keys of the logged-out device left", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "whatsmeow.db")); !os.IsNotExist(err) {
		t.Errorf("the data directory has a whatsmeow.db (%v): the keys must be in PostgreSQL only", err)
	}
}
