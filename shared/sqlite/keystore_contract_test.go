package sqlite

import (
	"path/filepath"
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared/keystore"
	"github.com/wago-gw/wago/shared/keystoretest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on SQLite as OpenKeyStore opens it: the reference the others follow.
func TestKeyStoreContract(t *testing.T) {
	var paths sync.Map // keystore.Store -> its file
	open := func(t *testing.T, path string) keystore.Store {
		c, err := OpenKeyStore(t.Context(), path, waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		paths.Store(keystore.Store(c), path)
		return c
	}
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		return open(t, filepath.Join(t.TempDir(), "whatsmeow.db"))
	}, keystoretest.Reopen(func(t *testing.T, ks keystore.Store) keystore.Store {
		path, _ := paths.Load(ks)
		return open(t, path.(string))
	}))
}
