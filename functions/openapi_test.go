package functions

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wago-gw/wago/functions/openapitest"
)

// loadValidator loads the embedded document once per test process.
var loadValidator = sync.OnceValues(func() (*openapitest.Validator, error) { return openapitest.New(openAPIDoc) })

// validator returns the document's validator; a document that does not
// load fails the test.
func validator(t testing.TB) *openapitest.Validator {
	t.Helper()
	v, err := loadValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenAPIListsEveryRoute fails when a route the router registers is not
// in the document, or the document has an operation the router does not
// serve, or a path of the document does not document OPTIONS.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	o := newOpsAPI(t) // with /metrics, which the harness's API does not serve
	v := validator(t)
	var served []string
	for _, r := range o.Routes() {
		served = append(served, r.Method+" "+openapitest.Template(r.Path))
	}
	documented := v.Routes()
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
	if len(served) < 60 {
		t.Errorf("only %d routes registered: Routes() misses some", len(served))
	}
	for _, p := range v.PathsWithoutOptions() {
		t.Errorf("%s: OPTIONS is not documented", p)
	}
	if !v.Doc.IsOpenAPI31OrLater() || v.Doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", v.Doc.OpenAPI)
	}
}

// TestOpenAPIServed: GET /openapi.yaml answers the embedded document and
// /docs a page that lists every operation and loads nothing from elsewhere.
func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	rec := h.raw("GET", "/openapi.yaml", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/yaml" || rec.Body.String() != string(openAPIDoc) {
		t.Fatalf("GET /openapi.yaml: %d %q, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	rec = h.raw("GET", "/docs", "")
	page := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /docs: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, r := range h.api.Routes() {
		if !strings.Contains(page, "<code>"+openapitest.Template(r.Path)+"</code>") {
			t.Errorf("/docs does not list %s %s", r.Method, r.Path)
		}
	}
	for _, external := range []string{"<script", "http://", "https://cdn", "@import", "<link"} {
		if external == "http://" {
			// Example URLs in the text are fine; no src= or href= may leave the page.
			for _, attr := range []string{`src="http`, `href="http`, `src="//`, `href="//`} {
				if strings.Contains(page, attr) {
					t.Errorf("/docs loads or links %s", attr)
				}
			}
			continue
		}
		if strings.Contains(page, external) {
			t.Errorf("/docs contains %q", external)
		}
	}
	if !strings.Contains(page, `Hello from wago`) {
		t.Error("/docs does not show the request examples")
	}
	if !strings.Contains(page, "your webhook URL") || !strings.Contains(page, "Wago-Sequence") {
		t.Error("/docs does not describe the webhook deliveries")
	}
}
