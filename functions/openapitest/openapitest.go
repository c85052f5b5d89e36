// Package openapitest checks HTTP exchanges with wago's API against its
// OpenAPI document (functions/openapi.yaml), with kin-openapi, so that the
// document cannot drift from the code: the tests of functions and e2e send
// every request through it. It is test infrastructure: nothing in the
// binary imports it.
//
// An exchange passes when:
//   - its method and path are in the document, or else the API refused it
//     with an error envelope (an unknown route never succeeds);
//   - the request is valid against the document, or else the API refused it
//     (a status of 400 or more): the API accepts nothing the document
//     forbids;
//   - the response's status is one the operation documents, and its body
//     matches that response's schema for its Content-Type.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator checks exchanges against one document.
type Validator struct {
	Doc    *openapi3.T
	router routers.Router
	errEnv *openapi3.Schema
}

// New loads and validates the document and builds its router.
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("openapitest: loading the document: %w", err)
	}
	if err := t.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapitest: the document is not valid: %w", err)
	}
	// Match any host: the tests listen on random ports.
	t.Servers = openapi3.Servers{{URL: "/"}}
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("openapitest: router: %w", err)
	}
	errEnv := t.Components.Schemas["Error"]
	if errEnv == nil || errEnv.Value == nil {
		return nil, errors.New("openapitest: the document has no components.schemas.Error")
	}
	return &Validator{Doc: t, router: r, errEnv: errEnv.Value}, nil
}

// Check validates one exchange: the request as sent (its body in reqBody;
// req.Body is not read) and the response's status, header and body.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	what := req.Method + " " + req.URL.RequestURI()
	// The router matches against the request's URL as the server saw it.
	r := req.Clone(context.Background())
	setBody(r, reqBody)
	if len(reqBody) > 0 && !isJSON(r.Header.Get("Content-Type")) {
		// The API reads every body as JSON, whatever its Content-Type.
		r.Header.Set("Content-Type", "application/json")
	}
	if r.URL.Host == "" {
		r.URL = &url.URL{Scheme: "http", Host: "wago", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	}
	route, params, err := v.router.FindRoute(r)
	if err == nil && len(reqBody) > 0 {
		// The API matches JSON field names in any letter case, as
		// encoding/json does: validate the names as the document spells
		// them.
		setBody(r, canonicalBody(reqBody, route.Operation))
	}
	if err != nil {
		// Not in the document: the API must refuse it, with an envelope.
		if status < 400 {
			return fmt.Errorf("%s: not in the OpenAPI document (%v), yet answered %d %.200s", what, err, status, body)
		}
		if err := v.errorEnvelope(status, header, body); err != nil {
			return fmt.Errorf("%s: not in the OpenAPI document, answered %d: %w", what, status, err)
		}
		return nil
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: present,
			MultiError:         true,
		},
	}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && status < 400 {
		return fmt.Errorf("%s: the OpenAPI document refuses this request, yet the API answered %d:\n%v", what, status, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   req.Method == http.MethodHead,
		},
	}
	in.Options = out.Options
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s: the answer %d disagrees with the OpenAPI document:\n%v\nbody: %.400s", what, status, err, body)
	}
	return nil
}

// CheckWebhook validates a delivery that wago posted to a receiver (req,
// its body in body) against the document's webhook "event".
func (v *Validator) CheckWebhook(req *http.Request, body []byte) error {
	item := v.Doc.Webhooks["event"]
	if item == nil || item.Post == nil {
		return errors.New("openapitest: the document has no webhooks.event.post")
	}
	r := req.Clone(context.Background())
	setBody(r, body)
	in := &openapi3filter.RequestValidationInput{
		Request: r,
		Route:   &routers.Route{Spec: v.Doc, Path: "event", PathItem: item, Method: http.MethodPost, Operation: item.Post},
		Options: &openapi3filter.Options{MultiError: true},
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return fmt.Errorf("webhook delivery %s disagrees with the OpenAPI document:\n%v\nbody: %.400s", req.Header.Get("webhook-id"), err, body)
	}
	return nil
}

// setBody makes body r's body, GetBody included.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
}

// canonicalBody renames the JSON object keys of body that match a property
// of op's request schema only in letter case to the schema's spelling, at
// every depth. A body that is not JSON is returned as is.
func canonicalBody(body []byte, op *openapi3.Operation) []byte {
	if op == nil || op.RequestBody == nil || op.RequestBody.Value == nil {
		return body
	}
	media := op.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		return body
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	out, err := json.Marshal(canonical(v, []*openapi3.Schema{media.Schema.Value}))
	if err != nil {
		return body
	}
	return out
}

