package functions

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wago-gw/wago/functions/openapitest"
	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
	"github.com/wago-gw/wago/shared/sqlite"
)

const admin = "test-admin-token"

type harness struct {
	t     *testing.T
	api   *API
	store *sqlite.Store
	conn  *connectortest.Fake
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "wago.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	conn := &connectortest.Fake{}
	// A real connect always answers a state (the fake's zero result has
	// none, which the OpenAPI document rightly refuses).
	connectortest.On(conn, shared.OpConnect, func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		return shared.ConnectResult{Status: shared.Status{Connected: true, State: shared.StateQR, HasQR: true}}, nil
	})
	api, err := New(Config{Store: store, Connector: conn, AdminToken: admin})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, api: api, store: store, conn: conn}
}

// answer is a decoded envelope.
type answer struct {
	Status  int
	Header  http.Header     `json:"-"`
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Error   string          `json:"error"`
	Success bool            `json:"success"`
}

// raw sends a request through the real router and checks the exchange
// against the OpenAPI document; headers alternate name, value.
func (h *harness) raw(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	if err := validator(h.t).Check(req, []byte(body), rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		h.t.Error(err)
	}
	return rec
}

// do sends a request through the real router (raw) and decodes its
// envelope.
func (h *harness) do(method, path, body string, headers ...string) answer {
	h.t.Helper()
	rec := h.raw(method, path, body, headers...)
	var a answer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		h.t.Fatalf("%s %s: answer is not a JSON envelope: %q", method, path, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	a.Status, a.Header = rec.Code, rec.Header()
	if a.Code != a.Status {
		h.t.Fatalf("%s %s: envelope code %d but HTTP status %d", method, path, a.Code, a.Status)
	}
	if a.Success != (a.Status == 200) {
		h.t.Fatalf("%s %s: success=%v with status %d", method, path, a.Success, a.Status)
	}
	return a
}

func (h *harness) wantError(a answer, status int, msg string) {
	h.t.Helper()
	if a.Status != status || a.Error != msg {
		h.t.Fatalf("got %d %q, want %d %q", a.Status, a.Error, status, msg)
	}
}

func (h *harness) data(a answer, v any) {
	h.t.Helper()
	if a.Status != 200 {
		h.t.Fatalf("got %d %q, want 200", a.Status, a.Error)
	}
	if err := json.Unmarshal(a.Data, v); err != nil {
		h.t.Fatalf("data %s: %v", a.Data, err)
	}
}

func (h *harness) init(name, token string) {
	h.t.Helper()
	a := h.do("POST", "/session/init", `{"Name":"`+name+`","Token":"`+token+`","Os":"linux"}`, "admintoken", admin)
	if a.Status != 200 {
		h.t.Fatalf("init: %d %s", a.Status, a.Error)
	}
}

func TestNewRefusesEmptyAdminToken(t *testing.T) {
	if _, err := New(Config{AdminToken: ""}); err == nil {
		t.Fatal("New accepted an empty admin token")
	}
}

func TestInit(t *testing.T) {
	h := newHarness(t)
	a := h.do("POST", "/session/init", `{"Name": "customer-1", "Token": " customer token 1 ", "Os": "linux"}`, "Content-Type", "application/json", "admintoken", admin)
	var got map[string]string
	h.data(a, &got)
	want := map[string]string{"details": "user created successfully", "name": "customer-1", "token": "customertoken1", "osName": "linux"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	row, err := h.store.Get(context.Background(), "customertoken1")
	if err != nil || row.Name != "customer-1" || row.Os != "linux" {
		t.Fatalf("stored row %+v, %v", row, err)
	}

	h.wantError(h.do("POST", "/session/init", `{"Name":"customer-1","Token":"other","Os":"linux"}`, "admintoken", admin), 500, "token or name already exists")
	h.wantError(h.do("POST", "/session/init", `{"Name":"other","Token":"customertoken1","Os":"linux"}`, "admintoken", admin), 500, "token or name already exists")
	h.wantError(h.do("POST", "/session/init", `{"Token":"t","Os":"linux"}`, "admintoken", admin), 400, "missing Name")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Os":"linux"}`, "admintoken", admin), 400, "missing Token")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":"   ","Os":"linux"}`, "admintoken", admin), 400, "missing Token")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":"t"}`, "admintoken", admin), 400, "missing Os")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":5,"Os":"x"}`, "admintoken", admin), 400, "invalid JSON body: field Token must be a string")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n",`, "admintoken", admin), 400, "invalid JSON body: unexpected end of JSON")
	h.wantError(h.do("POST", "/session/init", `[1,2]`, "admintoken", admin), 400, "invalid JSON body: expected a JSON object")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":"t","Os":"x"}`, "admintoken", "wrong"), 401, "invalid admin token")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":"t","Os":"x"}`), 401, "invalid admin token")
	h.wantError(h.do("POST", "/session/init", `{"Name":"n","Token":"t","Os":"x"}`, "admintoken", admin+"x"), 401, "invalid admin token")

	big := `{"Name":"n","Token":"t","Os":"` + strings.Repeat("x", maxBody) + `"}`
	h.wantError(h.do("POST", "/session/init", big, "admintoken", admin), 413, "request body too large: the limit is 1048576 bytes")
	if _, err := h.store.Get(context.Background(), "t"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("a refused init stored a row: %v", err)
	}
}

