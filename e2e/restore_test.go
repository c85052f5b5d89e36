package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/redisbus"
)

// TestRestoreRetriesAHungServer: a session restored while WhatsApp hangs
// fails the attempt (bounded by the connect timeout, never holding the
// token) and comes back by itself once WhatsApp answers again.
func TestRestoreRetriesAHungServer(t *testing.T) {
	emu := startEmulator(t)
	wa := startHangProxy(t, emu.Addr())
	dir := t.TempDir()
	first, store := openManager(t, dir, emu, wa.Addr(), nil)
	e := contractEnv{conn: first, store: store, emu: emu, wa: wa}
	const token = "restore-token"
	if err := store.Create(context.Background(), &shared.Session{Name: "restore", Token: token, Os: "linux"}); err != nil {
		t.Fatal(err)
	}
	jid := e.link(t, token)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Close(cctx) // as at shutdown: the row keeps AutoConnect
	cancel()
	waitFor(t, 5*time.Second, "the socket to close", func() bool { return emu.SocketsFor(jid) == 0 })

	wa.Freeze()
	second, _ := openManager(t, dir, emu, wa.Addr(), func(c *connector.Config) {
		c.ConnectTimeout, c.RestoreRetry = 2*time.Second, 500*time.Millisecond
	})
	e.conn = second
	start := time.Now()
	restored, failed := second.Restore(context.Background(), nil)
	if restored != 0 || failed != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("restore while WhatsApp hangs: %d restored, %d failed, after %v", restored, failed, time.Since(start))
	}
	e.eventually(t, token, "failed", func(s shared.Status) bool { return s.State == shared.StateFailed })
	wa.Thaw()
	e.eventually(t, token, "restored by itself", func(s shared.Status) bool { return s.Connected && s.LoggedIn && s.JID == jid.String() })
	if n := emu.SocketsFor(jid); n != 1 {
		t.Fatalf("%d sockets after the retried restore", n)
	}
}

// listCounter is a Store that counts its full listings.
type listCounter struct {
	shared.Store
	lists atomic.Int64
}

func (c *listCounter) List(ctx context.Context) ([]*shared.Session, error) {
	c.lists.Add(1)
	return c.Store.List(ctx)
}

// TestShardRestoreListsOncePerBatch: a connector that gains 16 shards at
// once restores each shard's logged-in sessions (and only those) with one
// or two listings of the token table, not one per shard.
func TestShardRestoreListsOncePerBatch(t *testing.T) {
	const shards = 16
	emu := startEmulator(t)
	dir := t.TempDir()
	first, store := openManager(t, dir, emu, emu.Addr(), nil)
	e := contractEnv{conn: first, store: store, emu: emu}
	jids := map[string]types.JID{}
	for i := range 4 {
		token := fmt.Sprintf("shard-restore-%d", i)
		if err := store.Create(context.Background(), &shared.Session{Name: token, Token: token, Os: "linux"}); err != nil {
			t.Fatal(err)
		}
		jids[token] = e.link(t, token)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Close(cctx) // as at shutdown: the rows keep AutoConnect
	cancel()
	for _, jid := range jids {
		waitFor(t, 5*time.Second, "the sockets to close", func() bool { return emu.SocketsFor(jid) == 0 })
	}

	counter := &listCounter{}
	second, _ := openManager(t, dir, emu, emu.Addr(), func(c *connector.Config) {
		counter.Store = c.Store
		c.Store = counter
	})
	shardOf := func(token string) int { return redisbus.ShardOf(token, shards) }
	want := map[int]int{}
	for token := range jids {
		want[shardOf(token)]++
	}
	r := second.NewShardRestorer(shardOf)
	var wg sync.WaitGroup
	got := make([]int, shards)
	for shard := range shards {
		wg.Go(func() {
			ok, failed := r.Restore(context.Background(), shard)
			if failed != 0 {
				t.Errorf("shard %d: %d restores failed", shard, failed)
			}
			got[shard] = ok
		})
	}
	wg.Wait()
	for shard := range shards {
		if got[shard] != want[shard] {
			t.Errorf("shard %d: %d sessions restored, want %d", shard, got[shard], want[shard])
		}
	}
	if n := counter.lists.Load(); n < 1 || n > 2 {
		t.Errorf("%d listings of the token table for %d shards gained at once, want 1 or 2", n, shards)
	}
	e.conn = second
	for token, jid := range jids {
		e.eventually(t, token, "restored", func(s shared.Status) bool { return s.Connected && s.LoggedIn && s.JID == jid.String() })
	}
	t.Logf("%d shards restored with %d listings", shards, counter.lists.Load())
}
