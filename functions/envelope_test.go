package functions

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wago-gw/wago/shared"
)

// TestAppendersMatchJSON: the envelopes that appendEnvelope writes without
// reflection are byte for byte those of encoding/json, for every field
// set and unset and for strings that need escaping.
func TestAppendersMatchJSON(t *testing.T) {
	texts := []string{"", "plain", `quo"te`, `back\slash`, "<b>&amp;</b>", "tab\tnew\nline\x00\x1f", "José ☃ 😀",
		"line\u2028sep\u2029", "bad\xffutf8\xc3", "\x7f del", "https://example.com/hook?a=1&b=2"}
	// Each case: the envelope to append, and the one that encoding/json
	// must write the same way (the list as its []sessionRow).
	var cases [][2]envelope
	for i, s := range texts {
		other := texts[(i+3)%len(texts)]
		st := statusAnswer{
			Connected: i%2 == 0, LoggedIn: i%3 == 0, Jid: s, Events: other,
			ConnectedLower: i%2 == 0, LoggedInLower: i%3 == 0, JidLower: s, EventsLower: other,
			Name: other, Webhook: s, State: s, HasQR: i%4 == 0, LastError: texts[(i+1)%len(texts)], Since: texts[(i+2)%len(texts)],
		}
		row := &shared.Session{Name: s, Token: other, Os: s, Webhook: other, Events: []string{s, other, "Message"}[:i%4], JID: other}
		live := shared.Status{Connected: i%2 == 1, LoggedIn: i%3 == 1, State: other, LastError: texts[(i+5)%len(texts)]}
		list := sessionList{rows: []*shared.Session{row, row}, states: []shared.Status{live, {}}}
		cases = append(cases,
			[2]envelope{{Code: 200, Data: st, Success: true}, {Code: 200, Data: st, Success: true}},
			[2]envelope{{Code: 200 + i, Data: list, Success: i%2 == 0}, {Code: 200 + i, Data: []sessionRow{list.row(0), list.row(1)}, Success: i%2 == 0}},
			[2]envelope{{Code: 401, Error: s}, {Code: 401, Error: s}},
		)
	}
	empty := sessionList{rows: []*shared.Session{}, states: []shared.Status{}}
	cases = append(cases,
		[2]envelope{{Code: 200, Data: empty, Success: true}, {Code: 200, Data: []sessionRow{}, Success: true}},
		[2]envelope{{Code: 500}, {Code: 500}})
	for _, c := range cases {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(c[1]); err != nil {
			t.Fatal(err)
		}
		got, ok := appendEnvelope(nil, c[0])
		if !ok {
			t.Fatalf("appendEnvelope refused %#v", c[0])
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendEnvelope:\n got %s\nwant %s", got, want.Bytes())
		}
	}
	// Data of another type is left to encoding/json.
	if _, ok := appendEnvelope(nil, envelope{Code: 200, Data: map[string]string{"a": "b"}}); ok {
		t.Error("appendEnvelope took a map")
	}
}