func TestSessionAuth(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	h.wantError(h.do("GET", "/session/status", ""), 401, "invalid token")
	h.wantError(h.do("GET", "/session/status", "", "token", ""), 401, "invalid token")
	h.wantError(h.do("GET", "/session/status", "", "token", "nope"), 401, "invalid token")
	h.wantError(h.do("GET", "/session/status?token=", ""), 401, "invalid token")
	if a := h.do("GET", "/session/status?token=tok1", ""); a.Status != 200 {
		t.Fatalf("query token: %d %s", a.Status, a.Error)
	}
	// The header wins over the query.
	h.wantError(h.do("GET", "/session/status?token=tok1", "", "token", "nope"), 401, "invalid token")
	for _, p := range []string{"/session/connect", "/session/pair", "/session/disconnect", "/session/logout"} {
		h.wantError(h.do("POST", p, "{}", "token", "nope"), 401, "invalid token")
	}
	h.wantError(h.do("GET", "/session/qr", "", "token", "nope"), 401, "invalid token")
	for _, p := range []string{"/session/scanned", "/session/delete"} {
		h.wantError(h.do("POST", p, "", "token", "tok1"), 401, "invalid admin token")
	}
	h.wantError(h.do("GET", "/session/all", "", "admintoken", "tok1"), 401, "invalid admin token")
}

func TestConnect(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	var gotOpts shared.ConnectOptions
	connectortest.On(h.conn, shared.OpConnect, func(_ context.Context, token string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		if token != "tok1" {
			t.Errorf("connect token %q", token)
		}
		gotOpts = opts
		return shared.ConnectResult{Status: shared.Status{State: shared.StateQR, HasQR: true}}, nil
	})
	a := h.do("POST", "/session/connect", `{"Subscribe": ["Message", "readreceipt", "Message"], "Immediate": true, "Phone": ""}`, "token", "tok1")
	var got map[string]any
	h.data(a, &got)
	if got["details"] != "Connected!" || got["events"] != "Message,ReadReceipt" || got["state"] != "qr" {
		t.Fatalf("connect answered %v", got)
	}
	if !gotOpts.Immediate {
		t.Fatal("Immediate not passed on")
	}
	row, _ := h.store.Get(context.Background(), "tok1")
	if row.EventsString() != "Message,ReadReceipt" {
		t.Fatalf("stored events %q", row.EventsString())
	}
	// An empty subscription keeps the stored one.
	h.data(h.do("POST", "/session/connect", ``, "token", "tok1"), &got)
	if got["events"] != "Message,ReadReceipt" {
		t.Fatalf("events after empty connect: %v", got["events"])
	}

	a = h.do("POST", "/session/connect", `{"Subscribe":["Message","Bogus"]}`, "token", "tok1")
	h.wantError(a, 400, `invalid event type "Bogus": valid types are `+strings.Join(shared.EventNames(), ", "))
	h.wantError(h.do("POST", "/session/connect", `{"Subscribe":"All"}`, "token", "tok1"), 400, "invalid JSON body: field Subscribe must be a list of strings")
	h.wantError(h.do("POST", "/session/connect", `{"Immediate":"yes"}`, "token", "tok1"), 400, "invalid JSON body: field Immediate must be a boolean")
	h.wantError(h.do("POST", "/session/connect", `{"Phone":"12ab"}`, "token", "tok1"), 400, "invalid Phone: use the international format, digits only after an optional +, e.g. 5511999999999")

	connectortest.On(h.conn, shared.OpConnect, func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		return shared.ConnectResult{}, shared.Wrap(context.DeadlineExceeded, shared.EUNAVAILABLE, "could not connect to WhatsApp")
	})
	h.wantError(h.do("POST", "/session/connect", `{}`, "token", "tok1"), 503, "could not connect to WhatsApp")
}

