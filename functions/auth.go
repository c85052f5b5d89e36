package functions

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/wago-gw/wago/shared"
)

var (
	errInvalidToken      = shared.Errorf(shared.EUNAUTHORIZED, shared.MsgInvalidToken)
	errInvalidAdminToken = shared.Errorf(shared.EUNAUTHORIZED, shared.MsgInvalidAdminToken)
)

// adminKey is the digest of the admin token: comparing digests takes the
// same time whatever the length of the guess.
type adminKey [sha256.Size]byte

func newAdminKey(token string) adminKey { return sha256.Sum256([]byte(token)) }

// matches reports, in constant time, whether v is the admin token. An
// empty v never matches.
func (k adminKey) matches(v string) bool {
	sum := sha256.Sum256([]byte(v))
	return subtle.ConstantTimeCompare(sum[:], k[:]) == 1 && v != ""
}

// check reports, in constant time, whether the request's admintoken header
// matches. An empty header never matches.
func (k adminKey) check(r *http.Request) bool {
	return k.matches(header(r, "Admintoken"))
}

// header is r.Header.Get(key) for a key already in canonical form, as
// net/http (and the Lambda adapter) store them: Get would canonicalise
// the key again, which allocates for names such as "token" on every
// request.
func header(r *http.Request, key string) string {
	if v := r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// checkAuthorization reports whether the request carries the admin token
// the WaGo way (the admintoken header) or the wuzapi way: the Authorization
// header, holding the bare token or "Bearer <token>". The bare value is
// tried too when it starts with "Bearer ", so an admin token that itself
// starts that way still works bare.
func (k adminKey) checkAuthorization(r *http.Request) bool {
	if k.check(r) {
		return true
	}
	auth := r.Header.Get("Authorization")
	if k.matches(auth) {
		return true
	}
	scheme, cred, ok := strings.Cut(auth, " ")
	return ok && strings.EqualFold(scheme, "Bearer") && k.matches(strings.TrimSpace(cred))
}

// requestToken returns the session token of a request: the `token` header,
// else the `token` query parameter.
func requestToken(r *http.Request) string {
	if t := header(r, "Token"); t != "" {
		return t
	}
	if r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get("token")
}

// session authenticates a session request and returns its row.
func (a *API) session(r *http.Request) (*shared.Session, error) {
	token := requestToken(r)
	if token == "" {
		return nil, errInvalidToken
	}
	row, err := a.store.Get(r.Context(), token)
	if shared.ErrorCode(err) == shared.ENOTFOUND {
		return nil, errInvalidToken
	}
	return row, err
}
