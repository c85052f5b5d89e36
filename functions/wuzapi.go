package functions

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/wago-gw/wago/shared"
)

// wuzapi's admin API, /admin/users, for clients written for wuzapi (WaGo's
// ancestor). wuzapi numbers its users; wago's rows have no number, so a
// user's id here is its Name: unique like the token, but not a credential,
// so it can sit in URLs and access logs. GET lists the users with their id,
// POST adds one and answers its id, DELETE /admin/users/{id} deletes the
// user of that name, the way /session/delete does. The answers stay WaGo
// envelopes, errors included; the admin token may come in the admintoken
// header or in Authorization (bare or as "Bearer <token>").

// wuzapiFields are the fields of POST /admin/users.
var wuzapiFields = sessionFields{name: "name", token: "token", os: "os"}

// addUserRequest is the body of POST /admin/users: wuzapi's fields (other
// wuzapi fields, such as expiration or proxyConfig, are ignored) and an
// optional os, which /session/init calls Os.
type addUserRequest struct {
	Name    string     `json:"name"`
	Token   string     `json:"token"`
	Webhook string     `json:"webhook"`
	Events  eventsText `json:"events"`
	Os      string     `json:"os"`
}

// eventsText is a subscription as wuzapi sends it, comma-separated
// ("Message,ReadReceipt"), or as a list of classes like WaGo's Subscribe.
type eventsText []string

// UnmarshalJSON implements json.Unmarshaler.
func (e *eventsText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = strings.Split(s, ",")
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*e = list
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}
}

// userRow is one row of GET /admin/users: wago's session row with wuzapi's
// id.
type userRow struct {
	ID string `json:"id"`
	sessionRow
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	rows, err := a.sessionRows(r.Context(), func(*shared.Session) bool { return true })
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	out := make([]userRow, len(rows.rows))
	for i := range out {
		out[i] = userRow{ID: rows.rows[i].Name, sessionRow: rows.row(i)}
	}
	OK(w, out)
}

func (a *API) addUser(w http.ResponseWriter, r *http.Request) {
	var req addUserRequest
	if err := decode(w, r, &req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	row, err := a.newSession(wuzapiFields, req.Name, req.Token, req.Os, true)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	row.Webhook = strings.TrimSpace(req.Webhook)
	if err := shared.CheckWebhookURL("webhook", row.Webhook); err != nil {
		Error(w, r, a.log, err)
		return
	}
	if row.Events, err = shared.ParseEvents(req.Events); err != nil {
		Error(w, r, a.log, err)
		return
	}
	if err := a.store.Create(r.Context(), row); err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.log.Info("session created", "session", shared.LogID(row.Token))
	OK(w, map[string]string{
		"details": "user created successfully", "id": row.Name, "name": row.Name, "token": row.Token,
		"webhook": row.Webhook, "events": row.EventsString(), "os": row.Os,
	})
}

// errUserNotFound answers a DELETE /admin/users/{id} whose id names no
// user.
var errUserNotFound = shared.Errorf(shared.ENOTFOUND, "user not found")

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	// The route's catch-all keeps a name with a slash deletable.
	id := strings.TrimPrefix(httprouter.ParamsFromContext(r.Context()).ByName("id"), "/")
	if id == "" {
		Error(w, r, a.log, shared.Errorf(shared.EINVALID, "missing id: DELETE /admin/users/{id}, where id is the user's name"))
		return
	}
	rows, err := a.store.List(r.Context())
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	var token string
	for _, row := range rows {
		if row.Name == id {
			token = row.Token
			break
		}
	}
	if token == "" {
		Error(w, r, a.log, errUserNotFound)
		return
	}
	err = a.deleteToken(r.Context(), token)
	if shared.ErrorCode(err) == shared.ENOTFOUND { // deleted meanwhile
		err = errUserNotFound
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.log.Info("session deleted", "session", shared.LogID(token))
	data := details("User deleted successfully")
	data["id"] = id
	OK(w, data)
}
