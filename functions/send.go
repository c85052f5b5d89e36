package functions

import (
	"net/http"
	"strings"

	"github.com/wago-gw/wago/shared"
)

// The send routes: /send/{text,location,contact,poll,...} and their wuzapi
// names /chat/send/*. Each checks its body, sets the message ID (the
// client's Id, or a fresh one, so that a retry or a redelivery sends the
// same message) and calls shared.OpSend.

// contextInfoRequest quotes or mentions: WaGo's and wuzapi's ContextInfo.
type contextInfoRequest struct {
	StanzaID     string
	Participant  string
	MentionedJID []string
}

// sendFields are the fields every send body has.
type sendFields struct {
	Phone       string
	Id          string
	ContextInfo *contextInfoRequest
}

// request checks the common fields and returns the SendRequest to fill.
func (f sendFields) request(kind string) (shared.SendRequest, error) {
	to, err := shared.ParseRecipient("Phone", f.Phone)
	if err != nil {
		return shared.SendRequest{}, err
	}
	req := shared.SendRequest{To: to, Kind: kind, ID: shared.NewMessageID()}
	if f.Id != "" {
		if req.ID, err = shared.ParseMessageID("Id", f.Id); err != nil {
			return req, err
		}
		req.IDFromClient = true
	}
	if ci := f.ContextInfo; ci != nil {
		if ci.StanzaID != "" {
			id, err := shared.ParseMessageID("ContextInfo.StanzaId", ci.StanzaID)
			if err != nil {
				return req, err
			}
			req.Reply = &shared.Reply{ID: id}
			if ci.Participant != "" {
				if req.Reply.Participant, err = shared.ParseRecipient("ContextInfo.Participant", ci.Participant); err != nil {
					return req, err
				}
			}
		}
		for _, m := range ci.MentionedJID {
			jid, err := shared.ParseRecipient("ContextInfo.MentionedJID", m)
			if err != nil {
				return req, err
			}
			req.Mentions = append(req.Mentions, jid)
		}
	}
	return req, nil
}

// sendAnswer is the data of every send: WaGo's lower-case fields and
// wuzapi's capitalised ones.
func sendAnswer(res shared.SendResult) map[string]any {
	return map[string]any{
		"details": "Sent", "id": res.ID, "timestamp": res.Timestamp,
		"Details": "Sent", "Id": res.ID, "Timestamp": res.Timestamp,
	}
}

// send runs OpSend for the request's token and answers.
func (a *API) send(w http.ResponseWriter, r *http.Request, row *shared.Session, req shared.SendRequest) {
	res, err := shared.Call(r.Context(), a.connector, shared.OpSend, row.Token, req)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, sendAnswer(res))
}

func (a *API) sendText(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		sendFields
		Body string
	}
	req, err := parseSend(w, r, &body, &body.sendFields, shared.KindText)
	if err == nil && strings.TrimSpace(body.Body) == "" {
		err = shared.Errorf(shared.EINVALID, "missing Body")
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	req.Text = body.Body
	a.send(w, r, row, req)
}

func (a *API) sendLocation(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		sendFields
		Latitude, Longitude *float64
		Name                string
	}
	req, err := parseSend(w, r, &body, &body.sendFields, shared.KindLocation)
	switch {
	case err != nil:
	case body.Latitude == nil || body.Longitude == nil:
		err = shared.Errorf(shared.EINVALID, "missing Latitude or Longitude")
	case *body.Latitude < -90 || *body.Latitude > 90:
		err = shared.Errorf(shared.EINVALID, "invalid Latitude: must be between -90 and 90")
	case *body.Longitude < -180 || *body.Longitude > 180:
		err = shared.Errorf(shared.EINVALID, "invalid Longitude: must be between -180 and 180")
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	req.Location = &shared.Location{Latitude: *body.Latitude, Longitude: *body.Longitude, Name: body.Name}
	a.send(w, r, row, req)
}

func (a *API) sendContact(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		sendFields
		Name  string
		Vcard string
	}
	req, err := parseSend(w, r, &body, &body.sendFields, shared.KindContact)
	switch {
	case err != nil:
	case strings.TrimSpace(body.Name) == "":
		err = shared.Errorf(shared.EINVALID, "missing Name")
	case !strings.HasPrefix(strings.TrimSpace(strings.ToUpper(body.Vcard)), "BEGIN:VCARD"):
		err = shared.Errorf(shared.EINVALID, "invalid Vcard: must be a vCard (BEGIN:VCARD ... END:VCARD)")
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	req.Contact = &shared.ContactCard{Name: strings.TrimSpace(body.Name), Vcard: body.Vcard}
	a.send(w, r, row, req)
}

// maxPollOptions is WhatsApp's limit on the options of a poll.
const maxPollOptions = 12

func (a *API) sendPoll(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		sendFields
		Question  string
		Options   []string
		MaxAnswer int
	}
	req, err := parseSend(w, r, &body, &body.sendFields, shared.KindPoll)
	if err == nil {
		err = checkPoll(body.Question, body.Options, body.MaxAnswer)
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	req.Poll = &shared.Poll{Question: strings.TrimSpace(body.Question), Options: body.Options, MaxAnswer: body.MaxAnswer}
	a.send(w, r, row, req)
}

// checkPoll checks a poll: a question, 2 to 12 distinct non-empty options,
// and MaxAnswer from 0 (any number) to the number of options.
func checkPoll(question string, options []string, maxAnswer int) error {
	switch {
	case strings.TrimSpace(question) == "":
		return shared.Errorf(shared.EINVALID, "missing Question")
	case len(options) < 2 || len(options) > maxPollOptions:
		return shared.Errorf(shared.EINVALID, "invalid Options: a poll has 2 to %d options", maxPollOptions)
	case maxAnswer < 0 || maxAnswer > len(options):
		return shared.Errorf(shared.EINVALID, "invalid MaxAnswer: from 0 (any number) to the number of options")
	}
	seen := make(map[string]bool, len(options))
	for _, o := range options {
		if strings.TrimSpace(o) == "" || seen[o] {
			return shared.Errorf(shared.EINVALID, "invalid Options: each option must be non-empty and different")
		}
		seen[o] = true
	}
	return nil
}

// parseSend decodes a send body into body and checks its common fields.
func parseSend(w http.ResponseWriter, r *http.Request, body any, f *sendFields, kind string) (shared.SendRequest, error) {
	if err := decode(w, r, body); err != nil {
		return shared.SendRequest{}, err
	}
	return f.request(kind)
}
