package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shared.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "wago.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestRowsSurviveReopen proves the rows live in the file, not only in the
// memory copy.
func TestRowsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wago.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*shared.Session{
		{Name: "a", Token: "ta", Os: "linux", Events: []string{"Message", "Call"}},
		{Name: "b", Token: "tb", Os: "mac"},
		{Name: "c", Token: "tc", Os: "win"},
	} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, "ta", shared.SessionUpdate{JID: shared.Ptr("1:2@s.whatsapp.net"), AutoConnect: shared.Ptr(true), Webhook: shared.Ptr("http://x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "tb"); err != nil {
		t.Fatal(err)
	}
	want, _ := s.Get(ctx, "ta")
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "ta")
	if err != nil {
		t.Fatal(err)
	}
	if got.JID != want.JID || !got.AutoConnect || got.Webhook != "http://x" || got.EventsString() != "Message,Call" ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("after reopen got %+v, want %+v", got, want)
	}
	if _, err := s.Get(ctx, "tb"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("deleted row came back: %v", err)
	}
	all, _ := s.List(ctx)
	if len(all) != 2 || all[0].Token != "ta" || all[1].Token != "tc" {
		t.Fatalf("List after reopen: %d rows", len(all))
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "wago.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(ctx, &shared.Session{Name: "a", Token: "ta", Os: "linux"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "ta"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestConcurrentWritesUnderLoad has 64 goroutines create and update rows at
// once while every core is kept busy: every write must succeed and be in
// the file after a reopen. The store also keeps to one connection.
func TestConcurrentWritesUnderLoad(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wago.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.db.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("the token store may open %d connections, want 1", got)
	}
	const writers, updates = 64, 5
	stop := burnCPU(2*runtime.NumCPU(), time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := fmt.Sprintf("t%d", w)
			if err := s.Create(ctx, &shared.Session{Name: fmt.Sprintf("n%d", w), Token: token, Os: "linux"}); err != nil {
				errs <- fmt.Errorf("create %s: %w", token, err)
				return
			}
			for u := range updates {
				jid := fmt.Sprintf("%d:%d@s.whatsapp.net", w, u)
				if _, err := s.Update(ctx, token, shared.SessionUpdate{JID: &jid, AutoConnect: shared.Ptr(u%2 == 0)}); err != nil {
					errs <- fmt.Errorf("update %s: %w", token, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for w := range writers {
		got, err := s.Get(ctx, fmt.Sprintf("t%d", w))
		if err != nil {
			t.Fatalf("row %d after reopen: %v", w, err)
		}
		if want := fmt.Sprintf("%d:%d@s.whatsapp.net", w, updates-1); got.JID != want || !got.AutoConnect {
			t.Errorf("row %d after reopen: JID %q AutoConnect %t, want %q true", w, got.JID, got.AutoConnect, want)
		}
	}
}
