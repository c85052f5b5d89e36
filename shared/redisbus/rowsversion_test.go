package redisbus

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/sqlite"
)

// TestRowsVersion: every write through a tracked store, one that fails
// included, increments the version; reads do not.
func TestRowsVersion(t *testing.T) {
	rdb := MustOpenRedis(t)
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	v := NewRowsVersion(rdb, testPrefix(t, rdb))
	s := v.Track(inner)
	version := func() int64 {
		t.Helper()
		n, err := v.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := version(); n != 0 {
		t.Fatalf("version before any write = %d", n)
	}
	steps := []struct {
		name  string
		write func() error
	}{
		{"create", func() error { return s.Create(ctx, &shared.Session{Name: "a", Token: "ta", Os: "x"}) }},
		{"update", func() error {
			_, err := s.Update(ctx, "ta", shared.SessionUpdate{Webhook: shared.Ptr("http://x")})
			return err
		}},
		{"failed update", func() error {
			if _, err := s.Update(ctx, "nope", shared.SessionUpdate{}); err == nil {
				t.Error("update of a missing row did not fail")
			}
			return nil
		}},
		{"delete", func() error { return s.Delete(ctx, "ta") }},
	}
	for i, step := range steps {
		if err := step.write(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		s.Get(ctx, "ta")
		s.List(ctx)
		if n := version(); n != int64(i+1) {
			t.Fatalf("after %s the version is %d, want %d", step.name, n, i+1)
		}
	}
}
