// Command waemu runs the WhatsApp server emulator with a small JSON control API.
//
// It prints the root public key (64 hex characters) as the first line of stdout; set
// WAGO_WHATSAPP_ADDR to the -listen address and WAGO_WHATSAPP_ROOT_KEY to that key.
//
// Control API (on -control):
//
//	POST /scan         {"qr":"...","phone":"optional"}          -> {"jid":"..."}
//	POST /paircode     {"phone":"...","code":"ABCD-EFGH"}        -> {"jid":"..."}
//	POST /remove       {"jid":"..."}                             -> {}
//	GET  /devices                                                -> [{"jid","lid","phone","online","logins"}]
//	GET  /sockets                                                -> {"sockets":N}
//	POST /presence     {"to","from"?,"available":true}           -> {}
//	POST /chatpresence {"to","from"?,"composing":true}           -> {}
//	POST /call         {"to","from"?,"call_id"?}                 -> {"call_id":"..."}
//	POST /text         {"to","text"}                             -> {"id":"..."}
//	POST /media        {"to","kind","data","mimetype"?,"caption"?,"file_name"?,"ptt"?} -> {"id":"..."}
//	POST /markread     {"chat","ids":["..."]}                    -> {}
//	POST /contact/chatpresence {"to","composing","recording"}    -> {}
//	POST /contact/presence     {"available"}                     -> {}
//	POST /picture      {"jid","data"?}                           -> {"id":"..."}
//	GET  /inbox                                                  -> [InboxMessage]
//	GET  /media                                                  -> {"count","bytes","downloads","objects":[MediaObject]}
//	GET  /callrejects                                            -> [{"call_id","from","to","call_creator","time"}]
//	GET  /contact                                                -> {"jid":"..."}
//
// "from" defaults to the built-in contact. /text, /media, /markread and /contact/*
// act as the built-in contact: /media uploads "data" (base64) through the emulator's
// media host and sends it as "kind" (image, video, audio, document or sticker);
// /markread sends a read receipt for messages the contact got from "chat". /picture sets
// (or, without "data", removes) the JPEG profile picture of an account. /inbox lists
// what the contact received: see waemu.InboxMessage for the fields of each "kind"
// (media entries carry the SHA-256 and length of the bytes the contact downloaded).
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wago-gw/wago/connector/waemu"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5222", "emulator (websocket) listen address")
	control := flag.String("control", "127.0.0.1:5223", "JSON control API listen address")
	seedHex := flag.String("root-seed", "", "optional 64-hex-character private seed of the root key (stable public key across runs)")
	verbose := flag.Bool("v", false, "log protocol activity to stderr")
	flag.Parse()
	if err := run(*listen, *control, *seedHex, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "waemu:", err)
		os.Exit(1)
	}
}

