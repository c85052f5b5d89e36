package waemu

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// TestManySessions logs WAEMU_SCALE clients in to one emulator (skipped when unset).
// Pairing dominates: every new whatsmeow device generates and uploads 812 prekeys.
func TestManySessions(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WAEMU_SCALE"))
	if n <= 0 {
		t.Skip("set WAEMU_SCALE=N to log N sessions in")
	}
	s := mustStartServer(t)
	container := mustOpenStore(t, dbPath(t, "scale"))
	start := time.Now()
	goroutinesBefore := runtime.NumGoroutine()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	clients := make([]*whatsmeow.Client, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cli, evts := newClient(t, s, container.NewDevice())
			clients[i] = cli
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			qrCh, err := cli.GetQRChannel(context.Background())
			if err != nil {
				t.Errorf("GetQRChannel: %v", err)
				return
			}
			if err := cli.Connect(); err != nil {
				t.Errorf("Connect: %v", err)
				return
			}
			item := <-qrCh
			if _, err := s.ScanQR(ctx, item.Code); err != nil {
				t.Errorf("ScanQR: %v", err)
				return
			}
			for evts.find(isType[*events.Connected]) == nil {
				if ctx.Err() != nil {
					t.Errorf("client %d did not connect", i)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitFor(t, "all sockets", func() bool { return s.Sockets() == n })
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d sessions logged in after %v; goroutines %d -> %d; heap %d MiB (clients included)",
		n, time.Since(start).Round(time.Millisecond), goroutinesBefore, runtime.NumGoroutine(), ms.HeapAlloc>>20)
	for _, d := range s.Devices() {
		if !d.Online {
			t.Errorf("device %s is offline", d.JID)
		}
	}
}
