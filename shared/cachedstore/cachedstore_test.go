package cachedstore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
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

// clockedCache returns a cache with a TTL of a minute over a fresh SQLite
// store, that store, and what moves the cache's clock forward.
func clockedCache(t *testing.T) (c *Store, inner *sqlite.Store, advance func(time.Duration)) {
	inner = openSQLite(t)
	c = New(inner, time.Minute, 0)
	now := time.Now()
	c.now = func() time.Time { return now }
	return c, inner, func(d time.Duration) { now = now.Add(d) }
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
	c, inner, advance := clockedCache(t)
	if err := c.Create(ctx, &shared.Session{Name: "a", Token: "ta", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Update(ctx, "ta", shared.SessionUpdate{Webhook: shared.Ptr("http://new")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, "ta"); got.Webhook != "" {
		t.Fatalf("within the TTL got webhook %q, want the cached empty one", got.Webhook)
	}
	advance(time.Minute + time.Second)
	if got, _ := c.Get(ctx, "ta"); got.Webhook != "http://new" {
		t.Fatalf("after the TTL got webhook %q", got.Webhook)
	}
	if err := inner.Delete(ctx, "ta"); err != nil {
		t.Fatal(err)
	}
	advance(time.Minute + time.Second)
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
	c, inner, advance := clockedCache(t)
	if _, err := c.Get(ctx, "later"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("unknown token: %v", err)
	}
	if err := inner.Create(ctx, &shared.Session{Name: "l", Token: "later", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "later"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("within a second of the miss: %v, want the remembered miss", err)
	}
	advance(maxMissTTL + time.Millisecond)
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

// TestListCachedWithinTTL: the list of every row is kept for the TTL (a
// row created by another process shows once it has passed), and dropped at
// once by a write through this process.
func TestListCachedWithinTTL(t *testing.T) {
	ctx := context.Background()
	c, inner, advance := clockedCache(t)
	names := func() []string {
		t.Helper()
		rows, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.Name)
		}
		return out
	}
	if got := names(); len(got) != 0 {
		t.Fatalf("empty table lists %v", got)
	}
	if err := inner.Create(ctx, &shared.Session{Name: "other", Token: "t-other", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 0 {
		t.Fatalf("within the TTL a row created elsewhere is listed already: %v (the list is not cached)", got)
	}
	advance(time.Minute + time.Second)
	if got := names(); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("after the TTL: %v, want [other]", got)
	}
	if err := c.Create(ctx, &shared.Session{Name: "mine", Token: "t-mine", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"other", "mine"}) {
		t.Fatalf("after a create through the cache: %v, want [other mine]", got)
	}
	if _, err := c.Update(ctx, "t-mine", shared.SessionUpdate{Webhook: shared.Ptr("http://x")}); err != nil {
		t.Fatal(err)
	}
	if rows, _ := c.List(ctx); rows[1].Webhook != "http://x" {
		t.Fatalf("after an update through the cache the list shows webhook %q", rows[1].Webhook)
	}
	if err := c.Delete(ctx, "t-other"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("after a delete through the cache: %v, want [mine]", got)
	}
	// The caller owns the slice: changing it changes no later answer.
	rows, _ := c.List(ctx)
	rows[0] = nil
	if got := names(); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("a caller's change of its slice reached the cache: %v", got)
	}
}

// slowList is a store whose List calls during first, before it lists.
type slowList struct {
	shared.Store
	during func()
}

func (s *slowList) List(ctx context.Context) ([]*shared.Session, error) {
	if f := s.during; f != nil {
		s.during = nil
		f()
	}
	return s.Store.List(ctx)
}

// TestListReadBeforeAWriteIsNotCached: a list read while this process
// writes may miss the write; it is answered but not kept.
func TestListReadBeforeAWriteIsNotCached(t *testing.T) {
	ctx := context.Background()
	inner := &slowList{Store: openSQLite(t)}
	c := New(inner, time.Minute, 0)
	inner.during = func() {
		if err := c.Create(ctx, &shared.Session{Name: "mine", Token: "t-mine", Os: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	c.List(ctx)
	if _, ok := c.cachedList(0); ok {
		t.Fatal("a list read across a write was cached")
	}
	if rows, _ := c.List(ctx); len(rows) != 1 {
		t.Fatalf("listed %d rows, want 1", len(rows))
	}
}

// TestListFollowsTheVersion: with TrackList, a row written by another
// process (which increments the table's version) is listed at once, within
// the TTL; an unchanged version keeps the cached list; a version that
// cannot be read lists the table.
func TestListFollowsTheVersion(t *testing.T) {
	ctx := context.Background()
	inner := openSQLite(t)
	var version int64
	var versionErr error
	c := New(inner, time.Minute, 0).TrackList(func(context.Context) (int64, error) { return version, versionErr })
	count := func() int {
		t.Helper()
		rows, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if n := count(); n != 0 {
		t.Fatalf("empty table lists %d rows", n)
	}
	if err := inner.Create(ctx, &shared.Session{Name: "a", Token: "ta", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("same version: %d rows listed, want the cached 0", n)
	}
	version++
	if n := count(); n != 1 {
		t.Fatalf("after the version changed: %d rows, want 1", n)
	}
	if err := inner.Create(ctx, &shared.Session{Name: "b", Token: "tb", Os: "x"}); err != nil {
		t.Fatal(err)
	}
	versionErr = errors.New("redis down")
	if n := count(); n != 2 {
		t.Fatalf("version unreadable: %d rows, want the table's 2", n)
	}
}