func run(listen, control, seedHex string, verbose bool) error {
	cfg := waemu.Config{Addr: listen}
	if seedHex != "" {
		seed, err := hex.DecodeString(seedHex)
		if err != nil || len(seed) != 32 {
			return errors.New("-root-seed must be 64 hex characters")
		}
		cfg.RootKey = (*[32]byte)(seed)
	}
	if verbose {
		cfg.Log = waLog.Stdout("Emu", "DEBUG", false)
	}
	srv, err := waemu.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Println(srv.RootPublicKeyHex())
	fmt.Fprintf(os.Stderr, "waemu: emulator on %s, control API on %s\n", srv.Addr(), control)

	api := &http.Server{Addr: control, Handler: newAPI(srv), ReadHeaderTimeout: 10 * time.Second}
	errCh := make(chan error, 1)
	go func() { errCh <- api.ListenAndServe() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-errCh:
		return fmt.Errorf("control API stopped: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = api.Shutdown(shutdownCtx)
	return nil
}

// request is the union of the control API's JSON bodies.
type request struct {
	QR        string   `json:"qr"`
	Phone     string   `json:"phone"`
	Code      string   `json:"code"`
	JID       string   `json:"jid"`
	To        string   `json:"to"`
	From      string   `json:"from"`
	Available bool     `json:"available"`
	Composing bool     `json:"composing"`
	CallID    string   `json:"call_id"`
	Text      string   `json:"text"`
	Kind      string   `json:"kind"`
	Data      []byte   `json:"data"`
	Mimetype  string   `json:"mimetype"`
	Caption   string   `json:"caption"`
	FileName  string   `json:"file_name"`
	PTT       bool     `json:"ptt"`
	Chat      string   `json:"chat"`
	IDs       []string `json:"ids"`
	Recording bool     `json:"recording"`
}

type deviceJSON struct {
	JID    types.JID `json:"jid"`
	LID    types.JID `json:"lid"`
	Phone  string    `json:"phone"`
	Online bool      `json:"online"`
	Logins int       `json:"logins"`
}

type mediaJSON struct {
	Count     int                 `json:"count"`
	Bytes     int64               `json:"bytes"`
	Downloads int                 `json:"downloads"`
	Objects   []waemu.MediaObject `json:"objects"`
}

// handlerFunc is a control endpoint: it returns the JSON response or an error.
type handlerFunc func(ctx context.Context, req *request) (any, error)

func newAPI(srv *waemu.Server) http.Handler {
	mux := http.NewServeMux()
	post := func(path string, h handlerFunc) { mux.Handle("POST "+path, serve(h)) }
	get := func(path string, h handlerFunc) { mux.Handle("GET "+path, serve(h)) }

	post("/scan", func(ctx context.Context, req *request) (any, error) {
		var jid types.JID
		var err error
		if req.Phone != "" {
			jid, err = srv.ScanQRAs(ctx, req.QR, req.Phone)
		} else {
			jid, err = srv.ScanQR(ctx, req.QR)
		}
		return map[string]any{"jid": jid}, err
	})
	post("/paircode", func(ctx context.Context, req *request) (any, error) {
		jid, err := srv.EnterPairCode(ctx, req.Phone, req.Code)
		return map[string]any{"jid": jid}, err
	})
	post("/remove", func(_ context.Context, req *request) (any, error) {
		jid, err := parseJID(req.JID)
		if err != nil {
			return nil, err
		}
		return struct{}{}, srv.RemoveDevice(jid)
	})
	get("/devices", func(context.Context, *request) (any, error) {
		out := []deviceJSON{}
		for _, d := range srv.Devices() {
			out = append(out, deviceJSON{JID: d.JID, LID: d.LID, Phone: d.Phone, Online: d.Online, Logins: d.Logins})
		}
		return out, nil
	})
	get("/sockets", func(context.Context, *request) (any, error) {
		return map[string]int{"sockets": srv.Sockets()}, nil
	})
	get("/contact", func(context.Context, *request) (any, error) {
		return map[string]any{"jid": srv.Contact()}, nil
	})
	post("/presence", func(_ context.Context, req *request) (any, error) {
		to, from, err := parseToFrom(srv, req)
		if err != nil {
			return nil, err
		}
		return struct{}{}, srv.PushPresence(to, from, req.Available)
	})
	post("/chatpresence", func(_ context.Context, req *request) (any, error) {
		to, from, err := parseToFrom(srv, req)
		if err != nil {
			return nil, err
		}
		return struct{}{}, srv.PushChatPresence(to, from, req.Composing)
	})
	post("/call", func(_ context.Context, req *request) (any, error) {
		to, from, err := parseToFrom(srv, req)
		if err != nil {
			return nil, err
		}
		callID := req.CallID
		if callID == "" {
			callID = "CALL" + strconv.FormatInt(time.Now().UnixNano(), 16)
		}
		return map[string]string{"call_id": callID}, srv.PushCallOffer(to, from, callID)
	})
	post("/text", func(ctx context.Context, req *request) (any, error) {
		to, err := parseJID(req.To)
		if err != nil {
			return nil, err
		}
		id, err := srv.SendTextFromContact(ctx, to, req.Text)
		return map[string]string{"id": id}, err
	})
	post("/media", func(ctx context.Context, req *request) (any, error) {
		to, err := parseJID(req.To)
		if err != nil {
			return nil, err
		}
		switch waemu.InboxKind(req.Kind) {
		case waemu.InboxImage, waemu.InboxVideo, waemu.InboxAudio, waemu.InboxDocument, waemu.InboxSticker:
		default:
			return nil, fmt.Errorf("%w: kind must be image, video, audio, document or sticker", errBadRequest)
		}
		if len(req.Data) == 0 {
			return nil, fmt.Errorf("%w: missing data", errBadRequest)
		}
		id, err := srv.SendMediaFromContact(ctx, to, waemu.ContactMedia{
			Kind: waemu.InboxKind(req.Kind), Data: req.Data, Mimetype: req.Mimetype,
			Caption: req.Caption, FileName: req.FileName, PTT: req.PTT,
		})
		return map[string]string{"id": id}, err
	})
	post("/markread", func(ctx context.Context, req *request) (any, error) {
		chat, err := parseJID(req.Chat)
		if err != nil {
			return nil, err
		}
		if len(req.IDs) == 0 {
			return nil, fmt.Errorf("%w: missing ids", errBadRequest)
		}
		return struct{}{}, srv.MarkReadFromContact(ctx, chat, req.IDs...)
	})
	post("/contact/chatpresence", func(ctx context.Context, req *request) (any, error) {
		to, err := parseJID(req.To)
		if err != nil {
			return nil, err
		}
		return struct{}{}, srv.SendChatPresenceFromContact(ctx, to, req.Composing, req.Recording)
	})
	post("/contact/presence", func(ctx context.Context, req *request) (any, error) {
		return struct{}{}, srv.SendPresenceFromContact(ctx, req.Available)
	})
	post("/picture", func(_ context.Context, req *request) (any, error) {
		jid, err := parseJID(req.JID)
		if err != nil {
			return nil, err
		}
		data := req.Data
		if len(data) == 0 {
			data = nil
		}
		id, err := srv.SetProfilePicture(jid, data)
		return map[string]string{"id": id}, err
	})
	get("/inbox", func(context.Context, *request) (any, error) {
		out := srv.ContactInbox()
		if out == nil {
			out = []waemu.InboxMessage{}
		}
		return out, nil
	})
	get("/media", func(context.Context, *request) (any, error) {
		out := mediaJSON{Objects: srv.MediaObjects()}
		for _, o := range out.Objects {
			out.Count++
			out.Bytes += int64(o.Size)
			out.Downloads += o.Downloads
		}
		return out, nil
	})
	get("/callrejects", func(context.Context, *request) (any, error) {
		out := srv.CallRejects()
		if out == nil {
			out = []waemu.CallReject{}
		}
		return out, nil
	})
	return mux
}

// errBadRequest marks client errors in the control API.
var errBadRequest = errors.New("bad request")

func parseJID(s string) (types.JID, error) {
	if s == "" {
		return types.EmptyJID, fmt.Errorf("%w: missing jid", errBadRequest)
	}
	jid, err := types.ParseJID(s)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return jid, nil
}

func parseToFrom(srv *waemu.Server, req *request) (to, from types.JID, err error) {
	if to, err = parseJID(req.To); err != nil {
		return
	}
	from = srv.Contact()
	if req.From != "" {
		from, err = parseJID(req.From)
	}
	return
}

func serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if r.Method == http.MethodPost && r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body"})
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
		defer cancel()
		resp, err := h(ctx, &req)
		if err != nil {
			writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, waemu.ErrInvalidQR), errors.Is(err, waemu.ErrWrongCode):
		return http.StatusBadRequest
	case errors.Is(err, waemu.ErrUnknownQR), errors.Is(err, waemu.ErrUnknownDevice), errors.Is(err, waemu.ErrNoPendingCode):
		return http.StatusNotFound
	case errors.Is(err, waemu.ErrNotOnline), errors.Is(err, waemu.ErrPairingInProgress), errors.Is(err, waemu.ErrQRMismatch):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
