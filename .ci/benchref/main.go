// Command benchref is the reference server of `make bench` (.ci/bench): about
// the least a Go server can do for wago's hot routes, on net/http as wago
// is. GET /session/status looks the token header up in a map and writes a
// fixed status envelope (a 401 envelope for an unknown token); GET
// /session/all encodes ROWS rows with encoding/json. The benchmark runs it
// alternately with wago and prints wago / reference, which means more on a
// shared, noisy machine than absolute figures do.
//
// Usage: benchref ADDR ROWS ADMINTOKEN (tokens are bench-token-1..ROWS).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
)

type row struct {
	Name      string `json:"name"`
	Token     string `json:"token"`
	Os        string `json:"os"`
	Webhook   string `json:"webhook"`
	Events    string `json:"events"`
	Jid       string `json:"jid"`
	Connected bool   `json:"connected"`
	LoggedIn  bool   `json:"loggedIn"`
	State     string `json:"state"`
}

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: benchref ADDR ROWS ADMINTOKEN")
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	admin := os.Args[3]
	names := make(map[string]string, n)
	rows := make([]row, n)
	for i := range rows {
		tok := fmt.Sprintf("bench-token-%d", i+1)
		names[tok] = fmt.Sprintf("bench-%d", i+1)
		rows[i] = row{Name: names[tok], Token: tok, Os: "linux", State: "disconnected"}
	}
	status := []byte(`{"code":200,"data":{"Connected":false,"LoggedIn":false,"Jid":"","Events":"","connected":false,"loggedIn":false,"jid":"","events":"","name":"bench-500","webhook":"","state":"disconnected","hasQR":false},"success":true}` + "\n")
	denied := []byte(`{"code":401,"error":"invalid token","success":false}` + "\n")
	write := func(w http.ResponseWriter, code int, body []byte) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		w.Write(body)
	}
	http.HandleFunc("GET /session/status", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := names[header(r, "Token")]; !ok {
			write(w, http.StatusUnauthorized, denied)
			return
		}
		write(w, http.StatusOK, status)
	})
	http.HandleFunc("GET /session/all", func(w http.ResponseWriter, r *http.Request) {
		if header(r, "Admintoken") != admin {
			write(w, http.StatusUnauthorized, denied)
			return
		}
		body, err := json.Marshal(map[string]any{"code": 200, "data": rows, "success": true})
		if err != nil {
			write(w, http.StatusInternalServerError, denied)
			return
		}
		write(w, http.StatusOK, body)
	})
	http.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { write(w, http.StatusOK, status) })
	log.Fatal(http.ListenAndServe(os.Args[1], nil))
}

// header is r.Header.Get(key) for a canonical key, without Get's
// canonicalisation (which allocates for "token"), as wago reads it.
func header(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
