package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// upgradeRaceEnv names, in a helper process, the key store file to open.
const upgradeRaceEnv = "WAGO_TEST_UPGRADE_RACE_PATH"

// TestKeyStoreUpgradeRaceHelper is not a test: TestKeyStoreUpgradeRace runs
// the test binary with only it selected and upgradeRaceEnv set, as one of
// the processes that open one new key store at once. It waits for a line
// on stdin (the start signal), opens the store and fails if that fails.
func TestKeyStoreUpgradeRaceHelper(t *testing.T) {
	path := os.Getenv(upgradeRaceEnv)
	if path == "" {
		t.Skip("a helper process of TestKeyStoreUpgradeRace")
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("no start signal: %v", err)
	}
	c, err := OpenKeyStore(t.Context(), path, waLog.Noop)
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	if _, err := c.GetAllDevices(t.Context()); err != nil {
		t.Fatalf("GetAllDevices: %v", err)
	}
	c.Close()
}

// TestKeyStoreUpgradeRace: three processes that open one new key store
// file at the same moment (a fleet of connectors starting together on a
// shared volume) all succeed, round after round. Without the upgrade lock
// most rounds fail with "table whatsmeow_version already exists" or
// "duplicate column name: compat".
func TestKeyStoreUpgradeRace(t *testing.T) {
	if os.Getenv(upgradeRaceEnv) != "" {
		t.Skip("in a helper process")
	}
	const processes, rounds = 3, 6
	failed := 0
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "whatsmeow.db")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var (
			cmds   []*exec.Cmd
			starts []io.WriteCloser
			outs   []*bytes.Buffer
		)
		for range processes {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKeyStoreUpgradeRaceHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), upgradeRaceEnv+"="+path)
			out := &bytes.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			start, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, starts, outs = append(cmds, cmd), append(starts, start), append(outs, out)
		}
		// Every process is up (blocked on stdin): start them together.
		for _, s := range starts {
			fmt.Fprintln(s, "go")
			s.Close()
		}
		var wg sync.WaitGroup
		errs := make([]error, processes)
		for i, cmd := range cmds {
			wg.Go(func() { errs[i] = cmd.Wait() })
		}
		wg.Wait()
		cancel()
		for i, err := range errs {
			if err != nil {
				failed++
				t.Errorf("round %d, process %d: %v\n%s", round, i, err, outs[i])
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d opens failed", failed, processes*rounds)
	}
}
