package functions

import (
	"context"
	"strings"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// validEventNames is the list that an unknown Subscribe name's error shows.
var validEventNames = strings.Join(shared.EventNames(), ", ")

func TestWebhookEndpoints(t *testing.T) {
	h := newHarness(t)
	h.init("n1", "tok-1")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	var got struct {
		Webhook   string   `json:"webhook"`
		Subscribe []string `json:"subscribe"`
		SecretSet bool     `json:"secretSet"`
		Format    string   `json:"format"`
	}
	h.data(h.do("GET", "/webhook", "", "token", "tok-1"), &got)
	if got.Webhook != "" || got.SecretSet || len(got.Subscribe) != 0 {
		t.Fatalf("fresh GET /webhook = %+v", got)
	}

	a := h.do("POST", "/webhook", `{"WebhookURL":"https://example.com/in","Secret":"`+secret+`","Events":["Message","CallOffer","receipt"],"Format":"JSON"}`, "token", "tok-1")
	h.data(a, &got)
	if strings.Contains(string(a.Data), secret) || strings.Contains(string(a.Data), "MfKQ9r8") {
		t.Fatalf("the answer shows the secret: %s", a.Data)
	}
	if got.Webhook != "https://example.com/in" || !got.SecretSet || got.Format != "json" ||
		strings.Join(got.Subscribe, ",") != "Message,CallOffer,Receipt" {
		t.Fatalf("POST /webhook = %+v", got)
	}
	row, _ := h.store.Get(t.Context(), "tok-1")
	if row.WebhookSecret != secret {
		t.Fatal("the secret was not stored")
	}
	got = struct {
		Webhook   string   `json:"webhook"`
		Subscribe []string `json:"subscribe"`
		SecretSet bool     `json:"secretSet"`
		Format    string   `json:"format"`
	}{}
	a = h.do("GET", "/webhook", "", "token", "tok-1")
	h.data(a, &got)
	if got.Webhook != "https://example.com/in" || !got.SecretSet || strings.Contains(string(a.Data), "MfKQ9r8") {
		t.Fatalf("GET /webhook = %s", a.Data)
	}

	// wuzapi's PUT: webhook and events (comma-separated); the secret stays.
	h.data(h.do("PUT", "/webhook", `{"webhook":"http://10.0.0.1:8080/x","events":"Message,Presence"}`, "token", "tok-1"), &got)
	if got.Webhook != "http://10.0.0.1:8080/x" || !got.SecretSet || strings.Join(got.Subscribe, ",") != "Message,Presence" {
		t.Fatalf("PUT /webhook = %+v", got)
	}

	for _, tt := range []struct{ body, msg string }{
		{`{"WebhookURL":"ftp://example.com/"}`, "invalid WebhookURL: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"WebhookURL":"example.com/in"}`, "invalid WebhookURL: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"WebhookURL":"https://u:p@example.com/"}`, "invalid WebhookURL: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{"WebhookURL":"https://example.com/` + strings.Repeat("a", 2048) + `"}`, "invalid WebhookURL: use an http:// or https:// URL of at most 2048 bytes, without credentials"},
		{`{}`, "missing WebhookURL: an http:// or https:// URL"},
		{`{"WebhookURL":"https://example.com/","Secret":"plain"}`, "invalid Secret: use whsec_ followed by the base64 of 24 to 64 random bytes"},
		{`{"WebhookURL":"https://example.com/","Format":"xml"}`, "invalid Format: use form or json"},
		{`{"WebhookURL":"https://example.com/","Events":["Bogus"]}`, `invalid event type "Bogus": valid types are ` + validEventNames},
	} {
		h.wantError(h.do("POST", "/webhook", tt.body, "token", "tok-1"), 400, tt.msg)
	}

	h.data(h.do("DELETE", "/webhook", "", "token", "tok-1"), &got)
	if got.Webhook != "" || got.SecretSet {
		t.Fatalf("DELETE /webhook = %+v", got)
	}
	h.wantError(h.do("GET", "/webhook", "", "token", "nope"), 401, "invalid token")
	h.wantError(h.do("GET", "/webhook/failed", ""), 401, "invalid admin token")
}

