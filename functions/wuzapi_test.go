package functions

import (
	"context"
	"net/http"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

func TestAdminUsersAuth(t *testing.T) {
	h := newHarness(t)
	for _, hdr := range [][]string{
		{"Authorization", admin},
		{"Authorization", "Bearer " + admin},
		{"Authorization", "bearer  " + admin},
		{"admintoken", admin},
	} {
		if a := h.do("GET", "/admin/users", "", hdr...); a.Status != 200 {
			t.Errorf("%s: %q: %d %s", hdr[0], hdr[1], a.Status, a.Error)
		}
	}
	for _, hdr := range [][]string{
		{},
		{"Authorization", ""},
		{"Authorization", "Bearer"},
		{"Authorization", "Bearer "},
		{"Authorization", "Basic " + admin},
		{"Authorization", admin + "x"},
		{"Authorization", "Bearer " + admin + "x"},
		{"admintoken", "wrong"},
		{"token", admin},
	} {
		for _, req := range []struct{ method, path, body string }{
			{"GET", "/admin/users", ""},
			{"POST", "/admin/users", `{"name":"n","token":"t"}`},
			{"DELETE", "/admin/users/n", ""},
		} {
			h.wantError(h.do(req.method, req.path, req.body, hdr...), 401, "invalid admin token")
		}
	}
	// The WaGo admin routes keep to the admintoken header.
	h.wantError(h.do("GET", "/session/all", "", "Authorization", admin), 401, "invalid admin token")
}

func TestAdminUsersAddListDelete(t *testing.T) {
	h := newHarness(t)
	auth := []string{"Authorization", "Bearer " + admin}
	post := func(body string) answer {
		t.Helper()
		return h.do("POST", "/admin/users", body, auth...)
	}

	var added map[string]string
	h.data(post(`{"name":"shop","token":"shop-token","webhook":"https://example.com/hook","events":"Message, readreceipt","expiration":0}`), &added)
	want := map[string]string{"id": "shop", "name": "shop", "token": "shop-token", "webhook": "https://example.com/hook", "events": "Message,ReadReceipt"}
	for k, v := range want {
		if added[k] != v {
			t.Errorf("add: %s = %q, want %q", k, added[k], v)
		}
	}
	row, err := h.store.Get(context.Background(), "shop-token")
	if err != nil || row.Name != "shop" || row.Webhook != "https://example.com/hook" || row.EventsString() != "Message,ReadReceipt" {
		t.Fatalf("stored %+v, %v", row, err)
	}
	// WaGo's spelling and a list of events work too; spaces leave the token.
	h.data(post(`{"Name":"a/b","Token":"a b","Events":["All"],"Os":"linux"}`), &added)
	if added["id"] != "a/b" || added["token"] != "ab" || added["events"] != "All" || added["os"] != "linux" {
		t.Fatalf("add answered %v", added)
	}
	h.data(post(`{"name":"bare","token":"bare-token"}`), &added)

	// The same rules as /session/init, with wuzapi's field names.
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"token":"t"}`, 400, "missing name"},
		{`{"name":"n"}`, 400, "missing token"},
		{`{"name":"n","token":"` + admin + `"}`, 400, "invalid token: must not be the admin token"},
		{`{"name":"n","token":"a\u0000"}`, 400, "invalid token: control characters are not allowed"},
		{"{\"name\":\"n\xff\",\"token\":\"t\"}", 400, "invalid name: must be valid UTF-8 (U+FFFD is refused too)"},
		{`{"name":"n","token":"t","events":"Message,Bogus"}`, 400, `invalid event type "Bogus": valid types are ` + validEventNames},
		{`{"name":"n","token":"t","events":5}`, 400, "invalid JSON body: field events must be a string"},
		{`{"name":"n","token":"t","webhook":"ftp://example.com"}`, 400, "invalid webhook: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"name":"n","token":"t","webhook":"example.com/hook"}`, 400, "invalid webhook: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"name":"n","token":"t","webhook":"https://u:p@example.com/"}`, 400, "invalid webhook: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"name":"shop","token":"other"}`, 500, "token or name already exists"},
		{`{"name":"other","token":"shop-token"}`, 500, "token or name already exists"},
	} {
		h.wantError(post(tc.body), tc.status, tc.msg)
	}

	h.conn.StatusFn = func(_ context.Context, token string) (shared.Status, error) {
		return shared.Status{Connected: token == "shop-token", LoggedIn: token == "shop-token", State: shared.StateConnected}, nil
	}
	var users []map[string]any
	h.data(h.do("GET", "/admin/users", "", auth...), &users)
	if len(users) != 3 || users[0]["id"] != "shop" || users[0]["name"] != "shop" || users[0]["token"] != "shop-token" ||
		users[0]["connected"] != true || users[0]["loggedIn"] != true || users[0]["events"] != "Message,ReadReceipt" ||
		users[0]["webhook"] != "https://example.com/hook" || users[1]["id"] != "a/b" || users[2]["connected"] != false {
		t.Fatalf("users = %v", users)
	}

	// DELETE goes through the connector's delete, which deletes the row.
	var deleted []string
	connectortest.On(h.conn, shared.OpDelete, func(ctx context.Context, token string, _ shared.Empty) (shared.Empty, error) {
		deleted = append(deleted, token)
		return shared.Empty{}, h.store.Delete(ctx, token)
	})
	var got map[string]string
	h.data(h.do("DELETE", "/admin/users/shop", "", auth...), &got)
	if got["Details"] != "User deleted successfully" || got["details"] != "User deleted successfully" || got["id"] != "shop" {
		t.Fatalf("delete answered %v", got)
	}
	// A name with a slash, escaped or not.
	h.data(h.do("DELETE", "/admin/users/a%2Fb", "", auth...), &got)
	if len(deleted) != 2 || deleted[0] != "shop-token" || deleted[1] != "ab" {
		t.Fatalf("connector deleted %v", deleted)
	}
	for _, token := range []string{"shop-token", "ab"} {
		if _, err := h.store.Get(context.Background(), token); shared.ErrorCode(err) != shared.ENOTFOUND {
			t.Fatalf("row %s still there: %v", token, err)
		}
	}
	h.wantError(h.do("DELETE", "/admin/users/shop", "", auth...), 404, "user not found")
	h.wantError(h.do("DELETE", "/admin/users/bare-token", "", auth...), 404, "user not found") // the id is the name, not the token
	h.wantError(h.do("DELETE", "/admin/users/", "", auth...), 400, "missing id: DELETE /admin/users/{id}, where id is the user's name")

	// A row deleted between the lookup and the connector's delete.
	connectortest.On(h.conn, shared.OpDelete, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return shared.Empty{}, shared.ErrSessionNotFound
	})
	h.wantError(h.do("DELETE", "/admin/users/bare", "", auth...), 404, "user not found")
	// A failed delete keeps the row.
	connectortest.On(h.conn, shared.OpDelete, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return shared.Empty{}, shared.Errorf(shared.EUNAVAILABLE, "session service unavailable")
	})
	h.wantError(h.do("DELETE", "/admin/users/bare", "", auth...), 503, "session service unavailable")
	if _, err := h.store.Get(context.Background(), "bare-token"); err != nil {
		t.Fatalf("row lost after a failed delete: %v", err)
	}

	// Routing errors are envelopes too.
	h.wantError(h.do("PUT", "/admin/users", "", auth...), 405, "method not allowed")
	h.wantError(h.do("GET", "/admin/users/bare", "", auth...), 405, "method not allowed")
	h.wantError(h.do("POST", "/admin/users", `{"name":`, auth...), 400, "invalid JSON body: unexpected end of JSON")
	h.conn.StatusFn = func(context.Context, string) (shared.Status, error) { return shared.Status{}, context.Canceled }
	h.wantError(h.do(http.MethodGet, "/admin/users", "", auth...), 500, "internal error")
}
