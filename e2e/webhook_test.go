package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector/waemu"
)

// hookSecret signs the test receivers' deliveries.
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookRequest is one delivery a test receiver got, decoded from either
// payload format.
type hookRequest struct {
	ID     string // webhook-id
	Form   bool
	Token  string
	Type   string
	State  string
	Event  json.RawMessage
	Header http.Header
	Body   []byte
	// Inlined media (WAGO_WEBHOOK_INLINE_MEDIA).
	Base64, MimeType, FileName string
}

// text returns the text of a Message event.
func (h hookRequest) text() string {
	var m struct {
		Message struct {
			Conversation string `json:"conversation"`
		}
	}
	json.Unmarshal(h.Event, &m)
	return m.Message.Conversation
}

// hookReceiver is a real HTTP receiver: it verifies every delivery with the
// Standard Webhooks library and records it; while down, it answers 503.
type hookReceiver struct {
	t    testing.TB
	srv  *httptest.Server
	wh   *standardwebhooks.Webhook
	down atomic.Bool

	mu       sync.Mutex
	got      []hookRequest // accepted (2xx) deliveries, in arrival order
	attempts map[string]int
}

func newHookReceiver(t testing.TB) *hookReceiver {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, wh: wh, attempts: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.attempts[id]++
	r.mu.Unlock()
	if r.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("delivery %s does not verify: %v", id, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := apiCheck.CheckWebhook(req, body); err != nil {
		r.t.Errorf("OpenAPI: %v", err)
	}
	h := hookRequest{ID: id, Header: req.Header.Clone(), Body: body}
	var p struct {
		Type  string          `json:"type"`
		State string          `json:"state"`
		Event json.RawMessage `json:"event"`
		Token string          `json:"token"`

		Base64   string `json:"base64"`
		MimeType string `json:"mimeType"`
		FileName string `json:"fileName"`
	}
	if req.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			r.t.Errorf("form body: %v", err)
		}
		h.Form, h.Token = true, form.Get("token")
		if err := json.Unmarshal([]byte(form.Get("jsonData")), &p); err != nil {
			r.t.Errorf("jsonData: %v", err)
		}
	} else if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("JSON body: %v", err)
	} else {
		h.Token = p.Token
	}
	h.Type, h.State, h.Event = p.Type, p.State, p.Event
	h.Base64, h.MimeType, h.FileName = p.Base64, p.MimeType, p.FileName
	r.mu.Lock()
	r.got = append(r.got, h)
	r.mu.Unlock()
}

func (r *hookReceiver) received() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.got...)
}