func TestPair(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	var phone string
	connectortest.On(h.conn, shared.OpPair, func(_ context.Context, _ string, opts shared.ConnectOptions) (shared.ConnectResult, error) {
		phone = opts.Phone
		return shared.ConnectResult{LinkingCode: "ABCD-EFGH", Status: shared.Status{State: shared.StatePairing}}, nil
	})
	var got map[string]any
	h.data(h.do("POST", "/session/pair", `{"Phone":"+5511999999999"}`, "token", "tok1"), &got)
	if got["LinkingCode"] != "ABCD-EFGH" || phone != "5511999999999" {
		t.Fatalf("pair answered %v for phone %q", got, phone)
	}
	// wuzapi's name for the same route.
	phone = ""
	h.data(h.do("POST", "/session/pairphone", `{"Phone":"5511999999998"}`, "token", "tok1"), &got)
	if got["LinkingCode"] != "ABCD-EFGH" || phone != "5511999999998" {
		t.Fatalf("pairphone answered %v for phone %q", got, phone)
	}
	h.wantError(h.do("POST", "/session/pairphone", `{}`, "token", "tok1"), 400, "missing Phone: use the international format, e.g. 5511999999999")
	h.wantError(h.do("POST", "/session/pairphone", `{"Phone":"5511999999998"}`, "token", "nope"), 401, "invalid token")
	h.wantError(h.do("GET", "/session/pairphone", ""), 405, "method not allowed")
	h.wantError(h.do("POST", "/session/pair", `{}`, "token", "tok1"), 400, "missing Phone: use the international format, e.g. 5511999999999")
	for _, bad := range []string{"0511999999999", "55 11 9999", "+", "123", "55119999999999999", "5511-999999"} {
		h.wantError(h.do("POST", "/session/pair", `{"Phone":"`+bad+`"}`, "token", "tok1"), 400, "invalid Phone: use the international format, digits only after an optional +, e.g. 5511999999999")
	}
	connectortest.On(h.conn, shared.OpPair, func(context.Context, string, shared.ConnectOptions) (shared.ConnectResult, error) {
		return shared.ConnectResult{}, shared.ErrAlreadyLoggedIn
	})
	h.wantError(h.do("POST", "/session/pair", `{"Phone":"5511999999999"}`, "token", "tok1"), 409, "already logged in")
}

