// Package storetest is the contract every shared.Store implementation must
// meet. An implementation's tests call Run with a function that opens a
// fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) shared.Store { ... })
//	}
//
// A behaviour that differs between two stores that pass Run is either
// unspecified or a gap in Run.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
)

// Run runs the contract suite. open must return a fresh, empty store each
// time it is called, and close it (t.Cleanup) when t ends; Run calls it once
// per subtest, and subtests run in parallel, so open must be safe to call
// concurrently.
func Run(t *testing.T, open func(t *testing.T) shared.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, st shared.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateGetZeroFields", testCreateGetZeroFields},
		{"CreatedAtDefault", testCreatedAtDefault},
		{"CreateDoesNotAlias", testCreateDoesNotAlias},
		{"DuplicateToken", testDuplicateToken},
		{"DuplicateName", testDuplicateName},
		{"GetUnknown", testGetUnknown},
		{"ListEmpty", testListEmpty},
		{"ListOldestFirst", testListOldestFirst},
		{"ListMany", testListMany},
		{"Update", testUpdate},
		{"UpdateUnknown", testUpdateUnknown},
		{"Delete", testDelete},
		{"DeleteUnknown", testDeleteUnknown},
		{"DeleteFreesNameAndToken", testDeleteFreesNameAndToken},
		{"ConcurrentSameToken", testConcurrentSameToken},
		{"ConcurrentSameName", testConcurrentSameName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// base is the CreatedAt of rows that tests give a time: whole milliseconds,
// UTC, so that any store keeps it exactly.
var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// session returns a row with every field set, distinct for each i.
func session(i int) *shared.Session {
	return &shared.Session{
		Name:          fmt.Sprintf("name-%03d", i),
		Token:         fmt.Sprintf("token-%03d-%x", i, rand.Uint64()),
		Os:            "Wago Test",
		Webhook:       fmt.Sprintf("https://example.com/hook/%d", i),
		Events:        []string{"Message", "ReadReceipt", "Presence"},
		WebhookSecret: fmt.Sprintf("whsec_c2VjcmV0LW9mLXJvdy0%06d", i),
		WebhookFormat: "form",
		JID:           fmt.Sprintf("5511999%06d:7@s.whatsapp.net", i),
		AutoConnect:   true,
	}
}

func mustCreate(t *testing.T, st shared.Store, s *shared.Session) {
	t.Helper()
	if err := st.Create(t.Context(), s); err != nil {
		t.Fatalf("Create(%q, %q): %v", s.Name, s.Token, err)
	}
}

func mustGet(t *testing.T, st shared.Store, token string) *shared.Session {
	t.Helper()
	got, err := st.Get(t.Context(), token)
	if err != nil {
		t.Fatalf("Get(%q): %v", token, err)
	}
	if got == nil {
		t.Fatalf("Get(%q) = nil, nil", token)
	}
	return got
}

func mustList(t *testing.T, st shared.Store) []*shared.Session {
	t.Helper()
	got, err := st.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

// checkCode fails t unless err carries the error code want.
func checkCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := shared.ErrorCode(err); got != want {
		t.Errorf("%s: error code %q (err %v), want %q", what, got, err, want)
	}
}

// checkSession compares every field of got with want; timestamps only where
// want's are non-zero. nil and empty Events are equal.
func checkSession(t *testing.T, what string, got, want *shared.Session) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil session", what)
		return
	}
	if got.Name != want.Name {
		t.Errorf("%s: Name = %q, want %q", what, got.Name, want.Name)
	}
	if got.Token != want.Token {
		t.Errorf("%s: Token = %q, want %q", what, got.Token, want.Token)
	}
	if got.Os != want.Os {
		t.Errorf("%s: Os = %q, want %q", what, got.Os, want.Os)
	}
	if got.Webhook != want.Webhook {
		t.Errorf("%s: Webhook = %q, want %q", what, got.Webhook, want.Webhook)
	}
	if got.WebhookSecret != want.WebhookSecret {
		t.Errorf("%s: WebhookSecret differs from the one stored", what) // never print a secret
	}
	if got.WebhookFormat != want.WebhookFormat {
		t.Errorf("%s: WebhookFormat = %q, want %q", what, got.WebhookFormat, want.WebhookFormat)
	}
	if !slices.Equal(got.Events, want.Events) {
		t.Errorf("%s: Events = %q, want %q", what, got.Events, want.Events)
	}
	if got.JID != want.JID {
		t.Errorf("%s: JID = %q, want %q", what, got.JID, want.JID)
	}
	if got.AutoConnect != want.AutoConnect {
		t.Errorf("%s: AutoConnect = %v, want %v", what, got.AutoConnect, want.AutoConnect)
	}
	if !want.CreatedAt.IsZero() && !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
	if !want.UpdatedAt.IsZero() && !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s: UpdatedAt = %v, want %v", what, got.UpdatedAt, want.UpdatedAt)
	}
}

