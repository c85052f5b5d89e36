// Package functions is wago's stateless HTTP API: the WaGo routes on
// httprouter, the envelope, the mapping of error codes to statuses, and the
// API Gateway entry for AWS Lambda. It keeps nothing between requests: rows
// come from a shared.Store and live state from a shared.Connector.
package functions

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/shared"
)

// Config configures the API.
type Config struct {
	Store     shared.Store
	Connector shared.Connector
	// AdminToken guards the admin routes; it must not be empty.
	AdminToken string
	Log        *slog.Logger
	// DeadLetters serves GET /webhook/failed and POST /webhook/replay;
	// nil: they answer 503.
	DeadLetters shared.DeadLetters
	// Deliveries serves GET /webhook/recent; nil: it answers 503.
	Deliveries shared.DeliveryLog

	// Readiness configures GET /ready; no checks: always ready.
	Readiness Readiness
	// Metrics serves GET /metrics behind the admin token; nil: no /metrics.
	Metrics http.Handler
	// Registerer receives the API's HTTP metrics; nil: none.
	Registerer prometheus.Registerer
}

// API serves the WaGo routes.
type API struct {
	store     shared.Store
	connector shared.Connector
	admin     adminKey
	log       *slog.Logger
	handler   http.Handler
	// routeList is every route registered, for Routes.
	routeList []Route

	readiness  Readiness
	metrics    http.Handler
	registerer prometheus.Registerer

	deadLetters shared.DeadLetters
	deliveries  shared.DeliveryLog
}

