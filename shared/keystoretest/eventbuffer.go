package keystoretest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared/keystore"
)

// testEventBuffer: a decrypted event's plaintext is kept by its ciphertext
// hash until cleared; a cleared one is still known (so whatsmeow drops a
// redelivery); an event is stored once.
func testEventBuffer(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	h1, h2 := [32]byte(randBytes(32)), [32]byte(randBytes(32))
	if e, err := dev.EventBuffer.GetBufferedEvent(ctx(t), h1); err != nil || e != nil {
		t.Errorf("GetBufferedEvent(unknown) = %v, %v; want nil, nil", e, err)
	}
	server := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	before := time.Now().Add(-time.Second)
	must(t, "PutBufferedEvent", dev.EventBuffer.PutBufferedEvent(ctx(t), h1, []byte("plain 1"), server.Add(500*time.Millisecond)))
	must(t, "PutBufferedEvent", dev.EventBuffer.PutBufferedEvent(ctx(t), h2, []byte("plain 2"), server))
	after := time.Now().Add(time.Second)
	e, err := reload(t, ks, dev).EventBuffer.GetBufferedEvent(ctx(t), h1)
	if err != nil || e == nil {
		t.Fatalf("GetBufferedEvent = %v, %v", e, err)
	}
	if string(e.Plaintext) != "plain 1" || !e.ServerTime.Equal(server) || e.InsertTime.Before(before) || e.InsertTime.After(after) {
		t.Errorf("GetBufferedEvent = %q, server %v, inserted %v; want %q, %v, between %v and %v",
			e.Plaintext, e.ServerTime, e.InsertTime, "plain 1", server, before, after)
	}
	if err := dev.EventBuffer.PutBufferedEvent(ctx(t), h1, []byte("again"), server); err == nil {
		t.Error("PutBufferedEvent of a stored hash succeeded; want an error (stored once)")
	}
	must(t, "ClearBufferedEventPlaintext", dev.EventBuffer.ClearBufferedEventPlaintext(ctx(t), h1))
	e, err = reload(t, ks, dev).EventBuffer.GetBufferedEvent(ctx(t), h1)
	if err != nil || e == nil || e.Plaintext != nil || !e.ServerTime.Equal(server) {
		t.Errorf("GetBufferedEvent after clearing = %+v, %v; want the event without plaintext", e, err)
	}
	must(t, "DeleteOldBufferedHashes", dev.EventBuffer.DeleteOldBufferedHashes(ctx(t)))
	for _, h := range [][32]byte{h1, h2} {
		if e, err := reload(t, ks, dev).EventBuffer.GetBufferedEvent(ctx(t), h); err != nil || e == nil {
			t.Errorf("GetBufferedEvent after DeleteOldBufferedHashes = %v, %v; want a recent event kept", e, err)
		}
	}
}

// testDecryptionTxnCommit: what fn writes through its context in
// DoDecryptionTxn, it reads back inside, and it is stored when fn returns
// nil.
func testDecryptionTxnCommit(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	addr := signalAddr(pnJID(), 0)
	h := [32]byte(randBytes(32))
	must(t, "PutSession", dev.Sessions.PutSession(ctx(t), addr, []byte("v1")))
	err := dev.EventBuffer.DoDecryptionTxn(ctx(t), func(ctx context.Context) error {
		s, err := dev.Sessions.GetSession(ctx, addr)
		if err != nil || string(s) != "v1" {
			return errors.Join(errors.New("inside the transaction the session is not v1"), err)
		}
		if err := dev.Sessions.PutSession(ctx, addr, []byte("v2")); err != nil {
			return err
		}
		if err := dev.Identities.PutIdentity(ctx, addr, [32]byte{4}); err != nil {
			return err
		}
		if s, err := dev.Sessions.GetSession(ctx, addr); err != nil || string(s) != "v2" {
			return errors.Join(errors.New("inside the transaction the session written is not read back"), err)
		}
		return dev.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Unix(1_700_000_000, 0))
	})
	must(t, "DoDecryptionTxn", err)
	d := reload(t, ks, dev)
	if s, err := d.Sessions.GetSession(ctx(t), addr); err != nil || string(s) != "v2" {
		t.Errorf("session after commit = %q, %v; want v2", s, err)
	}
	if ok, err := d.Identities.IsTrustedIdentity(ctx(t), addr, [32]byte{5}); err != nil || ok {
		t.Errorf("identity not stored by the transaction: trusts another key %v, %v", ok, err)
	}
	if e, err := d.EventBuffer.GetBufferedEvent(ctx(t), h); err != nil || e == nil || string(e.Plaintext) != "plain" {
		t.Errorf("buffered event after commit = %v, %v", e, err)
	}
}

// testDecryptionTxnRollback: when fn fails, DoDecryptionTxn returns its
// error and nothing fn wrote through its context is stored (a failed
// decryption must not advance the Signal session).
func testDecryptionTxnRollback(t *testing.T, ks keystore.Store) {
	dev := saved(t, ks)
	addr, fresh := signalAddr(pnJID(), 0), signalAddr(pnJID(), 1)
	h := [32]byte(randBytes(32))
	must(t, "PutSession", dev.Sessions.PutSession(ctx(t), addr, []byte("v1")))
	failed := errors.New("decryption failed")
	err := dev.EventBuffer.DoDecryptionTxn(ctx(t), func(ctx context.Context) error {
		if err := dev.Sessions.PutSession(ctx, addr, []byte("v2")); err != nil {
			return err
		}
		if err := dev.Sessions.PutSession(ctx, fresh, []byte("new")); err != nil {
			return err
		}
		if err := dev.Identities.PutIdentity(ctx, fresh, [32]byte{4}); err != nil {
			return err
		}
		if err := dev.EventBuffer.PutBufferedEvent(ctx, h, []byte("plain"), time.Unix(1_700_000_000, 0)); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("DoDecryptionTxn = %v, want fn's error", err)
	}
	d := reload(t, ks, dev)
	if s, err := d.Sessions.GetSession(ctx(t), addr); err != nil || string(s) != "v1" {
		t.Errorf("session after rollback = %q, %v; want v1", s, err)
	}
	if has, err := d.Sessions.HasSession(ctx(t), fresh); err != nil || has {
		t.Errorf("session created in a rolled-back transaction exists: %v, %v", has, err)
	}
	if ok, err := d.Identities.IsTrustedIdentity(ctx(t), fresh, [32]byte{5}); err != nil || !ok {
		t.Errorf("identity written in a rolled-back transaction is stored")
	}
	if e, err := d.EventBuffer.GetBufferedEvent(ctx(t), h); err != nil || e != nil {
		t.Errorf("buffered event after rollback = %v, %v; want none", e, err)
	}
	// The store works after a rollback.
	must(t, "PutSession after rollback", dev.Sessions.PutSession(ctx(t), fresh, []byte("later")))
}