// waitText waits for the Message delivery with text and returns it.
func (r *hookReceiver) waitText(within time.Duration, text string) hookRequest {
	r.t.Helper()
	var found hookRequest
	waitFor(r.t, within, "the webhook of "+text, func() bool {
		for _, h := range r.received() {
			if h.Type == "Message" && h.text() == text {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

// sendFromContact makes the emulator's contact send text to jid.
func sendFromContact(t testing.TB, emu interface {
	SendTextFromContact(context.Context, types.JID, string) (string, error)
}, jid types.JID, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := emu.SendTextFromContact(ctx, jid.ToNonAD(), text); err != nil {
		t.Fatalf("contact send: %v", err)
	}
}

// TestWebhooksEmbedded: through the real binary, a text from the contact
// arrives signed (form, then JSON), an unsubscribed class never arrives,
// and a receiver that is down gets everything once it is up.
func TestWebhooksEmbedded(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	env := append(embeddedEnv(emu, t.TempDir()), "WAGO_WEBHOOK_RETRY_SCHEDULE=100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s")
	p := startWago(t, env)
	const token = "hook-token"
	p.ok(p.call("POST", "/session/init", `{"Name":"hook","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	jid := link(t, p, emu, token)

	var hook map[string]any
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`/in","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), &hook)
	if hook["secretSet"] != true || hook["webhook"] != recv.srv.URL+"/in" {
		t.Fatalf("POST /webhook answered %v", hook)
	}

	// Form (WaGo's default).
	sendFromContact(t, emu, jid, "hello webhook")
	h := recv.waitText(20*time.Second, "hello webhook")
	if !h.Form || h.Token != token || h.Type != "Message" {
		t.Fatalf("form delivery: form %v token ok %v type %q", h.Form, h.Token == token, h.Type)
	}

	// Filtering: typing is ChatPresence, not subscribed. The next message
	// is a barrier: a token's events are first attempted in order.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := emu.SendChatPresenceFromContact(ctx, jid.ToNonAD(), true, false); err != nil {
		t.Fatal(err)
	}
	if err := emu.PushPresence(jid, emu.Contact(), true); err != nil {
		t.Fatal(err)
	}
	sendFromContact(t, emu, jid, "after typing")
	recv.waitText(20*time.Second, "after typing")

	// JSON, per token.
	p.ok(p.call("PUT", "/webhook", `{"Format":"json"}`, "token", token), nil)
	sendFromContact(t, emu, jid, "as json")
	h = recv.waitText(20*time.Second, "as json")
	if h.Form || h.Token != token || h.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON delivery: form %v, token ok %v, Content-Type %q", h.Form, h.Token == token, h.Header.Get("Content-Type"))
	}
	var j map[string]any
	json.Unmarshal(h.Body, &j)
	if j["id"] != h.ID || j["timestamp"] == nil || j["seq"] == nil {
		t.Fatalf("JSON payload lacks id, seq or timestamp: %s", h.Body)
	}

	// Receiver down, then up: everything arrives.
	recv.down.Store(true)
	for _, text := range []string{"down 1", "down 2", "down 3"} {
		sendFromContact(t, emu, jid, text)
	}
	time.Sleep(500 * time.Millisecond)
	recv.down.Store(false)
	for _, text := range []string{"down 1", "down 2", "down 3"} {
		recv.waitText(20*time.Second, text)
	}

	for _, h := range recv.received() {
		if h.Type != "Message" {
			t.Errorf("an unsubscribed %s event arrived", h.Type)
		}
	}
	seen := map[string]bool{}
	for _, h := range recv.received() {
		if seen[h.ID] {
			t.Errorf("webhook-id %s accepted twice", h.ID)
		}
		seen[h.ID] = true
	}

	// Subscribed now, typing and presence arrive (so the filter, not a
	// lack of events, kept them out above), presence with WaGo's state.
	p.ok(p.call("PUT", "/webhook", `{"Events":["Message","ChatPresence","Presence"]}`, "token", token), nil)
	if err := emu.SendChatPresenceFromContact(ctx, jid.ToNonAD(), true, false); err != nil {
		t.Fatal(err)
	}
	if err := emu.PushPresence(jid, emu.Contact(), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ChatPresence and Presence deliveries", func() bool {
		var chat, presence bool
		for _, h := range recv.received() {
			chat = chat || h.Type == "ChatPresence"
			presence = presence || h.Type == "Presence" && h.State == "online"
		}
		return chat && presence
	})
}

// TestWebhooksSurviveKill9: deliveries pending (the receiver is down) when
// the process is killed arrive after the restart, with the webhook-id of
// their first attempts.
func TestWebhooksSurviveKill9(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	dataDir := t.TempDir()
	env := append(embeddedEnv(emu, dataDir), "WAGO_WEBHOOK_RETRY_SCHEDULE=200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms")
	p := startWago(t, env)
	const token = "kill-token"
	p.ok(p.call("POST", "/session/init", `{"Name":"kill","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	jid := link(t, p, emu, token)
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), nil)

	recv.down.Store(true)
	texts := []string{"pending 1", "pending 2", "pending 3"}
	for _, text := range texts {
		sendFromContact(t, emu, jid, text)
	}
	// Every event was attempted at least once (so it was in the outbox).
	before := recv.attempted(len(texts))
	p.kill()

	recv.down.Store(false)
	startWago(t, env)
	recv.waitSameIDs(30*time.Second, texts, before)
}

// attempted waits until at least n events were attempted and returns their
// webhook-ids.
func (r *hookReceiver) attempted(n int) []string {
	r.t.Helper()
	var ids []string
	waitFor(r.t, 20*time.Second, "a first attempt of each event", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		ids = ids[:0]
		for id := range r.attempts {
			ids = append(ids, id)
		}
		return len(ids) >= n
	})
	return ids
}

// waitSameIDs waits for the Message delivery of each of texts and checks
// that it carries one of the webhook-ids attempted before a kill.
func (r *hookReceiver) waitSameIDs(within time.Duration, texts, before []string) {
	r.t.Helper()
	for _, text := range texts {
		h := r.waitText(within, text)
		if !slices.Contains(before, h.ID) {
			r.t.Errorf("%q arrived with webhook-id %s, which no attempt before the kill had", text, h.ID)
		}
	}
}

// redisDBWebhooks is the Redis database of the distributed webhook test.
const redisDBWebhooks = 7

// TestWebhooksDistributed: with the API and a connector apart, a text from
// the contact arrives signed; deliveries pending when the connector is
// killed arrive from the next connector with the same webhook-id; the API
// lists and replays dead letters.
func TestWebhooksDistributed(t *testing.T) {
	e := newDistEnv(t, redisDBWebhooks)
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	schedule := "WAGO_WEBHOOK_RETRY_SCHEDULE=200ms" + strings.Repeat(",200ms", 60)
	api := startDistAPI(t, e)
	keysDir := t.TempDir()
	conn := startConnectorWithEnv(t, e, emu, keysDir, schedule)
	const token = "dist-hook-token"
	distInit(api, "dist-hook", token)
	jid := distLink(t, api, emu, token)
	api.ok(api.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), nil)

	sendFromContact(t, emu, jid, "distributed hello")
	if h := recv.waitText(20*time.Second, "distributed hello"); !h.Form || h.Token != token {
		t.Fatalf("delivery: form %v, token ok %v", h.Form, h.Token == token)
	}
	// The connector recorded the delivery in Redis; the api role lists it.
	h := recv.waitText(time.Second, "distributed hello")
	waitFor(t, 10*time.Second, "the delivery in GET /webhook/recent", func() bool {
		var recent struct {
			Events []struct{ ID, Type, Status string }
		}
		api.ok(api.call("GET", "/webhook/recent", "", "token", token), &recent)
		return len(recent.Events) > 0 && recent.Events[0].ID == h.ID && recent.Events[0].Type == "Message" && recent.Events[0].Status == "delivered"
	})

	// Kill -9 the connector with deliveries pending.
	recv.down.Store(true)
	texts := []string{"dist pending 1", "dist pending 2"}
	for _, text := range texts {
		sendFromContact(t, emu, jid, text)
	}
	before := recv.attempted(1 + len(texts))
	conn.kill()
	recv.down.Store(false)
	startConnectorWithEnv(t, e, emu, keysDir, schedule)
	recv.waitSameIDs(60*time.Second, texts, before)
}

// startConnectorWithEnv is startConnector with extra environment.
func startConnectorWithEnv(tb testing.TB, e distEnv, emu *waemu.Server, dataDir string, extra ...string) *proc {
	tb.Helper()
	env := append(e.distProcEnv(),
		"WAGO_DATA_DIR="+dataDir,
		"WAGO_WHATSMEOW_DB=",
		"WAGO_WHATSAPP_ADDR="+emu.Addr(),
		"WAGO_WHATSAPP_ROOT_KEY="+emu.RootPublicKeyHex(),
	)
	p := spawn(tb, "connector", append(env, extra...), "connector")
	p.waitReady("to log that it runs", func() bool { return strings.Contains(p.logBuf.String(), "connector running") })
	return p
}

// waitType waits for a delivery of type typ that match accepts.
func (r *hookReceiver) waitType(within time.Duration, typ string, match func(hookRequest) bool) hookRequest {
	r.t.Helper()
	var found hookRequest
	waitFor(r.t, within, "a "+typ+" webhook", func() bool {
		for _, h := range r.received() {
			if h.Type == typ && (match == nil || match(h)) {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

// TestWebhookEventKinds: an image is described (download fields, no
// bytes), a read receipt carries WaGo's state, a call offer, a reconnect's
// Connected and a server-side removal's LoggedOut arrive.
func TestWebhookEventKinds(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	p := startWago(t, embeddedEnv(emu, t.TempDir()))
	const token = "kinds-token"
	p.ok(p.call("POST", "/session/init", `{"Name":"kinds","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	jid := link(t, p, emu, token)
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["All"],"Format":"json"}`, "token", token), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An image: described by its download fields, never inlined.
	img := make([]byte, 4096)
	for i := range img {
		img[i] = byte(i * 7)
	}
	if _, err := emu.SendImageFromContact(ctx, jid.ToNonAD(), img, "image/jpeg", "a picture"); err != nil {
		t.Fatal(err)
	}
	h := recv.waitType(20*time.Second, "Message", func(h hookRequest) bool { return strings.Contains(string(h.Event), "imageMessage") })
	var m struct {
		Message struct {
			ImageMessage struct {
				URL, DirectPath, Mimetype, Caption string
				MediaKey, FileEncSHA256            []byte
			} `json:"imageMessage"`
		}
	}
	json.Unmarshal(h.Event, &m)
	im := m.Message.ImageMessage
	if im.DirectPath == "" || len(im.MediaKey) == 0 || len(im.FileEncSHA256) == 0 || im.Mimetype != "image/jpeg" || im.Caption != "a picture" {
		t.Errorf("image described as %s", h.Event)
	}
	if len(h.Body) > 3000 {
		t.Errorf("the image delivery is %d bytes: the image looks inlined", len(h.Body))
	}

	// A read receipt of a message wago sent.
	var sent struct{ Id string }
	p.ok(p.call("POST", "/send/text", `{"Phone":"`+emu.Contact().User+`","Body":"read me"}`, "token", token), &sent)
	if err := emu.MarkReadFromContact(ctx, jid.ToNonAD(), sent.Id); err != nil {
		t.Fatal(err)
	}
	if sent.Id == "" {
		t.Fatal("/send/text answered no id")
	}
	defer func() {
		if t.Failed() {
			for _, h := range recv.received() {
				t.Logf("received %s %s %.300s", h.Type, h.State, h.Event)
			}
		}
	}()
	recv.waitType(20*time.Second, "ReadReceipt", func(h hookRequest) bool {
		return h.State == "Read" && strings.Contains(string(h.Event), sent.Id)
	})

	// A call offer.
	if err := emu.PushCallOffer(jid, emu.Contact(), "CALL-1"); err != nil {
		t.Fatal(err)
	}
	recv.waitType(20*time.Second, "CallOffer", func(h hookRequest) bool { return strings.Contains(string(h.Event), "CALL-1") })

	// A reconnect.
	p.ok(p.call("POST", "/session/disconnect", "", "token", token), nil)
	p.ok(p.call("POST", "/session/connect", `{"Immediate":false}`, "token", token), nil)
	recv.waitType(20*time.Second, "Connected", nil)

	// A server-side removal.
	if err := emu.RemoveDevice(jid); err != nil {
		t.Fatal(err)
	}
	recv.waitType(20*time.Second, "LoggedOut", nil)
}

// TestWebhookInlinesMedia: with WAGO_WEBHOOK_INLINE_MEDIA, a received
// image comes with its decrypted bytes (base64, mimeType), in both payload
// formats; an image above the limit is only described.
func TestWebhookInlinesMedia(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	p := startWago(t, append(embeddedEnv(emu, t.TempDir()), "WAGO_WEBHOOK_INLINE_MEDIA=20000"))
	const token = "inline-token"
	p.ok(p.call("POST", "/session/init", `{"Name":"inline","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	jid := link(t, p, emu, token)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	image := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)*seed + byte(i>>8)
		}
		return b
	}
	for _, format := range []string{"form", "json"} {
		p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"],"Format":"`+format+`"}`, "token", token), nil)
		small := image(12000, 7)
		if _, err := emu.SendImageFromContact(ctx, jid.ToNonAD(), small, "image/jpeg", "small "+format); err != nil {
			t.Fatal(err)
		}
		h := recv.waitType(20*time.Second, "Message", func(h hookRequest) bool { return strings.Contains(string(h.Event), "small "+format) })
		got, err := base64.StdEncoding.DecodeString(h.Base64)
		if err != nil || !bytes.Equal(got, small) {
			t.Errorf("%s: the inlined image is %d bytes (err %v), want the %d bytes sent", format, len(got), err, len(small))
		}
		if h.MimeType != "image/jpeg" {
			t.Errorf("%s: mimeType %q, want image/jpeg", format, h.MimeType)
		}
		if h.Form != (format == "form") {
			t.Errorf("format %s delivered as form=%v", format, h.Form)
		}
	}
	large := image(30000, 11)
	if _, err := emu.SendImageFromContact(ctx, jid.ToNonAD(), large, "image/jpeg", "too large"); err != nil {
		t.Fatal(err)
	}
	h := recv.waitType(20*time.Second, "Message", func(h hookRequest) bool { return strings.Contains(string(h.Event), "too large") })
	if h.Base64 != "" || len(h.Body) > 4000 {
		t.Errorf("an image above WAGO_WEBHOOK_INLINE_MEDIA was inlined (%d bytes of base64, body %d bytes)", len(h.Base64), len(h.Body))
	}
	if !strings.Contains(string(h.Event), "directPath") {
		t.Errorf("the large image is not described: %.300s", h.Event)
	}
}

// TestWebhookDeadLettersAndReplay: an event that fails every attempt is
// listed by GET /webhook/failed (admin) and delivered by POST
// /webhook/replay once the receiver is back; a 410 removes the webhook.
func TestWebhookDeadLettersAndReplay(t *testing.T) {
	emu := startEmulator(t)
	recv := newHookReceiver(t)
	p := startWago(t, append(embeddedEnv(emu, t.TempDir()), "WAGO_WEBHOOK_RETRY_SCHEDULE=50ms,50ms"))
	const token = "dead-token"
	p.ok(p.call("POST", "/session/init", `{"Name":"dead","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
	jid := link(t, p, emu, token)
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), nil)

	recv.down.Store(true)
	sendFromContact(t, emu, jid, "doomed")
	var failed struct {
		Failed []struct {
			ID, Token, Type, LastError string
			Attempts                   int
		}
		Count int
	}
	waitFor(t, 20*time.Second, "a dead letter", func() bool {
		p.ok(p.call("GET", "/webhook/failed?token="+token, "", "admintoken", adminToken), &failed)
		return failed.Count == 1
	})
	f := failed.Failed[0]
	if f.Type != "Message" || f.Attempts != 3 || f.LastError != "receiver answered 503" || f.Token != token {
		t.Fatalf("dead letter %+v", f)
	}
	if a := p.call("GET", "/webhook/failed", "", "token", token); a.Status != 401 {
		t.Fatalf("GET /webhook/failed with a session token: %d", a.Status)
	}
	recv.down.Store(false)
	var replay struct{ Replayed int }
	p.ok(p.call("POST", "/webhook/replay", `{"ids":["`+f.ID+`"]}`, "admintoken", adminToken), &replay)
	if replay.Replayed != 1 {
		t.Fatalf("replayed %d", replay.Replayed)
	}
	if h := recv.waitText(20*time.Second, "doomed"); h.ID != f.ID {
		t.Fatalf("replayed with webhook-id %s, dead letter %s", h.ID, f.ID)
	}
	p.ok(p.call("GET", "/webhook/failed", "", "admintoken", adminToken), &failed)
	if failed.Count != 0 {
		t.Fatalf("%d dead letters after the replay", failed.Count)
	}

	// 410 Gone: the webhook is removed.
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+gone.URL+`"}`, "token", token), nil)
	sendFromContact(t, emu, jid, "to a gone receiver")
	waitFor(t, 20*time.Second, "the webhook to be removed", func() bool {
		var hook map[string]any
		p.ok(p.call("GET", "/webhook", "", "token", token), &hook)
		return hook["webhook"] == ""
	})
}