// checkStamped fails t unless the store set both timestamps.
func checkStamped(t *testing.T, what string, got *shared.Session) {
	t.Helper()
	if got.CreatedAt.IsZero() {
		t.Errorf("%s: CreatedAt is zero", what)
	}
	if got.UpdatedAt.IsZero() {
		t.Errorf("%s: UpdatedAt is zero", what)
	}
}

func testCreateGet(t *testing.T, st shared.Store) {
	in := session(1)
	in.Events = []string{"Presence", "Message", "ChatPresence", "HistorySync"} // not sorted: order is kept
	want := in.Clone()
	mustCreate(t, st, in)
	got := mustGet(t, st, want.Token)
	checkSession(t, "Get after Create", got, want)
	checkStamped(t, "Get after Create", got)

	// A second row must not disturb the first.
	other := session(2)
	mustCreate(t, st, other)
	checkSession(t, "Get first row after second Create", mustGet(t, st, want.Token), want)
}

func testCreateGetZeroFields(t *testing.T, st shared.Store) {
	in := &shared.Session{Name: "bare", Token: "bare-token"}
	mustCreate(t, st, in)
	got := mustGet(t, st, "bare-token")
	checkSession(t, "Get of a row with zero fields", got, &shared.Session{Name: "bare", Token: "bare-token"})
	checkStamped(t, "Get of a row with zero fields", got)
}

func testCreatedAtDefault(t *testing.T, st shared.Store) {
	before := time.Now()
	mustCreate(t, st, session(1))
	after := time.Now()
	got := mustList(t, st)
	if len(got) != 1 {
		t.Fatalf("List: %d rows, want 1", len(got))
	}
	// Allow a second either side for stores that keep coarser timestamps.
	if c := got[0].CreatedAt; c.Before(before.Add(-time.Second)) || c.After(after.Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want between %v and %v", c, before, after)
	}
	if u := got[0].UpdatedAt; u.Before(before.Add(-time.Second)) || u.After(after.Add(time.Second)) {
		t.Errorf("UpdatedAt = %v, want between %v and %v", u, before, after)
	}

	// A CreatedAt the caller gives is kept.
	in := session(2)
	in.CreatedAt = base
	mustCreate(t, st, in)
	if got, want := mustGet(t, st, in.Token).CreatedAt, base; !got.Equal(want) {
		t.Errorf("CreatedAt = %v, want the given %v", got, want)
	}
}

func testCreateDoesNotAlias(t *testing.T, st shared.Store) {
	in := session(1)
	want := in.Clone()
	mustCreate(t, st, in)
	// Neither the caller's session nor a returned one is the stored row.
	in.Webhook = "changed"
	in.Events[0] = "changed"
	got := mustGet(t, st, want.Token)
	got.JID = "changed"
	if len(got.Events) > 0 {
		got.Events[0] = "changed"
	}
	checkSession(t, "Get after changing the caller's copies", mustGet(t, st, want.Token), want)
}

func testDuplicateToken(t *testing.T, st shared.Store) {
	first := session(1)
	want := first.Clone()
	mustCreate(t, st, first)

	dup := session(2)
	dup.Token = first.Token
	err := st.Create(t.Context(), dup)
	checkCode(t, "Create with a taken Token", err, shared.EEXISTS)

	checkSession(t, "first row after duplicate Token", mustGet(t, st, want.Token), want)
	// The failed Create reserved nothing: its name is still free.
	fresh := session(3)
	fresh.Name = dup.Name
	mustCreate(t, st, fresh)
	if got, want := len(mustList(t, st)), 2; got != want {
		t.Errorf("List: %d rows, want %d", got, want)
	}
}

