package functions

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wago-gw/wago/shared"
)

// initRequest is the body of /session/init.
type initRequest struct {
	Name  string
	Token string
	Os    string
}

// Limits of the text fields of a new session, in bytes of UTF-8. A token
// travels in a header of every request; names and OS labels are shown in
// lists.
const (
	maxTokenBytes = 256
	maxNameBytes  = 256
	maxOsBytes    = 64
)

// sessionFields names the body fields of a route that creates sessions, as
// its error messages call them.
type sessionFields struct{ name, token, os string }

// initFields are the fields of /session/init.
var initFields = sessionFields{name: "Name", token: "Token", os: "Os"}

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

// checkText checks a text field of a new session: at most max bytes, valid
// UTF-8, no control characters.
//
// encoding/json replaces invalid UTF-8 bytes, and \u escapes of lone UTF-16
// surrogates, with U+FFFD while it decodes, so a decoded value cannot tell
// them from a U+FFFD that the client really sent. No real token, name or
// OS label contains the replacement character, so checkText refuses U+FFFD
// itself: that refuses every invalid input honestly (nothing is silently
// rewritten and stored), at the cost of a literal U+FFFD, and says so in
// the message.
func checkText(field, v string, max int) error {
	switch {
	case len(v) > max:
		return shared.Errorf(shared.EINVALID, "invalid %s: at most %d bytes", field, max)
	case !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError):
		return shared.Errorf(shared.EINVALID, "invalid %s: must be valid UTF-8 (U+FFFD is refused too)", field)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return shared.Errorf(shared.EINVALID, "invalid %s: control characters are not allowed", field)
	}
	return nil
}

// newSession checks the fields of a session to create, as a route named by
// f received them, and returns the row to store: the token without its
// spaces, the name and OS label trimmed. Every field is required but the OS
// label when osOptional. The admin token is refused as a session token:
// it would then open both doors.
func (a *API) newSession(f sessionFields, name, token, os string, osOptional bool) (*shared.Session, error) {
	row := &shared.Session{Name: strings.TrimSpace(name), Token: removeSpaces(token), Os: strings.TrimSpace(os), Events: []string{}}
	for _, c := range []struct {
		field, value string
		max          int
		required     bool
	}{
		{f.name, row.Name, maxNameBytes, true},
		{f.token, row.Token, maxTokenBytes, true},
		{f.os, row.Os, maxOsBytes, !osOptional},
	} {
		if c.value == "" && c.required {
			return nil, shared.Errorf(shared.EINVALID, "missing %s", c.field)
		}
		if err := checkText(c.field, c.value, c.max); err != nil {
			return nil, err
		}
	}
	if a.admin.matches(row.Token) {
		return nil, shared.Errorf(shared.EINVALID, "invalid %s: must not be the admin token", f.token)
	}
	return row, nil
}

func (a *API) initSession(w http.ResponseWriter, r *http.Request) {
	var req initRequest
	if err := decode(w, r, &req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	row, err := a.newSession(initFields, req.Name, req.Token, req.Os, false)
	if err != nil {
		Error(w, r, a.log, err)
		return
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
	LastError string `json:"lastError,omitempty"`
}

// sessionList is the data of /session/all and /session/scanned: rows and
// their live states, in the same order, encoded one sessionRow at a time
// (without a slice of them).
type sessionList struct {
	rows   []*shared.Session
	states []shared.Status
}

// row returns the i-th sessionRow.
func (l sessionList) row(i int) sessionRow {
	row, st := l.rows[i], l.states[i]
	return sessionRow{
		Name: row.Name, Token: row.Token, Os: row.Os, Webhook: row.Webhook, Events: row.EventsString(),
		Jid: row.JID, Connected: st.Connected, LoggedIn: st.LoggedIn, State: st.State, LastError: st.LastError,
	}
}

// appendJSON implements jsonAppender: a JSON array of sessionRow.
func (l sessionList) appendJSON(b []byte) []byte {
	b = slices.Grow(b, 160*len(l.rows))
	b = append(b, '[')
	for i, row := range l.rows {
		if i > 0 {
			b = append(b, ',')
		}
		st := l.states[i]
		b = appendField(b, `{"name":`, row.Name)
		b = appendField(b, `,"token":`, row.Token)
		b = appendField(b, `,"os":`, row.Os)
		b = appendField(b, `,"webhook":`, row.Webhook)
		b = appendJoined(b, `,"events":`, row.Events)
		b = appendField(b, `,"jid":`, row.JID)
		b = appendBool(b, `,"connected":`, st.Connected)
		b = appendBool(b, `,"loggedIn":`, st.LoggedIn)
		b = appendField(b, `,"state":`, st.State)
		if st.LastError != "" {
			b = appendField(b, `,"lastError":`, st.LastError)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// sessionRows returns the rows that keep accepts, oldest first, with their
// live state.
func (a *API) sessionRows(ctx context.Context, keep func(*shared.Session) bool) (sessionList, error) {
	rows, err := a.store.List(ctx)
	if err != nil {
		return sessionList{}, err
	}
	kept := rows[:0] // List's slice is the caller's
	tokens := make([]string, 0, len(rows))
	for _, row := range rows {
		if keep(row) {
			kept = append(kept, row)
			tokens = append(tokens, row.Token)
		}
	}
	states, err := a.connector.Statuses(ctx, tokens)
	if err != nil {
		return sessionList{}, err
	}
	return sessionList{rows: kept, states: states}, nil
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, keep func(*shared.Session) bool) {
	rows, err := a.sessionRows(r.Context(), keep)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, rows)
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
	if err := a.deleteToken(r.Context(), token); err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.log.Info("session deleted", "session", shared.LogID(token))
	OK(w, map[string]string{"details": "session deleted", "name": row.Name})
}

// deleteToken deletes a session through the connector, which deletes the
// row itself under the token's lock, so that no connect racing the delete
// can leave a socket behind. The store's Delete that follows finds no row:
// it only drops the row from this process's cache (the api role's), so that
// the token stops working here at once.
func (a *API) deleteToken(ctx context.Context, token string) error {
	if _, err := shared.Call(ctx, a.connector, shared.OpDelete, token, shared.Empty{}); err != nil {
		return err
	}
	if err := a.store.Delete(ctx, token); err != nil && shared.ErrorCode(err) != shared.ENOTFOUND {
		a.log.Warn("could not drop a deleted session from the cache", "session", shared.LogID(token), "err", err)
	}
	return nil
}
