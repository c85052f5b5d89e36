package postgres_test

import (
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/shared/postgres"
	"github.com/wago-gw/wago/shared/postgres/pgtest"
)

// TestKeyStoreUpgradeRace: three connectors that open one new key store
// database at the same moment all succeed, round after round. Each opener
// has a pool (sessions) of its own, as separate processes would: the
// advisory lock lives in the server. Without it most rounds fail with
// "relation whatsmeow_version already exists" or a duplicate key in
// pg_type.
func TestKeyStoreUpgradeRace(t *testing.T) {
	const openers, rounds = 3, 6
	failed := 0
	for round := range rounds {
		url := pgtest.NewSchema(t)
		start := make(chan struct{})
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				<-start
				c, err := postgres.OpenKeyStore(t.Context(), url, waLog.Noop)
				if err == nil {
					_, err = c.GetAllDevices(t.Context())
					c.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				failed++
				t.Errorf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d opens failed", failed, openers*rounds)
	}
}
