package sqlite

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/keystoretest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on SQLite as OpenKeyStore opens it: the reference the others follow.
func TestKeyStoreContract(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) shared.KeyStore {
		path := filepath.Join(t.TempDir(), "whatsmeow.db")
		if err := os.WriteFile(path, upgradedKeyStore(t), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := OpenKeyStore(t.Context(), path, waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}

var upgraded struct {
	once sync.Once
	file []byte
	err  error
}

// upgradedKeyStore returns the bytes of an empty key store file with
// whatsmeow's schema, made once: a copy opens much faster than a schema
// upgrade runs (which matters under -race).
func upgradedKeyStore(t *testing.T) []byte {
	upgraded.once.Do(func() {
		dir, err := os.MkdirTemp("", "wago-keystore-")
		if err != nil {
			upgraded.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "whatsmeow.db")
		if upgraded.err = upgradeKeyStore(t.Context(), path, waLog.Noop); upgraded.err != nil {
			return
		}
		upgraded.file, upgraded.err = os.ReadFile(path)
	})
	if upgraded.err != nil {
		t.Fatalf("failed to make an empty key store: %v", upgraded.err)
	}
	return upgraded.file
}
