package functions

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

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

// check reports, in constant time, whether the request's admintoken header
// matches. An empty header never matches.
func (k adminKey) check(r *http.Request) bool {
	got := r.Header.Get("admintoken")
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], k[:]) == 1 && got != ""
}

// requestToken returns the session token of a request: the `token` header,
// else the `token` query parameter.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("token"); t != "" {
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
