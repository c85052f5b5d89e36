package cachedstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/storetest"
)

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestContract: the cache changes no answer of the store it wraps.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shared.Store { return New(openSQLite(t), time.Minute, 0) })
}

// TestStaleWithinTTL: a row changed behind the cache's back (by another
// process) is seen once the TTL has passed, and a deleted one stops
// authenticating.
func TestStaleWithinTTL(t *testing.T) {
	ctx := context.Background()
	inner := openSQLite(t)
	c := New(inner, time.Minute, 0)
	now := time.Now()
	c.now = func() time.Time { return now }
	if err := c.Create(ctx, &shared.Session{Name: "a", Token: "ta", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Update(ctx, "ta", shared.SessionUpdate{Webhook: shared.Ptr("http://new")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, "ta"); got.Webhook != "" {
		t.Fatalf("within the TTL got webhook %q, want the cached empty one", got.Webhook)
	}
	now = now.Add(time.Minute + time.Second)
	if got, _ := c.Get(ctx, "ta"); got.Webhook != "http://new" {
		t.Fatalf("after the TTL got webhook %q", got.Webhook)
	}
	if err := inner.Delete(ctx, "ta"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute + time.Second)
	if _, err := c.Get(ctx, "ta"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("deleted row still authenticates: %v", err)
	}
}

func TestBounded(t *testing.T) {
	ctx := context.Background()
	c := New(openSQLite(t), time.Minute, 3)
	for _, tok := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Create(ctx, &shared.Session{Name: tok, Token: tok, Os: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.cache); n > 3 {
		t.Fatalf("cache holds %d rows, max 3", n)
	}
}

// TestMissesAreRememberedBriefly: a wrong token is read from the table once
// per second at most, and a token created elsewhere works after that.
func TestMissesAreRememberedBriefly(t *testing.T) {
	ctx := context.Background()
	inner := openSQLite(t)
	c := New(inner, time.Minute, 0)
	now := time.Now()
	c.now = func() time.Time { return now }
	if _, err := c.Get(ctx, "later"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("unknown token: %v", err)
	}
	if err := inner.Create(ctx, &shared.Session{Name: "l", Token: "later", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "later"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("within a second of the miss: %v, want the remembered miss", err)
	}
	now = now.Add(maxMissTTL + time.Millisecond)
	if _, err := c.Get(ctx, "later"); err != nil {
		t.Fatalf("after the miss expired: %v", err)
	}
	// A create through this cache replaces a remembered miss at once.
	if _, err := c.Get(ctx, "mine"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &shared.Session{Name: "m", Token: "mine", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "mine"); err != nil {
		t.Fatalf("created here, refused: %v", err)
	}
}