// New returns the API's handler. It fails if the admin token is empty.
func New(cfg Config) (*API, error) {
	if cfg.AdminToken == "" {
		return nil, fmt.Errorf("functions: the admin token must not be empty")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{store: cfg.Store, connector: cfg.Connector, admin: newAdminKey(cfg.AdminToken), log: cfg.Log, deadLetters: cfg.DeadLetters, deliveries: cfg.Deliveries,
		readiness: cfg.Readiness, metrics: cfg.Metrics, registerer: cfg.Registerer}
	a.handler = a.routes()
	return a, nil
}

func (a *API) routes() http.Handler {
	r := newRouter(a.log)
	o := newObserver(a.log, newHTTPMetrics(a.registerer))
	handle := func(method, path string, h http.Handler) { r.Handler(method, path, o.handle(method, path, h)) }

	addProbes(r, o, a.log, a.readiness)
	if a.metrics != nil {
		// Behind the admin token: WAGO_METRICS_LISTEN serves it open.
		handle(http.MethodGet, "/metrics", a.adminOnly(a.metrics.ServeHTTP))
	}

	// The OpenAPI document and a page that lists it (openapi.go, docs.go).
	handle(http.MethodGet, "/openapi.yaml", http.HandlerFunc(serveOpenAPI))
	handle(http.MethodGet, "/docs", http.HandlerFunc(a.serveDocs))

	// Admin.
	handle(http.MethodPost, "/session/init", a.adminOnly(a.initSession))
	handle(http.MethodGet, "/session/all", a.adminOnly(a.allSessions))
	handle(http.MethodPost, "/session/scanned", a.adminOnly(a.scannedSessions))
	handle(http.MethodPost, "/session/delete", a.adminOnly(a.deleteSession))

	// Admin, as wuzapi clients call it (wuzapi.go).
	handle(http.MethodGet, "/admin/users", a.adminOrAuthorization(a.listUsers))
	handle(http.MethodPost, "/admin/users", a.adminOrAuthorization(a.addUser))
	handle(http.MethodDelete, "/admin/users/*id", a.adminOrAuthorization(a.deleteUser))

	// Sessions.
	handle(http.MethodPost, "/session/connect", a.withSession(a.connect))
	handle(http.MethodPost, "/session/pair", a.withSession(a.pair))
	handle(http.MethodPost, "/session/pairphone", a.withSession(a.pair)) // wuzapi's name
	handle(http.MethodGet, "/session/qr", a.withSession(a.qr))
	handle(http.MethodGet, "/session/status", a.withSession(a.status))
	handle(http.MethodPost, "/session/disconnect", a.withSession(a.disconnect))
	handle(http.MethodPost, "/session/logout", a.withSession(a.logout))

	// Webhooks (webhook.go); PUT is wuzapi's.
	handle(http.MethodPost, "/webhook", a.withSession(a.setWebhook))
	handle(http.MethodPut, "/webhook", a.withSession(a.setWebhook))
	handle(http.MethodGet, "/webhook", a.withSession(a.getWebhook))
	handle(http.MethodDelete, "/webhook", a.withSession(a.deleteWebhook))
	handle(http.MethodGet, "/webhook/failed", a.adminOnly(a.failedWebhooks))
	handle(http.MethodPost, "/webhook/replay", a.adminOnly(a.replayWebhooks))
	handle(http.MethodGet, "/webhook/recent", a.withSession(a.recentWebhooks))

	// The dashboard (dashboard.go): static files, no token needed.
	for path, f := range dashboardFiles {
		handle(http.MethodGet, path, f)
		handle(http.MethodHead, path, f)
	}

	// Sending, at WaGo's paths and wuzapi's.
	for path, h := range map[string]sessionHandler{
		"text": a.sendText, "location": a.sendLocation, "contact": a.sendContact, "poll": a.sendPoll,
	} {
		handle(http.MethodPost, "/send/"+path, a.withSession(h))
		handle(http.MethodPost, "/chat/send/"+path, a.withSession(h))
	}

	// Media, at WaGo's paths and wuzapi's.
	for kind := range mediaField {
		handle(http.MethodPost, "/send/"+kind, a.withSession(a.sendMedia(kind)))
		handle(http.MethodPost, "/chat/send/"+kind, a.withSession(a.sendMedia(kind)))
		handle(http.MethodPost, "/message/download/"+kind, a.withSession(a.downloadMedia(kind)))
		handle(http.MethodPost, "/chat/download"+kind, a.withSession(a.downloadMedia(kind)))
	}

	// Messages, users and calls; the second path is wuzapi's.
	for path, h := range map[string]sessionHandler{
		"/message/react":    a.react,
		"/message/edit":     a.edit,
		"/message/delete":   a.revoke,
		"/message/markread": a.markRead,
		"/message/presence": a.chatPresence,
		"/chat/react":       a.react,
		"/chat/send/edit":   a.edit,
		"/chat/delete":      a.revoke,
		"/chat/markread":    a.markRead,
		"/chat/presence":    a.chatPresence,
		"/user/check":       a.userCheck,
		"/user/info":        a.userInfo,
		"/user/avatar":      a.userAvatar,
		"/user/presence":    a.userPresence,
		"/call/reject":      a.callReject,
	} {
		handle(http.MethodPost, path, a.withSession(h))
	}
	o.next = r
	a.routeList = o.routes
	return o
}

// answerOptions answers an OPTIONS request on a known path with the methods it
// allows, the same list as the Allow header. There is no CORS: session and
// admin tokens belong in backends, not in browsers.
func answerOptions(w http.ResponseWriter, _ *http.Request) {
	OK(w, map[string]string{"allow": w.Header().Get("Allow")})
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}

// adminOnly guards h with the admin token in the admintoken header.
func (a *API) adminOnly(h http.HandlerFunc) http.Handler {
	return a.guard(a.admin.check, h)
}

// adminOrAuthorization guards h with the admin token in the admintoken
// header or, as wuzapi clients send it, in the Authorization header.
func (a *API) adminOrAuthorization(h http.HandlerFunc) http.Handler {
	return a.guard(a.admin.checkAuthorization, h)
}

// guard runs h when check accepts the request's admin credentials, and
// answers "invalid admin token" otherwise.
func (a *API) guard(check func(*http.Request) bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !check(r) {
			Error(w, r, a.log, errInvalidAdminToken)
			return
		}
		h(w, r)
	})
}

// sessionHandler serves a request authenticated by a session token.
type sessionHandler func(w http.ResponseWriter, r *http.Request, row *shared.Session)

// withSession authenticates the session token and passes its row to h.
func (a *API) withSession(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		row, err := a.session(r)
		if err != nil {
			Error(w, r, a.log, err)
			return
		}
		h(w, r, row)
	})
}

// newRouter returns a router that answers every fault in the envelope: 404,
// 405, a panic (logged with its request id and route, never the path, which
// may hold a name or a token), and OPTIONS.
func newRouter(log *slog.Logger) *httprouter.Router {
	r := httprouter.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeEnvelope(w, envelope{Code: http.StatusNotFound, Error: "not found"})
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeEnvelope(w, envelope{Code: http.StatusMethodNotAllowed, Error: "method not allowed"})
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		log.Error("panic serving request", "method", req.Method, "route", routeOf(w), "request_id", requestID(w), "panic", v, "stack", string(debug.Stack()))
		writeEnvelope(w, envelope{Code: http.StatusInternalServerError, Error: "internal error"})
	}
	// OPTIONS on a known path answers its methods, in the Allow header
	// (set by httprouter) and in the envelope; on an unknown path, the 404.
	r.HandleOPTIONS = true
	r.GlobalOPTIONS = http.HandlerFunc(answerOptions)
	return r
}