func testDuplicateName(t *testing.T, st shared.Store) {
	first := session(1)
	want := first.Clone()
	mustCreate(t, st, first)

	dup := session(2)
	dup.Name = first.Name
	err := st.Create(t.Context(), dup)
	checkCode(t, "Create with a taken Name", err, shared.EEXISTS)

	checkSession(t, "first row after duplicate Name", mustGet(t, st, want.Token), want)
	_, err = st.Get(t.Context(), dup.Token)
	checkCode(t, "Get of the token whose Create failed", err, shared.ENOTFOUND)
	// The failed Create reserved nothing: its token is still free.
	fresh := session(3)
	fresh.Token = dup.Token
	mustCreate(t, st, fresh)
	if got, want := len(mustList(t, st)), 2; got != want {
		t.Errorf("List: %d rows, want %d", got, want)
	}
}

func testGetUnknown(t *testing.T, st shared.Store) {
	_, err := st.Get(t.Context(), "no-such-token")
	checkCode(t, `Get("no-such-token") on an empty store`, err, shared.ENOTFOUND)

	in := session(1)
	mustCreate(t, st, in)
	for _, token := range []string{"no-such-token", "", in.Name, in.Token + "x", in.Token[:len(in.Token)-1]} {
		got, err := st.Get(t.Context(), token)
		checkCode(t, fmt.Sprintf("Get(%q)", token), err, shared.ENOTFOUND)
		if got != nil {
			t.Errorf("Get(%q) = %+v, want nil", token, got)
		}
	}
}

func testListEmpty(t *testing.T, st shared.Store) {
	if got := mustList(t, st); len(got) != 0 {
		t.Errorf("List on an empty store: %d rows, want 0", len(got))
	}
}

func testListOldestFirst(t *testing.T, st shared.Store) {
	// CreatedAt order is neither Name, Token nor creation order.
	const n = 7
	age := []int{4, 6, 0, 3, 5, 1, 2} // rows[i] is the age[i]-th oldest
	rows := make([]*shared.Session, n)
	want := make([]*shared.Session, n) // oldest first
	for i := range rows {
		rows[i] = session(i)
		rows[i].CreatedAt = base.Add(time.Duration(age[i]) * time.Millisecond)
		want[age[i]] = rows[i]
	}
	for _, i := range []int{3, 0, 6, 2, 5, 1, 4} {
		mustCreate(t, st, rows[i].Clone())
	}
	checkListed(t, mustList(t, st), want)
}

// checkListed fails t unless got holds the rows of want in that order.
func checkListed(t *testing.T, got, want []*shared.Session) {
	t.Helper()
	var gotTokens, wantTokens []string
	for _, s := range got {
		gotTokens = append(gotTokens, s.Token)
	}
	for _, s := range want {
		wantTokens = append(wantTokens, s.Token)
	}
	if !slices.Equal(gotTokens, wantTokens) {
		t.Fatalf("List: %d rows %q,\nwant %d rows %q (oldest first)", len(got), gotTokens, len(want), wantTokens)
	}
	for i := range got {
		checkSession(t, fmt.Sprintf("List[%d]", i), got[i], want[i])
	}
}

func testListMany(t *testing.T, st shared.Store) {
	const n = 200
	age := rand.Perm(n) // CreatedAt order is neither Name, Token nor creation order
	rows := make([]*shared.Session, n)
	want := make([]*shared.Session, n) // oldest first
	for i := range rows {
		rows[i] = session(i)
		rows[i].CreatedAt = base.Add(time.Duration(age[i]) * time.Millisecond)
		want[age[i]] = rows[i]
	}
	// Create with a few workers: some stores are slow per request.
	errs := make(chan error, n)
	next := make(chan *shared.Session)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for s := range next {
				if err := st.Create(t.Context(), s.Clone()); err != nil {
					errs <- fmt.Errorf("Create(%q): %w", s.Name, err)
				}
			}
		})
	}
	for _, s := range rows {
		next <- s
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	checkListed(t, mustList(t, st), want)
}

