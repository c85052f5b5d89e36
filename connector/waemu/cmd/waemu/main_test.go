package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wago-gw/wago/connector/waemu"
)

func TestControlAPI(t *testing.T) {
	srv, err := waemu.New(waemu.Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Close()
	api := httptest.NewServer(newAPI(srv))
	defer api.Close()

	for _, tc := range []struct {
		method, path, body string
		want               int
		wantBody           string
	}{
		{"GET", "/devices", "", http.StatusOK, "[]"},
		{"GET", "/sockets", "", http.StatusOK, `{"sockets":0}`},
		{"GET", "/contact", "", http.StatusOK, `{"jid":"15550000000@s.whatsapp.net"}`},
		{"GET", "/inbox", "", http.StatusOK, "[]"},
		{"GET", "/media", "", http.StatusOK, `{"count":0,"bytes":0,"downloads":0,"objects":[]}`},
		{"GET", "/callrejects", "", http.StatusOK, "[]"},
		{"POST", "/media", `{"to":"15550000001@s.whatsapp.net","kind":"text","data":"AAAA"}`, http.StatusBadRequest, ""},
		{"POST", "/media", `{"to":"15550000001@s.whatsapp.net","kind":"image"}`, http.StatusBadRequest, ""},
		{"POST", "/markread", `{"chat":"15550000001@s.whatsapp.net"}`, http.StatusBadRequest, ""},
		{"POST", "/picture", `{"jid":"15550000001@s.whatsapp.net","data":"/9j/"}`, http.StatusOK, ""},
		{"POST", "/picture", `{"jid":"100@lid"}`, http.StatusNotFound, ""},
		{"POST", "/remove", `{"jid":"15550000001:1@s.whatsapp.net"}`, http.StatusNotFound, ""},
		{"POST", "/remove", `{}`, http.StatusBadRequest, ""},
		{"POST", "/scan", `{"qr":"nope"}`, http.StatusBadRequest, ""},
		{"POST", "/scan", `{"qr":"ref,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AA=="}`, http.StatusNotFound, ""},
		{"POST", "/paircode", `{"phone":"15551234567","code":"ABCD-EFGH"}`, http.StatusNotFound, ""},
		{"POST", "/presence", `{"to":"15550000001@s.whatsapp.net","available":true}`, http.StatusConflict, ""},
		{"POST", "/presence", `not json`, http.StatusBadRequest, ""},
	} {
		req, _ := http.NewRequest(tc.method, api.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s = %d %s, want %d", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.want)
		}
		if tc.wantBody != "" && string(body) != tc.wantBody {
			t.Errorf("%s %s body = %s, want %s", tc.method, tc.path, body, tc.wantBody)
		}
	}
}
