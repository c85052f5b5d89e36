package postgres_test

import (
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
