package sqlite

import (
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
	var paths sync.Map // shared.KeyStore -> its file
	open := func(t *testing.T, path string) shared.KeyStore {
		c, err := OpenKeyStore(t.Context(), path, waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		paths.Store(shared.KeyStore(c), path)
		return c
	}
	keystoretest.Run(t, func(t *testing.T) shared.KeyStore {
		return open(t, filepath.Join(t.TempDir(), "whatsmeow.db"))
	}, keystoretest.Reopen(func(t *testing.T, ks shared.KeyStore) shared.KeyStore {
		path, _ := paths.Load(ks)
		return open(t, path.(string))
	}))
}
