package functions

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 document of the whole API. The tests check
// every request they send and every answer they get against it
// (functions/openapitest), and that it lists exactly the routes below.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document (YAML). The caller must not modify it.
func OpenAPI() []byte { return openAPIDoc }

// Route is a method and an httprouter path the API serves.
type Route struct{ Method, Path string }

// Routes returns the routes the API registered, in order (not OPTIONS,
// which every path answers).
func (a *API) Routes() []Route { return append([]Route(nil), a.routeList...) }

var yamlContentType = []string{"application/yaml"}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = yamlContentType
	w.Write(openAPIDoc)
}
