package sqlite

import (
	"path/filepath"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/keystoretest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on SQLite as OpenKeyStore opens it: the reference the others follow.
func TestKeyStoreContract(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) shared.KeyStore {
		c, err := OpenKeyStore(t.Context(), filepath.Join(t.TempDir(), "whatsmeow.db"), waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}
