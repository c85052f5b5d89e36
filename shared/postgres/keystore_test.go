package postgres_test

import (
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/keystoretest"
	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
)

// TestKeyStoreContract runs the key-store contract on whatsmeow's sqlstore
// on PostgreSQL as OpenKeyStore opens it, one schema (and role) per case.
func TestKeyStoreContract(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) shared.KeyStore {
		c, err := postgres.OpenKeyStore(t.Context(), pgtest.NewSchema(t), waLog.Noop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}
