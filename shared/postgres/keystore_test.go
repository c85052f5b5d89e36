package postgres_test

import (
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/keystoretest"
	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on PostgreSQL as OpenKeyStore opens it, a schema (and role) of its own
// for each store.
func TestKeyStoreContract(t *testing.T) {
	var urls sync.Map // shared.KeyStore -> its URL
	open := func(t *testing.T, url string) shared.KeyStore {
		c, err := postgres.OpenKeyStore(t.Context(), url, waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		urls.Store(shared.KeyStore(c), url)
		return c
	}
	keystoretest.Run(t, func(t *testing.T) shared.KeyStore {
		return open(t, pgtest.NewSchema(t))
	}, keystoretest.Reopen(func(t *testing.T, ks shared.KeyStore) shared.KeyStore {
		url, _ := urls.Load(ks)
		return open(t, url.(string))
	}))
}
