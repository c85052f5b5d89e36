package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

// encoder is a reusable JSON encoder with its buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

func writeEnvelope(w http.ResponseWriter, e envelope) {
	enc := encoders.Get().(*encoder)
	defer func() {
		if enc.buf.Cap() <= 64<<10 { // keep large buffers (long lists) out of the pool
			enc.buf.Reset()
			encoders.Put(enc)
		}
	}()
	body := internalErrorBody
	if err := enc.enc.Encode(e); err == nil {
		body = enc.buf.Bytes()
	} else {
		e.Code = http.StatusInternalServerError
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.WriteHeader(e.Code)
	w.Write(body)
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