func testUpdate(t *testing.T, st shared.Store) {
	tests := []struct {
		name string
		u    shared.SessionUpdate
	}{
		{"Nothing", shared.SessionUpdate{}},
		{"Webhook", shared.SessionUpdate{Webhook: shared.Ptr("https://example.org/new")}},
		{"WebhookEmpty", shared.SessionUpdate{Webhook: shared.Ptr("")}},
		{"Events", shared.SessionUpdate{Events: []string{"Presence", "Message"}}},
		{"EventsCleared", shared.SessionUpdate{Events: []string{}}},
		{"WebhookSecret", shared.SessionUpdate{WebhookSecret: shared.Ptr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}},
		{"WebhookSecretCleared", shared.SessionUpdate{WebhookSecret: shared.Ptr("")}},
		{"WebhookFormat", shared.SessionUpdate{WebhookFormat: shared.Ptr("json")}},
		{"WebhookCleared", shared.SessionUpdate{Webhook: shared.Ptr(""), WebhookSecret: shared.Ptr(""), WebhookFormat: shared.Ptr("")}},
		{"JID", shared.SessionUpdate{JID: shared.Ptr("5511888000000:2@s.whatsapp.net")}},
		{"JIDCleared", shared.SessionUpdate{JID: shared.Ptr("")}},
		{"AutoConnectOff", shared.SessionUpdate{AutoConnect: shared.Ptr(false)}},
		{"All", shared.SessionUpdate{
			Webhook:     shared.Ptr("https://example.org/all"),
			Events:      []string{"All"},
			JID:         shared.Ptr("1@s.whatsapp.net"),
			AutoConnect: shared.Ptr(false),
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := session(i)
			in.CreatedAt = base
			mustCreate(t, st, in.Clone())
			other := session(100 + i)
			mustCreate(t, st, other.Clone())
			old := mustGet(t, st, in.Token)

			want := in.Clone()
			tt.u.Apply(want, time.Time{}) // zero: UpdatedAt is checked below

			got, err := st.Update(t.Context(), in.Token, tt.u)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			checkSession(t, "Update result", got, want)
			checkSession(t, "Get after Update", mustGet(t, st, in.Token), got)
			if got.UpdatedAt.Before(old.UpdatedAt) {
				t.Errorf("UpdatedAt = %v, before the old %v", got.UpdatedAt, old.UpdatedAt)
			}
			if tt.u.Events != nil && len(tt.u.Events) == 0 && len(got.Events) != 0 {
				t.Errorf("Events = %q after clearing, want none", got.Events)
			}
			checkSession(t, "another row after Update", mustGet(t, st, other.Token), other)
		})
	}

	t.Run("Twice", func(t *testing.T) {
		in := session(50)
		mustCreate(t, st, in.Clone())
		if _, err := st.Update(t.Context(), in.Token, shared.SessionUpdate{Webhook: shared.Ptr("w1")}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if _, err := st.Update(t.Context(), in.Token, shared.SessionUpdate{JID: shared.Ptr("j2")}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		want := in.Clone()
		want.Webhook, want.JID = "w1", "j2"
		checkSession(t, "Get after two Updates", mustGet(t, st, in.Token), want)
	})
}

func testUpdateUnknown(t *testing.T, st shared.Store) {
	existing := session(1)
	mustCreate(t, st, existing)
	u := shared.SessionUpdate{Webhook: shared.Ptr("x"), AutoConnect: shared.Ptr(true)}
	for _, token := range []string{"no-such-token", "", existing.Name} {
		got, err := st.Update(t.Context(), token, u)
		checkCode(t, fmt.Sprintf("Update(%q)", token), err, shared.ENOTFOUND)
		if got != nil {
			t.Errorf("Update(%q) = %+v, want nil", token, got)
		}
		_, err = st.Get(t.Context(), token)
		checkCode(t, fmt.Sprintf("Get(%q) after Update", token), err, shared.ENOTFOUND)
	}
	if got, want := len(mustList(t, st)), 1; got != want {
		t.Errorf("List: %d rows, want %d", got, want)
	}
}

func testDelete(t *testing.T, st shared.Store) {
	gone, kept := session(1), session(2)
	mustCreate(t, st, gone)
	mustCreate(t, st, kept.Clone())
	if err := st.Delete(t.Context(), gone.Token); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := st.Get(t.Context(), gone.Token)
	checkCode(t, "Get after Delete", err, shared.ENOTFOUND)
	err = st.Delete(t.Context(), gone.Token)
	checkCode(t, "second Delete", err, shared.ENOTFOUND)
	_, err = st.Update(t.Context(), gone.Token, shared.SessionUpdate{Webhook: shared.Ptr("x")})
	checkCode(t, "Update after Delete", err, shared.ENOTFOUND)

	checkSession(t, "other row after Delete", mustGet(t, st, kept.Token), kept)
	got := mustList(t, st)
	if len(got) != 1 || got[0].Token != kept.Token {
		t.Errorf("List after Delete: %d rows, want only %q", len(got), kept.Name)
	}
}

func testDeleteUnknown(t *testing.T, st shared.Store) {
	err := st.Delete(t.Context(), "no-such-token")
	checkCode(t, "Delete on an empty store", err, shared.ENOTFOUND)
	existing := session(1)
	mustCreate(t, st, existing)
	for _, token := range []string{"no-such-token", "", existing.Name} {
		err := st.Delete(t.Context(), token)
		checkCode(t, fmt.Sprintf("Delete(%q)", token), err, shared.ENOTFOUND)
	}
	mustGet(t, st, existing.Token)
}

func testDeleteFreesNameAndToken(t *testing.T, st shared.Store) {
	// After Delete the same Name and Token can be created again, together or
	// each with a new partner.
	in := session(1)
	mustCreate(t, st, in.Clone())
	if err := st.Delete(t.Context(), in.Token); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	again := in.Clone()
	again.Webhook = "https://example.com/again"
	mustCreate(t, st, again.Clone())
	checkSession(t, "Get after re-Create", mustGet(t, st, in.Token), again)

	if err := st.Delete(t.Context(), in.Token); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	sameName := session(2)
	sameName.Name = in.Name
	mustCreate(t, st, sameName.Clone())
	sameToken := session(3)
	sameToken.Token = in.Token
	mustCreate(t, st, sameToken.Clone())
	checkSession(t, "row with the old Name", mustGet(t, st, sameName.Token), sameName)
	checkSession(t, "row with the old Token", mustGet(t, st, sameToken.Token), sameToken)
	if got, want := len(mustList(t, st)), 2; got != want {
		t.Errorf("List: %d rows, want %d", got, want)
	}
}

// createConcurrently creates rows[i] in its own goroutine, all at once, and
// returns the index of the rows created and every error.
func createConcurrently(ctx context.Context, st shared.Store, rows []*shared.Session) (won []int, errs []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i, s := range rows {
		wg.Go(func() {
			<-start
			err := st.Create(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, i)
			} else {
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return won, errs
}

func testConcurrentSameToken(t *testing.T, st shared.Store) {
	const n = 20
	rows := make([]*shared.Session, n)
	for i := range rows {
		rows[i] = session(i)
		rows[i].Token = "contested-token"
	}
	want := make([]*shared.Session, n)
	for i, s := range rows {
		want[i] = s.Clone()
	}
	won, errs := createConcurrently(t.Context(), st, rows)
	checkOneWinner(t, st, won, errs, want)
}

func testConcurrentSameName(t *testing.T, st shared.Store) {
	const n = 20
	rows := make([]*shared.Session, n)
	for i := range rows {
		rows[i] = session(i)
		rows[i].Name = "contested-name"
	}
	want := make([]*shared.Session, n)
	for i, s := range rows {
		want[i] = s.Clone()
	}
	won, errs := createConcurrently(t.Context(), st, rows)
	checkOneWinner(t, st, won, errs, want)
}

func checkOneWinner(t *testing.T, st shared.Store, won []int, errs []error, rows []*shared.Session) {
	t.Helper()
	if got, want := len(won), 1; got != want {
		t.Fatalf("%d of %d concurrent Creates succeeded, want %d (errors: %v)", got, len(rows), want, errs)
	}
	for _, err := range errs {
		checkCode(t, "losing concurrent Create", err, shared.EEXISTS)
	}
	winner := rows[won[0]]
	checkSession(t, "winner's row", mustGet(t, st, winner.Token), winner)
	got := mustList(t, st)
	if len(got) != 1 {
		t.Fatalf("List: %d rows, want 1", len(got))
	}
	checkSession(t, "List[0]", got[0], winner)
}
