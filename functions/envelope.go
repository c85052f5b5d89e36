package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/wago-gw/wago/shared"
)

// envelope is WaGo's answer: {"code","data","success"} on success,
// {"code","error","success"} on failure. The HTTP status equals code.
type envelope struct {
	Code    int    `json:"code"`
	Data    any    `json:"data,omitempty"`
	Error   string `json:"error,omitempty"`
	Success bool   `json:"success"`
}

// maxBody is the largest request body accepted, but on the media routes.
const maxBody = 1 << 20

// maxMediaBody is the largest body of a media route: a 64 MiB file in
// base64 (about 85.4 MiB) and the other fields.
const maxMediaBody = 90 << 20

// Header values shared by every answer (net/http never modifies them), so
// that the hot path does not allocate them per request.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	// internalErrorBody answers when an envelope cannot be encoded.
	internalErrorBody = []byte(`{"code":500,"error":"internal error","success":false}` + "\n")
)

// jsonAppender is data that writes its own JSON, byte for byte what
// encoding/json would write for it, without reflection: the answers of the
// hot routes (GET /session/status, /session/all). TestAppendersMatchJSON
// holds each to encoding/json's output.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// encoder is a reusable JSON encoder with its buffers: b for the envelopes
// that appendEnvelope writes, buf for those that go through encoding/json.
type encoder struct {
	b   []byte
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// maxPooledBuffer bounds the buffers kept for reuse: a list of 1,000
// sessions (about 150 KiB) reuses its buffer, a longer one allocates.
const maxPooledBuffer = 512 << 10

// chunkingSize is the body size from which net/http would answer in
// chunks unless the handler sets Content-Length (its
// bufferBeforeChunkingSize); below it, net/http sets it itself.
const chunkingSize = 2048

func writeEnvelope(w http.ResponseWriter, e envelope) {
	enc := encoders.Get().(*encoder)
	defer func() {
		if enc.buf.Cap() <= maxPooledBuffer && cap(enc.b) <= maxPooledBuffer {
			enc.buf.Reset()
			encoders.Put(enc)
		}
	}()
	body, ok := appendEnvelope(enc.b[:0], e)
	if ok {
		enc.b = body
	} else if err := enc.enc.Encode(e); err == nil {
		body = enc.buf.Bytes()
	} else {
		body, e.Code = internalErrorBody, http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	if len(body) >= chunkingSize {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(e.Code)
	w.Write(body)
}

// appendEnvelope appends e as encoding/json's Encoder writes it (with the
// newline), if its data is nil or a jsonAppender; ok is false otherwise.
func appendEnvelope(b []byte, e envelope) (_ []byte, ok bool) {
	var data jsonAppender
	if e.Data != nil {
		if data, ok = e.Data.(jsonAppender); !ok {
			return b, false
		}
	}
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	if data != nil {
		b = append(b, `,"data":`...)
		b = data.appendJSON(b)
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	b = append(b, `,"success":`...)
	b = strconv.AppendBool(b, e.Success)
	return append(b, "}\n"...), true
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it (HTML characters escaped): printable ASCII other than " \ < > & is
// copied, anything else is left to encoding/json.
func appendString(b []byte, s string) []byte {
	if !plain(s) {
		q, _ := json.Marshal(s) // a string always encodes
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether encoding/json writes s as it is between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJoined appends name and the JSON string of strings.Join(list, ","),
// without building the joined string when every item is plain.
func appendJoined(b []byte, name string, list []string) []byte {
	for _, s := range list {
		if !plain(s) {
			return appendField(b, name, strings.Join(list, ","))
		}
	}
	b = append(b, name...)
	b = append(b, '"')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return append(b, '"')
}

// appendField appends ,"name": (or "name": first) and v as a JSON string.
func appendField(b []byte, name, v string) []byte {
	b = append(b, name...)
	return appendString(b, v)
}

// appendBool appends name (the `,"field":` prefix) and v.
func appendBool(b []byte, name string, v bool) []byte {
	b = append(b, name...)
	return strconv.AppendBool(b, v)
}

// OK answers a success envelope with data.
func OK(w http.ResponseWriter, data any) {
	writeEnvelope(w, envelope{Code: http.StatusOK, Data: data, Success: true})
}

// Error answers the error envelope for err: the status from its code, the
// client-safe message, and the full error in the log for server faults.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, shared.ErrSessionNotFound) {
		// The token was deleted after this request was authenticated: the
		// same answer as for a token that never existed.
		err = errInvalidToken
	}
	code := shared.ErrorCode(err)
	status := statusFor(code)
	if status >= 500 && code != shared.EEXISTS {
		log.Error("request failed", "method", r.Method, "route", routeOf(w), "request_id", requestID(w), "err", err)
	}
	writeEnvelope(w, envelope{Code: status, Error: shared.ErrorMessage(err)})
}

// statusFor maps an error code to an HTTP status.
func statusFor(code string) int {
	switch code {
	case shared.EINVALID:
		return http.StatusBadRequest
	case shared.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case shared.ENOTFOUND:
		return http.StatusNotFound
	case shared.ECONFLICT:
		return http.StatusConflict
	case shared.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case shared.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case shared.ETIMEOUT:
		return http.StatusGatewayTimeout
	default: // EINTERNAL, and EEXISTS, which WaGo answers with 500
		return http.StatusInternalServerError
	}
}

// decode reads a JSON request body into v. An empty body leaves v as is.
// It answers EINVALID for malformed JSON or a field of the wrong type, and
// ETOOLARGE for a body over maxBody.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeMax(w, r, v, maxBody)
}

// decodeMax is decode with a body limit of limit bytes.
func decodeMax(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return shared.Errorf(shared.ETOOLARGE, "request body too large: the limit is %d bytes", limit)
	} else if err != nil {
		return shared.Wrap(err, shared.EINVALID, "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return shared.Errorf(shared.EINVALID, "invalid JSON body: field %s must be %s", typeErr.Field, jsonKind(typeErr.Type.String()))
		}
		return shared.Errorf(shared.EINVALID, "invalid JSON body: %s", syntaxMessage(err))
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "a list of " + strings.TrimPrefix(goType, "[]") + "s"
	case strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "int"):
		return "a number"
	}
	return "of another type"
}

func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end") {
		return "unexpected end of JSON"
	} else if se != nil {
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	}
	return "expected a JSON object"
}