func TestQR(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	h.wantError(h.do("GET", "/session/qr", "", "token", "tok1"), 409, "No session")
	h.conn.QRFn = func(context.Context, string) (string, error) { return "2@abc,def,ghi,jkl", nil }
	var got map[string]string
	h.data(h.do("GET", "/session/qr", "", "token", "tok1"), &got)
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(got["QRCode"], prefix) {
		t.Fatalf("QRCode %.40q is not a PNG data URL", got["QRCode"])
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(got["QRCode"], prefix))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("QR image: %v %v", img, err)
	}
	h.conn.QRFn = func(context.Context, string) (string, error) { return "", shared.ErrAlreadyLoggedIn }
	h.wantError(h.do("GET", "/session/qr", "", "token", "tok1"), 409, "already logged in")
	h.conn.QRFn = func(context.Context, string) (string, error) {
		return "", shared.Errorf(shared.ECONFLICT, "no QR code available yet: retry in a moment")
	}
	h.wantError(h.do("GET", "/session/qr", "", "token", "tok1"), 409, "no QR code available yet: retry in a moment")
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	if _, err := h.store.Update(context.Background(), "tok1", shared.SessionUpdate{Events: []string{"All"}, JID: shared.Ptr("123:4@s.whatsapp.net")}); err != nil {
		t.Fatal(err)
	}
	h.conn.StatusFn = func(context.Context, string) (shared.Status, error) {
		return shared.Status{Connected: true, LoggedIn: true, State: shared.StateConnected}, nil
	}
	var got map[string]any
	h.data(h.do("GET", "/session/status", "", "token", "tok1"), &got)
	want := map[string]any{
		"Connected": true, "LoggedIn": true, "Jid": "123:4@s.whatsapp.net", "Events": "All", "state": "connected", "name": "c1",
		// wuzapi's spelling, for its clients.
		"connected": true, "loggedIn": true, "jid": "123:4@s.whatsapp.net", "events": "All",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestDisconnectLogout(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	var got map[string]string
	h.data(h.do("POST", "/session/disconnect", "", "token", "tok1"), &got)
	if got["details"] != "Disconnected" || got["Details"] != "Disconnected" {
		t.Fatalf("disconnect answered %v", got)
	}
	h.data(h.do("POST", "/session/logout", "", "token", "tok1"), &got)
	if got["details"] != "Logged out" || got["Details"] != "Logged out" {
		t.Fatalf("logout answered %v", got)
	}
	connectortest.On(h.conn, shared.OpDisconnect, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return shared.Empty{}, shared.ErrNoSession
	})
	connectortest.On(h.conn, shared.OpLogout, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return shared.Empty{}, shared.ErrNotLoggedIn
	})
	h.wantError(h.do("POST", "/session/disconnect", "", "token", "tok1"), 409, "No session")
	h.wantError(h.do("POST", "/session/logout", "", "token", "tok1"), 409, "not logged in")
}

func TestAllScannedDelete(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	h.init("c2", "tok2")
	if _, err := h.store.Update(context.Background(), "tok2", shared.SessionUpdate{JID: shared.Ptr("55:1@s.whatsapp.net")}); err != nil {
		t.Fatal(err)
	}
	h.conn.StatusFn = func(_ context.Context, token string) (shared.Status, error) {
		if token == "tok2" {
			return shared.Status{Connected: true, LoggedIn: true, State: shared.StateConnected}, nil
		}
		return shared.Status{State: shared.StateDisconnected}, nil
	}
	var all []map[string]any
	h.data(h.do("GET", "/session/all", "", "admintoken", admin), &all)
	if len(all) != 2 || all[0]["name"] != "c1" || all[1]["token"] != "tok2" || all[1]["loggedIn"] != true || all[0]["os"] != "linux" {
		t.Fatalf("all = %v", all)
	}
	var scanned []map[string]any
	h.data(h.do("POST", "/session/scanned", "", "admintoken", admin), &scanned)
	if len(scanned) != 1 || scanned[0]["jid"] != "55:1@s.whatsapp.net" {
		t.Fatalf("scanned = %v", scanned)
	}

	h.wantError(h.do("POST", "/session/delete", "", "admintoken", admin), 400, "missing token header: the token of the session to delete")
	h.wantError(h.do("POST", "/session/delete", "", "admintoken", admin, "token", "nope"), 404, "session not found")
	deleted := ""
	// The connector deletes the row (shared.OpDelete).
	connectortest.On(h.conn, shared.OpDelete, func(ctx context.Context, token string, _ shared.Empty) (shared.Empty, error) {
		deleted = token
		return shared.Empty{}, h.store.Delete(ctx, token)
	})
	var got map[string]string
	h.data(h.do("POST", "/session/delete", "", "admintoken", admin, "token", "tok2"), &got)
	if deleted != "tok2" || got["details"] != "session deleted" {
		t.Fatalf("delete: connector saw %q, answered %v", deleted, got)
	}
	if _, err := h.store.Get(context.Background(), "tok2"); shared.ErrorCode(err) != shared.ENOTFOUND {
		t.Fatalf("row still there: %v", err)
	}
	h.wantError(h.do("GET", "/session/status", "", "token", "tok2"), 401, "invalid token")
	// A failed connector delete keeps the row.
	connectortest.On(h.conn, shared.OpDelete, func(context.Context, string, shared.Empty) (shared.Empty, error) {
		return shared.Empty{}, shared.Errorf(shared.EUNAVAILABLE, "session service unavailable")
	})
	h.wantError(h.do("POST", "/session/delete", "", "admintoken", admin, "token", "tok1"), 503, "session service unavailable")
	if _, err := h.store.Get(context.Background(), "tok1"); err != nil {
		t.Fatalf("row lost after a failed delete: %v", err)
	}
}

