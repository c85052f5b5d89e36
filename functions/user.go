package functions

import (
	"net/http"
	"strings"

	"github.com/wago-gw/wago/shared"
)

// The user and call routes: /user/{check,info,avatar,presence} and
// /call/reject.

// maxUsers bounds the numbers of one /user/check or /user/info.
const maxUsers = 100

// phones checks a list of recipients; with digits, it answers phone
// numbers (digits only), else JIDs.
func phones(field string, list []string, digits bool) ([]string, error) {
	if len(list) == 0 || len(list) > maxUsers {
		return nil, shared.Errorf(shared.EINVALID, "invalid %s: a list of 1 to %d phone numbers", field, maxUsers)
	}
	out := make([]string, len(list))
	for i, p := range list {
		jid, err := shared.ParseRecipient(field, p)
		if err != nil {
			return nil, err
		}
		if digits {
			user, server, _ := strings.Cut(jid, "@")
			if server != "s.whatsapp.net" {
				return nil, shared.Errorf(shared.EINVALID, "invalid %s: phone numbers only", field)
			}
			jid = user
		}
		out[i] = jid
	}
	return out, nil
}

func (a *API) userCheck(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct{ Phone []string }
	err := decode(w, r, &body)
	var list []string
	if err == nil {
		list, err = phones("Phone", body.Phone, true)
	}
	var res []shared.UserCheck
	if err == nil {
		res, err = shared.Call(r.Context(), a.connector, shared.OpUserCheck, row.Token, list)
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, map[string]any{"Users": res})
}

func (a *API) userInfo(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct{ Phone []string }
	err := decode(w, r, &body)
	var list []string
	if err == nil {
		list, err = phones("Phone", body.Phone, false)
	}
	var res []shared.UserInfo
	if err == nil {
		res, err = shared.Call(r.Context(), a.connector, shared.OpUserInfo, row.Token, list)
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	users := make(map[string]shared.UserInfo, len(res))
	for _, u := range res {
		users[u.JID] = u
	}
	OK(w, map[string]any{"Users": users})
}

func (a *API) userAvatar(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		Phone   string
		Preview bool
	}
	err := decode(w, r, &body)
	var jid string
	if err == nil {
		jid, err = shared.ParseRecipient("Phone", body.Phone)
	}
	var res shared.Avatar
	if err == nil {
		res, err = shared.Call(r.Context(), a.connector, shared.OpUserAvatar, row.Token, shared.AvatarRequest{JID: jid, Preview: body.Preview})
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, res)
}

func (a *API) userPresence(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct{ Type string }
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	state := strings.ToLower(strings.TrimSpace(body.Type))
	if state != "available" && state != "unavailable" {
		Error(w, r, a.log, shared.Errorf(shared.EINVALID, "invalid type: available or unavailable"))
		return
	}
	answerDone(a, w, r, row, shared.OpUserPresence, state, "Presence set")
}

func (a *API) callReject(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct{ CallFrom, CallID string }
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	from, err := shared.ParseRecipient("CallFrom", body.CallFrom)
	if err == nil && strings.TrimSpace(body.CallID) == "" {
		err = shared.Errorf(shared.EINVALID, "missing CallID")
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	answerDone(a, w, r, row, shared.OpCallReject, shared.CallRejectRequest{From: from, CallID: strings.TrimSpace(body.CallID)}, "Call rejected")
}