// canonical renames v's keys after the properties of schemas (and of their
// allOf, anyOf and oneOf), and recurses into the values.
func canonical(v any, schemas []*openapi3.Schema) any {
	props := map[string][]*openapi3.Schema{}
	var items []*openapi3.Schema
	var walk func(s *openapi3.Schema, depth int)
	walk = func(s *openapi3.Schema, depth int) {
		if s == nil || depth > 8 {
			return
		}
		for name, p := range s.Properties {
			if p != nil {
				props[name] = append(props[name], p.Value)
			}
		}
		if s.Items != nil {
			items = append(items, s.Items.Value)
		}
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range group {
				if sub != nil {
					walk(sub.Value, depth+1)
				}
			}
		}
	}
	for _, s := range schemas {
		walk(s, 0)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			name := k
			if _, exact := props[k]; !exact {
				for p := range props {
					if strings.EqualFold(p, k) {
						name = p
						break
					}
				}
			}
			if _, taken := out[name]; taken && name != k {
				name = k // an exact match elsewhere in the object wins
			}
			out[name] = canonical(val, props[name])
		}
		return out
	case []any:
		for i := range x {
			x[i] = canonical(x[i], items)
		}
	}
	return v
}

// errorEnvelope checks an answer to a request the document does not know.
func (v *Validator) errorEnvelope(status int, header http.Header, body []byte) error {
	if !isJSON(header.Get("Content-Type")) {
		return fmt.Errorf("Content-Type %q, want JSON", header.Get("Content-Type"))
	}
	var env any
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("not JSON: %.200q", body)
	}
	if err := v.errEnv.VisitJSON(env, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("not an error envelope: %v", err)
	}
	if code, _ := env.(map[string]any)["code"].(float64); int(code) != status {
		return fmt.Errorf("envelope code %v, HTTP status %d", code, status)
	}
	return nil
}

// present is the AuthenticationFunc: a credential is there when its header
// or query parameter is not empty. Whether it is right is the API's to say.
func present(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	var val string
	switch s.In {
	case "header":
		val = in.RequestValidationInput.Request.Header.Get(s.Name)
	case "query":
		val = in.RequestValidationInput.Request.URL.Query().Get(s.Name)
	default:
		return fmt.Errorf("unexpected security scheme %q in %q", in.SecuritySchemeName, s.In)
	}
	if val == "" {
		return fmt.Errorf("no %s %s", s.In, s.Name)
	}
	return nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// testKey carries the test that sent a request, in its context.
type testKey struct{}

func init() {
	// Pages are text: the document describes them by their Content-Type.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
}

// WithT returns ctx carrying t: a Transport reports a failed check of a
// request with this context to t.
func WithT(ctx context.Context, t testing.TB) context.Context {
	return context.WithValue(ctx, testKey{}, t)
}

// Transport checks every exchange that goes through it. A failed check is
// reported to the test in the request's context (WithT), else to T, else
// kept in Orphans. The response's body is read whole, and replaced.
type Transport struct {
	V       *Validator
	Base    http.RoundTripper // nil: http.DefaultTransport
	T       testing.TB
	Orphans *Orphans
}

// Orphans keeps the failed checks that no test could be told of.
type Orphans struct {
	mu   sync.Mutex
	list []string
}

// List returns the failed checks kept.
func (o *Orphans) List() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.list...)
}

// RoundTrip implements http.RoundTripper.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.GetBody != nil {
		b, err := req.GetBody()
		if err == nil {
			reqBody, _ = io.ReadAll(b)
			b.Close()
		}
	} else if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	base := tr.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if readErr != nil {
		// A cut answer (the process was killed): the caller sees the error.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{readErr}))
		return resp, nil
	}
	if err := tr.V.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		tr.report(req.Context(), err)
	}
	return resp, nil
}

func (tr *Transport) report(ctx context.Context, err error) {
	t, ok := ctx.Value(testKey{}).(testing.TB)
	if !ok {
		t = tr.T
	}
	if t != nil {
		t.Errorf("OpenAPI: %v", err)
		return
	}
	if tr.Orphans == nil {
		panic("openapitest: a failed check with no test and no Orphans: " + err.Error())
	}
	tr.Orphans.mu.Lock()
	tr.Orphans.list = append(tr.Orphans.list, err.Error())
	tr.Orphans.mu.Unlock()
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Routes returns the document's operations as "METHOD /path" (path
// templates as written), but OPTIONS, which every path has.
func (v *Validator) Routes() []string {
	var out []string
	for path, item := range v.Doc.Paths.Map() {
		for method := range item.Operations() {
			if method != http.MethodOptions {
				out = append(out, method+" "+path)
			}
		}
	}
	return out
}

// PathsWithoutOptions lists the document's paths that do not document
// OPTIONS.
func (v *Validator) PathsWithoutOptions() []string {
	var out []string
	for path, item := range v.Doc.Paths.Map() {
		if item.Options == nil {
			out = append(out, path)
		}
	}
	return out
}

// Template turns an httprouter path (/admin/users/*id, /x/:y) into an
// OpenAPI path template (/admin/users/{id}, /x/{y}).
func Template(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if len(p) > 1 && (p[0] == ':' || p[0] == '*') {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}