func TestEnvelopeForRoutingErrorsAndPanics(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	h.wantError(h.do("GET", "/nope", ""), 404, "not found")
	h.wantError(h.do("GET", "/session/status/", ""), 404, "not found")
	h.wantError(h.do("DELETE", "/session/status", ""), 405, "method not allowed")
	h.wantError(h.do("GET", "/session/connect", ""), 405, "method not allowed")
	h.conn.StatusFn = func(context.Context, string) (shared.Status, error) { panic("boom: secret detail") }
	h.wantError(h.do("GET", "/session/status", "", "token", "tok1"), 500, "internal error")
	h.conn.StatusFn = func(context.Context, string) (shared.Status, error) {
		return shared.Status{}, context.Canceled // an error without a code
	}
	h.wantError(h.do("GET", "/session/status", "", "token", "tok1"), 500, "internal error")
}

func TestAdminKeyIsConstantTimeDigest(t *testing.T) {
	k := newAdminKey("secret")
	for _, tc := range []struct {
		header string
		want   bool
	}{{"secret", true}, {"", false}, {"secre", false}, {"secretx", false}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("admintoken", tc.header)
		if got := k.check(r); got != tc.want {
			t.Errorf("check(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// BenchmarkStatus measures the handler of the hottest route, GET
// /session/status, from routing to the written envelope.
func BenchmarkStatus(b *testing.B) { benchStatus(b, Config{}) }

// benchStatus runs BenchmarkStatus on an API configured by cfg (its store,
// connector and admin token set here).
func benchStatus(b *testing.B, cfg Config) {
	store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "wago.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.Create(context.Background(), &shared.Session{Name: "c1", Token: "tok1", Os: "linux", Events: []string{"Message", "Call"}}); err != nil {
		b.Fatal(err)
	}
	cfg.Store, cfg.Connector, cfg.AdminToken = store, &connectortest.Fake{}, admin
	api, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/session/status", nil)
	req.Header.Set("token", "tok1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

func TestOptionsAnswersAnEnvelope(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ path, allow string }{
		{"/health", "GET, HEAD, OPTIONS"},
		{"/session/status", "GET, OPTIONS"},
		{"/session/init", "OPTIONS, POST"},
		{"/admin/users", "GET, OPTIONS, POST"},
		{"/admin/users/c1", "DELETE, OPTIONS"},
	} {
		a := h.do("OPTIONS", tc.path, "")
		var got map[string]string
		h.data(a, &got)
		if got["allow"] != tc.allow || a.Header.Get("Allow") != tc.allow {
			t.Errorf("OPTIONS %s: data %v, Allow %q, want %q", tc.path, got, a.Header.Get("Allow"), tc.allow)
		}
	}
	h.wantError(h.do("OPTIONS", "/nope", ""), 404, "not found")
	// A 405 names the allowed methods too.
	a := h.do("DELETE", "/session/status", "")
	h.wantError(a, 405, "method not allowed")
	if got := a.Header.Get("Allow"); got != "GET, OPTIONS" {
		t.Fatalf("405 Allow %q", got)
	}
}

func TestHeadHealth(t *testing.T) {
	h := newHarness(t)
	// Through a real server: net/http drops the body of a HEAD answer.
	srv := httptest.NewServer(h.api)
	defer srv.Close()
	client := &http.Client{Transport: &openapitest.Transport{V: validator(t), Base: srv.Client().Transport}}
	req, _ := http.NewRequestWithContext(openapitest.WithT(context.Background(), t), "HEAD", srv.URL+"/health", nil)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || len(body) != 0 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("HEAD /health: %d %q, Content-Type %q", res.StatusCode, body, res.Header.Get("Content-Type"))
	}
	var got map[string]string
	h.data(h.do("GET", "/health", ""), &got)
	if got["status"] != "ok" {
		t.Fatalf("GET /health answered %v", got)
	}
}

func TestInitChecksItsFields(t *testing.T) {
	h := newHarness(t)
	create := func(name, token, os string) answer {
		t.Helper()
		return h.do("POST", "/session/init", `{"Name":"`+name+`","Token":"`+token+`","Os":"`+os+`"}`, "admintoken", admin)
	}
	// The limits count bytes, after the token's spaces are removed.
	for _, ok := range []struct{ name, token, os string }{
		{strings.Repeat("n", 256), strings.Repeat("t", 256), strings.Repeat("o", 64)},
		{"spaces", strings.Repeat("u ", 256), "linux"},
		{"ünïcødé 名前 🙂", "tøken-🙂", "chrome"},
	} {
		if a := create(ok.name, ok.token, ok.os); a.Status != 200 {
			t.Fatalf("init %q: %d %s", ok.token, a.Status, a.Error)
		}
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"Name":"n","Token":"` + strings.Repeat("t", 257) + `","Os":"linux"}`, "invalid Token: at most 256 bytes"},
		{`{"Name":"n","Token":"` + strings.Repeat("t", 1<<19) + `","Os":"linux"}`, "invalid Token: at most 256 bytes"},
		{`{"Name":"n","Token":"` + strings.Repeat("é", 129) + `","Os":"linux"}`, "invalid Token: at most 256 bytes"},
		{`{"Name":"n","Token":"a\u0000b","Os":"linux"}`, "invalid Token: control characters are not allowed"},
		{`{"Name":"n","Token":"a\u007fb","Os":"linux"}`, "invalid Token: control characters are not allowed"},
		{`{"Name":"n","Token":"a\u009bb","Os":"linux"}`, "invalid Token: control characters are not allowed"},
		{"{\"Name\":\"n\",\"Token\":\"a\xffb\",\"Os\":\"linux\"}", "invalid Token: must be valid UTF-8 (U+FFFD is refused too)"},
		{`{"Name":"n","Token":"a\udc00b","Os":"linux"}`, "invalid Token: must be valid UTF-8 (U+FFFD is refused too)"},
		{`{"Name":"n","Token":"a\ufffdb","Os":"linux"}`, "invalid Token: must be valid UTF-8 (U+FFFD is refused too)"},
		{`{"Name":"n","Token":"` + admin + `","Os":"linux"}`, "invalid Token: must not be the admin token"},
		{`{"Name":"n","Token":" test-admin-to\tken ","Os":"linux"}`, "invalid Token: must not be the admin token"},
		{`{"Name":"` + strings.Repeat("n", 257) + `","Token":"t","Os":"linux"}`, "invalid Name: at most 256 bytes"},
		{`{"Name":"a\nb","Token":"t","Os":"linux"}`, "invalid Name: control characters are not allowed"},
		{"{\"Name\":\"\xc3\",\"Token\":\"t\",\"Os\":\"linux\"}", "invalid Name: must be valid UTF-8 (U+FFFD is refused too)"},
		{`{"Name":"n","Token":"t","Os":"` + strings.Repeat("o", 65) + `"}`, "invalid Os: at most 64 bytes"},
		{`{"Name":"n","Token":"t","Os":"li\u0001nux"}`, "invalid Os: control characters are not allowed"},
	} {
		h.wantError(h.do("POST", "/session/init", tc.body, "admintoken", admin), 400, tc.msg)
	}
	rows, err := h.store.List(context.Background())
	if err != nil || len(rows) != 3 {
		t.Fatalf("stored %d rows, want the 3 accepted: %v", len(rows), err)
	}
	// The admin token opens no session door.
	h.wantError(h.do("GET", "/session/status", "", "token", admin), 401, "invalid token")
}
