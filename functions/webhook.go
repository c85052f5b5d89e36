package functions

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wago-gw/wago/shared"
)

// The webhook routes: a token's receiver, secret, format and subscription
// (POST, PUT, GET and DELETE /webhook), and the admin's dead letters
// (GET /webhook/failed, POST /webhook/replay).

// webhookRequest is the body of POST and PUT /webhook. WaGo sends
// WebhookURL; wuzapi's PUT sends webhook, events and active.
type webhookRequest struct {
	WebhookURL *string
	Webhook    *string `json:"webhook"`
	// Secret: absent keeps the stored one, "" clears it.
	Secret *string
	Events *eventsText
	Format *string
	Active *bool
}

// reloadWait bounds how long a webhook change waits for the connector to
// pick it up; past it the change is stored anyway and applies at the next
// connect.
const reloadWait = 5 * time.Second

// webhookAnswer is the data of the /webhook routes. It never holds the
// secret, only whether one is set.
func webhookAnswer(row *shared.Session) map[string]any {
	events := row.Events
	if events == nil {
		events = []string{}
	}
	format := row.WebhookFormat
	return map[string]any{
		"webhook":   row.Webhook,
		"subscribe": events,
		"secretSet": row.WebhookSecret != "",
		"format":    format,
	}
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	OK(w, webhookAnswer(row))
}

func (a *API) setWebhook(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	u, err := req.update(r.Method == http.MethodPost)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	if row, err = a.store.Update(r.Context(), row.Token, u); err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.reloadSession(r.Context(), row)
	OK(w, webhookAnswer(row))
}

// update checks the request and returns the change it makes; POST needs a
// URL (PUT may change the rest alone).
func (req *webhookRequest) update(needURL bool) (shared.SessionUpdate, error) {
	var u shared.SessionUpdate
	url := req.WebhookURL
	if url == nil {
		url = req.Webhook
	}
	if url != nil {
		v := strings.TrimSpace(*url)
		if err := shared.CheckWebhookURL("WebhookURL", v); err != nil {
			return u, err
		}
		u.Webhook = &v
	}
	if req.Active != nil && !*req.Active {
		u.Webhook = shared.Ptr("")
	}
	if needURL && (u.Webhook == nil || *u.Webhook == "") && (req.Active == nil || *req.Active) {
		return u, shared.Errorf(shared.EINVALID, "missing WebhookURL: an http:// or https:// URL")
	}
	if req.Secret != nil {
		v := strings.Join(strings.Fields(*req.Secret), " ")
		if err := shared.CheckWebhookSecret(v); err != nil {
			return u, err
		}
		u.WebhookSecret = &v
	}
	if req.Format != nil {
		f, err := shared.CheckWebhookFormat(*req.Format)
		if err != nil {
			return u, err
		}
		u.WebhookFormat = &f
	}
	if req.Events != nil {
		events, err := shared.ParseEvents(*req.Events)
		if err != nil {
			return u, err
		}
		u.Events = events
	}
	return u, nil
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	row, err := a.store.Update(r.Context(), row.Token, shared.SessionUpdate{Webhook: shared.Ptr(""), WebhookSecret: shared.Ptr("")})
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	a.reloadSession(r.Context(), row)
	data := webhookAnswer(row)
	data["details"], data["Details"] = "Webhook deleted", "Webhook deleted"
	OK(w, data)
}

// reloadSession tells the connector that row's webhook settings changed.
// The row is already stored, so a connector that cannot be told now reads
// it at the next connect: the failure is logged, not answered.
func (a *API) reloadSession(ctx context.Context, row *shared.Session) {
	ctx, cancel := context.WithTimeout(ctx, reloadWait)
	defer cancel()
	settings := shared.WebhookSettings{Webhook: row.Webhook, Events: row.Events}
	if _, err := shared.Call(ctx, a.connector, shared.OpReloadSession, row.Token, settings); err != nil {
		a.log.Warn("could not tell the connector about new webhook settings", "session", shared.LogID(row.Token), "err", err)
	}
}

// recentWebhooks lists how the token's last events went to its webhook
// (the dashboard's last events): newest first, one record per event, at
// most shared.MaxRecentDeliveries, without the events' data.
func (a *API) recentWebhooks(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	if a.deliveries == nil {
		Error(w, r, a.log, shared.Errorf(shared.EUNAVAILABLE, "webhooks are not delivered by this process"))
		return
	}
	list, err := a.deliveries.Recent(r.Context(), row.Token)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, map[string]any{"events": list, "count": len(list)})
}

// failedLimit bounds the dead letters one GET /webhook/failed lists.
const failedLimit = 1000

// failedWebhooks lists dead letters (admin): the token header (as
// /session/delete names its target) or ?token= filters them by token,
// ?limit= bounds them (at most 1000).
func (a *API) failedWebhooks(w http.ResponseWriter, r *http.Request) {
	if a.deadLetters == nil {
		Error(w, r, a.log, shared.Errorf(shared.EUNAVAILABLE, "webhooks are not delivered by this process"))
		return
	}
	limit := failedLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > failedLimit {
			Error(w, r, a.log, shared.Errorf(shared.EINVALID, "invalid limit: a number from 1 to %d", failedLimit))
			return
		}
		limit = n
	}
	list, err := a.deadLetters.Failed(r.Context(), requestToken(r), limit)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, d := range list {
		out = append(out, map[string]any{
			"id": d.ID, "token": d.Token, "seq": d.Seq, "type": d.Type, "class": d.Class,
			"time": d.Time, "attempts": d.Attempts, "lastError": d.LastError, "event": d.Data,
		})
	}
	OK(w, map[string]any{"failed": out, "count": len(out)})
}

// replayRequest is the body of POST /webhook/replay: the dead letters to
// deliver again, by ID, or all of Token's, or (neither) all of them.
type replayRequest struct {
	IDs   []string `json:"ids"`
	Token string   `json:"token"`
}

func (a *API) replayWebhooks(w http.ResponseWriter, r *http.Request) {
	if a.deadLetters == nil {
		Error(w, r, a.log, shared.Errorf(shared.EUNAVAILABLE, "webhooks are not delivered by this process"))
		return
	}
	var req replayRequest
	if err := decode(w, r, &req); err != nil {
		Error(w, r, a.log, err)
		return
	}
	n, err := a.deadLetters.Replay(r.Context(), req.Token, req.IDs)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, map[string]any{"replayed": n})
}
