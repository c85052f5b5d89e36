package functions

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/wago-gw/wago/shared"
)

// initRequest is the body of /session/init.
type initRequest struct {
	Name  string
	Token string
	Os    string
}

// removeSpaces drops every white-space character: WaGo stores tokens
// "after spaces are removed".
func removeSpaces(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func (a *API) initSession(w http.ResponseWriter, r *http.Request) {
	var req initRequest
	if err := decode(w, r, &req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	row := &shared.Session{Name: strings.TrimSpace(req.Name), Token: removeSpaces(req.Token), Os: strings.TrimSpace(req.Os), Events: []string{}}
	for _, f := range []struct{ name, value string }{{"Name", row.Name}, {"Token", row.Token}, {"Os", row.Os}} {
		if f.value == "" {
			Error(w, r, a.log, shared.Errorf(shared.EINVALID, "missing %s", f.name))
			return
		}
	}
	if err := a.store.Create(r.Context(), row); err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.log.Info("session created", "session", shared.LogID(row.Token))
	OK(w, map[string]string{"details": "user created successfully", "name": row.Name, "token": row.Token, "osName": row.Os})
}

// sessionRow is one row of /session/all and /session/scanned.
type sessionRow struct {
	Name      string `json:"name"`
	Token     string `json:"token"`
	Os        string `json:"os"`
	Webhook   string `json:"webhook"`
	Events    string `json:"events"`
	Jid       string `json:"jid"`
	Connected bool   `json:"connected"`
	LoggedIn  bool   `json:"loggedIn"`
	State     string `json:"state"`
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, keep func(*shared.Session) bool) {
	rows, err := a.store.List(r.Context())
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	kept := make([]*shared.Session, 0, len(rows))
	tokens := make([]string, 0, len(rows))
	for _, row := range rows {
		if keep(row) {
			kept = append(kept, row)
			tokens = append(tokens, row.Token)
		}
	}
	states, err := a.connector.Statuses(r.Context(), tokens)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	out := make([]sessionRow, len(kept))
	for i, row := range kept {
		st := states[i]
		out[i] = sessionRow{
			Name: row.Name, Token: row.Token, Os: row.Os, Webhook: row.Webhook, Events: row.EventsString(),
			Jid: row.JID, Connected: st.Connected, LoggedIn: st.LoggedIn, State: st.State,
		}
	}
	OK(w, out)
}

func (a *API) allSessions(w http.ResponseWriter, r *http.Request) {
	a.listSessions(w, r, func(*shared.Session) bool { return true })
}

func (a *API) scannedSessions(w http.ResponseWriter, r *http.Request) {
	a.listSessions(w, r, func(s *shared.Session) bool { return s.JID != "" })
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	token := requestToken(r)
	if token == "" {
		Error(w, r, a.log, shared.Errorf(shared.EINVALID, "missing token header: the token of the session to delete"))
		return
	}
	row, err := a.store.Get(r.Context(), token)
	if shared.ErrorCode(err) == shared.ENOTFOUND {
		Error(w, r, a.log, shared.Errorf(shared.ENOTFOUND, "session not found"))
		return
	} else if err != nil {
		Error(w, r, a.log, err)
		return
	}
	// The connector deletes the row too, under the token's lock, so that
	// no connect racing the delete can leave a socket behind.
	if _, err := shared.Call(r.Context(), a.connector, shared.OpDelete, token, shared.Empty{}); err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.log.Info("session deleted", "session", shared.LogID(token))
	OK(w, map[string]string{"details": "session deleted", "name": row.Name})
}