func TestSubscribeAcceptsWhatsmeowEventNames(t *testing.T) {
	got, err := shared.ParseEvents([]string{"callOffer", "UndecryptableMessage", "Message", "Connected", "GroupInfo", "message"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "CallOffer,UndecryptableMessage,Message,Connected,GroupInfo" {
		t.Fatalf("ParseEvents = %q", got)
	}
	if !shared.SubscribedTo(got, shared.EventCall, "CallOffer") || shared.SubscribedTo(got, shared.EventCall, "CallTerminate") {
		t.Error("CallOffer selects exactly CallOffer")
	}
	if !shared.SubscribedTo([]string{"Receipt"}, shared.EventReadReceipt, "Receipt") {
		t.Error("Receipt selects receipts")
	}
}

func TestWebhookChangesReachTheConnector(t *testing.T) {
	h := newHarness(t)
	h.init("n1", "tok-1")
	var got []shared.WebhookSettings
	connectortest.On(h.conn, shared.OpReloadSession, func(_ context.Context, token string, hs shared.WebhookSettings) (shared.Empty, error) {
		if token == "tok-1" {
			got = append(got, hs)
		}
		return shared.Empty{}, nil
	})
	h.data(h.do("POST", "/webhook", `{"WebhookURL":"https://example.com/in","Events":["Message"]}`, "token", "tok-1"), &struct{}{})
	h.data(h.do("POST", "/session/connect", `{"Subscribe":["Message","Presence"],"Immediate":true}`, "token", "tok-1"), &struct{}{})
	h.data(h.do("DELETE", "/webhook", "", "token", "tok-1"), &struct{}{})
	want := []shared.WebhookSettings{
		{Webhook: "https://example.com/in", Events: []string{"Message"}},
		{Webhook: "https://example.com/in", Events: []string{"Message", "Presence"}},
		{Webhook: "", Events: []string{"Message", "Presence"}},
	}
	if len(got) != len(want) {
		t.Fatalf("reloads %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Webhook != want[i].Webhook || strings.Join(got[i].Events, ",") != strings.Join(want[i].Events, ",") {
			t.Errorf("reload %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// deadLettersFilter is a shared.DeadLetters that records the token filter
// it was asked for (a unit test of the route's parsing).
type deadLettersFilter struct{ token string }

func (d *deadLettersFilter) Failed(_ context.Context, token string, _ int) ([]shared.Delivery, error) {
	d.token = token
	return nil, nil
}

func (d *deadLettersFilter) Replay(context.Context, string, []string) (int, error) { return 0, nil }

// TestFailedFilterByHeader: GET /webhook/failed filters by the token
// header (the dashboard's way: no session token in a URL) or ?token=.
func TestFailedFilterByHeader(t *testing.T) {
	h := newHarness(t)
	dl := &deadLettersFilter{}
	api, err := New(Config{Store: h.store, Connector: h.conn, AdminToken: admin, DeadLetters: dl})
	if err != nil {
		t.Fatal(err)
	}
	h.api = api
	for _, c := range []struct {
		path    string
		headers []string
		want    string
	}{
		{"/webhook/failed", []string{"admintoken", admin, "token", "tok-h"}, "tok-h"},
		{"/webhook/failed?token=tok-q", []string{"admintoken", admin}, "tok-q"},
		{"/webhook/failed", []string{"admintoken", admin}, ""},
	} {
		var got struct{ Count int }
		h.data(h.do("GET", c.path, "", c.headers...), &got)
		if dl.token != c.want {
			t.Errorf("%s %v: filtered by %q, want %q", c.path, c.headers, dl.token, c.want)
		}
	}
}
