package functions

import (
	"embed"
	"net/http"
	"path"
	"strconv"
)

// The dashboard: a page, a style sheet and a script embedded in the binary
// and served at /dashboard by every role that serves the API. It is plain
// HTML, CSS and JavaScript that calls the JSON API with the token the user
// signs in with (kept in sessionStorage, sent only in headers), so it has
// no route, state or permission of its own: what it shows is what the API
// answers that token.

//go:embed dashboard/index.html dashboard/app.js dashboard/app.css
var dashboardFS embed.FS

// dashboardCSP allows the page only its own script, style and API: no
// inline script or style, no other origin, no framing; QR codes are data:
// images.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardFiles maps the dashboard's paths to their handlers.
var dashboardFiles = map[string]http.Handler{
	"/dashboard":         dashboardFile("index.html", "text/html; charset=utf-8"),
	"/dashboard/app.js":  dashboardFile("app.js", "text/javascript; charset=utf-8"),
	"/dashboard/app.css": dashboardFile("app.css", "text/css; charset=utf-8"),
}

// dashboardFile serves one embedded file with the dashboard's security
// headers. The files are read at start: a missing one is a build error.
func dashboardFile(name, contentType string) http.Handler {
	body, err := dashboardFS.ReadFile(path.Join("dashboard", name))
	if err != nil {
		panic(err)
	}
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Length", length)
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}
