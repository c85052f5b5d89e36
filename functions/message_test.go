package functions

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// TestMessageRoutesPassTheirRequests: each message, user and call route
// turns its body (WaGo's fields, or wuzapi's at wuzapi's path) into the
// op's request.
func TestMessageRoutesPassTheirRequests(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	var got []any
	record := func(v any) { got = append(got, v) }
	connectortest.On(h.conn, shared.OpReact, func(_ context.Context, _ string, req shared.ReactRequest) (shared.SendResult, error) {
		record(req)
		return shared.SendResult{ID: "R1", Timestamp: 5}, nil
	})
	connectortest.On(h.conn, shared.OpEdit, func(_ context.Context, _ string, req shared.EditRequest) (shared.SendResult, error) {
		record(req)
		return shared.SendResult{ID: "E1"}, nil
	})
	connectortest.On(h.conn, shared.OpRevoke, func(_ context.Context, _ string, req shared.MessageRef) (shared.SendResult, error) {
		record(req)
		return shared.SendResult{ID: "D1"}, nil
	})
	connectortest.On(h.conn, shared.OpMarkRead, func(_ context.Context, _ string, req shared.MarkReadRequest) (shared.Empty, error) {
		record(req)
		return shared.Empty{}, nil
	})
	connectortest.On(h.conn, shared.OpChatPresence, func(_ context.Context, _ string, req shared.ChatPresenceRequest) (shared.Empty, error) {
		record(req)
		return shared.Empty{}, nil
	})
	connectortest.On(h.conn, shared.OpUserCheck, func(_ context.Context, _ string, req []string) ([]shared.UserCheck, error) {
		record(req)
		return []shared.UserCheck{{Query: req[0], IsInWhatsapp: true, JID: req[0] + "@s.whatsapp.net"}}, nil
	})
	connectortest.On(h.conn, shared.OpCallReject, func(_ context.Context, _ string, req shared.CallRejectRequest) (shared.Empty, error) {
		record(req)
		return shared.Empty{}, nil
	})
	const chat = "5511999999999@s.whatsapp.net"
	cases := []struct {
		path, body string
		want       any
	}{
		{"/message/react", `{"Phone":"5511999999999","Body":" 👍 ","Id":"ABC"}`,
			shared.ReactRequest{Target: shared.MessageRef{Chat: chat, ID: "ABC"}, Emoji: "👍"}},
		{"/chat/react", `{"Phone":"5511999999999","Body":"","Id":"me:ABC"}`,
			shared.ReactRequest{Target: shared.MessageRef{Chat: chat, ID: "ABC", FromMe: true}}},
		{"/message/edit", `{"Chat":"5511999999999","Message":"new","MessageID":"ABC"}`,
			shared.EditRequest{Target: shared.MessageRef{Chat: chat, ID: "ABC", FromMe: true}, Text: "new"}},
		{"/chat/send/edit", `{"Phone":"5511999999999","Body":"new","Id":"ABC"}`,
			shared.EditRequest{Target: shared.MessageRef{Chat: chat, ID: "ABC", FromMe: true}, Text: "new"}},
		{"/message/delete", `{"Chat":"5511999999999","MessageID":"ABC"}`,
			shared.MessageRef{Chat: chat, ID: "ABC", FromMe: true}},
		{"/message/markread", `{"Id":"ABC","Chat":"5511999999999"}`,
			shared.MarkReadRequest{Chat: chat, IDs: []string{"ABC"}}},
		{"/chat/markread", `{"Id":["A","B"],"Chat":"120363000000000000@g.us","Sender":"5511999999999"}`,
			shared.MarkReadRequest{Chat: "120363000000000000@g.us", Sender: chat, IDs: []string{"A", "B"}}},
		{"/message/presence", `{"Phone":"5511999999999","State":"composing","Media":"audio"}`,
			shared.ChatPresenceRequest{Chat: chat, State: shared.PresenceRecording}},
		{"/user/check", `{"Phone":["+5511999999999"]}`, []string{"5511999999999"}},
		{"/call/reject", `{"CallFrom":"5511999999999","CallID":"C1"}`, shared.CallRejectRequest{From: chat, CallID: "C1"}},
	}
	for _, c := range cases {
		got = nil
		var data map[string]any
		h.data(h.do("POST", c.path, c.body, "token", "tok1"), &data)
		if len(got) != 1 {
			t.Fatalf("%s: the connector got %v", c.path, got)
		}
		if g, w := toJSON(t, got[0]), toJSON(t, c.want); g != w {
			t.Errorf("%s: the connector got %s, want %s", c.path, g, w)
		}
	}
}

// TestMessageRoutesRefuseBadInput: a 400 naming the field, and no op runs.
func TestMessageRoutesRefuseBadInput(t *testing.T) {
	h := newHarness(t)
	h.init("c1", "tok1")
	for _, c := range []struct{ path, body, want string }{
		{"/message/react", `{"Body":"x","Id":"ABC"}`, "missing Phone: a phone number in international format or a JID"},
		{"/message/react", `{"Phone":"5511999999999","Body":"x"}`, "invalid Id: 1 to 64 letters, digits, '.', '_' or '-'"},
		{"/message/edit", `{"Chat":"5511999999999","MessageID":"ABC"}`, "missing Message: the new text"},
		{"/message/markread", `{"Chat":"5511999999999"}`, "missing Id: a message ID or a list of them"},
		{"/message/markread", `{"Id":[],"Chat":"5511999999999"}`, "invalid Id: 1 to 256 message IDs"},
		{"/message/presence", `{"Phone":"5511999999999","State":"dancing"}`, "invalid State: composing, paused or recording"},
		{"/user/check", `{"Phone":[]}`, "invalid Phone: a list of 1 to 100 phone numbers"},
		{"/user/check", `{"Phone":["120363000000000000@g.us"]}`, "invalid Phone: phone numbers only"},
		{"/user/presence", `{"type":"busy"}`, "invalid type: available or unavailable"},
		{"/call/reject", `{"CallFrom":"5511999999999"}`, "missing CallID"},
		{"/send/location", `{"Phone":"5511999999999","Latitude":91,"Longitude":0}`, "invalid Latitude: must be between -90 and 90"},
		{"/send/location", `{"Phone":"5511999999999","Latitude":1}`, "missing Latitude or Longitude"},
		{"/send/contact", `{"Phone":"5511999999999","Name":"A","Vcard":"hello"}`, "invalid Vcard: must be a vCard (BEGIN:VCARD ... END:VCARD)"},
		{"/send/poll", `{"Phone":"5511999999999","Question":"Q","Options":["a"]}`, "invalid Options: a poll has 2 to 12 options"},
		{"/send/poll", `{"Phone":"5511999999999","Question":"Q","Options":["a","a"]}`, "invalid Options: each option must be non-empty and different"},
		{"/send/poll", `{"Phone":"5511999999999","Question":"Q","Options":["a","b"],"MaxAnswer":3}`, "invalid MaxAnswer: from 0 (any number) to the number of options"},
	} {
		h.wantError(h.do("POST", c.path, c.body, "token", "tok1"), 400, c.want)
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
