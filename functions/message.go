package functions

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wago-gw/wago/shared"
)

// The message routes: /message/{react,edit,delete,markread,presence} and
// their wuzapi names under /chat/. Fields are WaGo's, with wuzapi's names
// accepted too (Phone for Chat, Body for Message, Id for MessageID).

// targetFields name a message: WaGo's Chat and MessageID, or wuzapi's
// Phone and Id (an Id "me:<id>" is one of the device's own messages).
type targetFields struct {
	Chat, Phone   string
	MessageID, Id string
	Participant   string
	IsFromMe      bool
}

// target checks the fields and returns the message they name.
func (f targetFields) target() (shared.MessageRef, error) {
	chatField, chat := "Chat", f.Chat
	if chat == "" {
		chatField, chat = "Phone", f.Phone
	}
	jid, err := shared.ParseRecipient(chatField, chat)
	if err != nil {
		return shared.MessageRef{}, err
	}
	idField, id := "MessageID", f.MessageID
	if id == "" {
		idField, id = "Id", f.Id
	}
	ref := shared.MessageRef{Chat: jid, FromMe: f.IsFromMe}
	if rest, ok := strings.CutPrefix(id, "me:"); ok {
		id, ref.FromMe = rest, true
	}
	if ref.ID, err = shared.ParseMessageID(idField, id); err != nil {
		return ref, err
	}
	if f.Participant != "" {
		if ref.Sender, err = shared.ParseRecipient("Participant", f.Participant); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// answerSend runs a send-like op and answers its result as a send.
func answerSend[Req any](a *API, w http.ResponseWriter, r *http.Request, row *shared.Session, op *shared.Op[Req, shared.SendResult], req Req) {
	res, err := shared.Call(r.Context(), a.connector, op, row.Token, req)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, sendAnswer(res))
}

// answerDone runs an op without a result and answers details.
func answerDone[Req any](a *API, w http.ResponseWriter, r *http.Request, row *shared.Session, op *shared.Op[Req, shared.Empty], req Req, details string) {
	if _, err := shared.Call(r.Context(), a.connector, op, row.Token, req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, map[string]string{"details": details, "Details": details})
}

func (a *API) react(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		targetFields
		Body string
	}
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	target, err := body.target()
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	answerSend(a, w, r, row, shared.OpReact, shared.ReactRequest{Target: target, Emoji: strings.TrimSpace(body.Body)})
}

func (a *API) edit(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		targetFields
		Message, Body string
	}
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	target, err := body.target()
	text := body.Message
	if text == "" {
		text = body.Body
	}
	if err == nil && strings.TrimSpace(text) == "" {
		err = shared.Errorf(shared.EINVALID, "missing Message: the new text")
	}
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	target.FromMe = true // only the device's own messages can be edited
	answerSend(a, w, r, row, shared.OpEdit, shared.EditRequest{Target: target, Text: text})
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body targetFields
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	target, err := body.target()
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	if target.Sender == "" {
		target.FromMe = true // a group admin names the sender to revoke another's message
	}
	answerSend(a, w, r, row, shared.OpRevoke, target)
}

// maxMarkRead bounds the IDs of one /message/markread.
const maxMarkRead = 256

func (a *API) markRead(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		Id     json.RawMessage
		Chat   string
		Sender string
	}
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	req, err := markReadRequest(body.Id, body.Chat, body.Sender)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	answerDone(a, w, r, row, shared.OpMarkRead, req, "Message(s) marked as read")
}

// markReadRequest checks /message/markread: Id is one ID or a list.
func markReadRequest(rawIDs json.RawMessage, chat, sender string) (shared.MarkReadRequest, error) {
	var req shared.MarkReadRequest
	var one string
	if json.Unmarshal(rawIDs, &one) == nil {
		req.IDs = []string{one}
	} else if json.Unmarshal(rawIDs, &req.IDs) != nil {
		return req, shared.Errorf(shared.EINVALID, "missing Id: a message ID or a list of them")
	}
	if len(req.IDs) == 0 || len(req.IDs) > maxMarkRead {
		return req, shared.Errorf(shared.EINVALID, "invalid Id: 1 to %d message IDs", maxMarkRead)
	}
	for _, id := range req.IDs {
		if _, err := shared.ParseMessageID("Id", id); err != nil {
			return req, err
		}
	}
	var err error
	if req.Chat, err = shared.ParseRecipient("Chat", chat); err != nil {
		return req, err
	}
	if sender != "" {
		if req.Sender, err = shared.ParseRecipient("Sender", sender); err != nil {
			return req, err
		}
	}
	return req, nil
}

func (a *API) chatPresence(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var body struct {
		Phone, State, Media string
	}
	if err := decode(w, r, &body); err != nil {
		Error(w, r, a.log, err)
		return
	}
	chat, err := shared.ParseRecipient("Phone", body.Phone)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	state := strings.ToLower(strings.TrimSpace(body.State))
	switch {
	case state == shared.PresenceComposing && strings.EqualFold(body.Media, "audio"):
		state = shared.PresenceRecording
	case state == shared.PresenceComposing, state == shared.PresencePaused, state == shared.PresenceRecording:
	default:
		Error(w, r, a.log, shared.Errorf(shared.EINVALID, "invalid State: composing, paused or recording"))
		return
	}
	answerDone(a, w, r, row, shared.OpChatPresence, shared.ChatPresenceRequest{Chat: chat, State: state}, "Chat presence set")
}
