package functions

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/skip2/go-qrcode"

	"github.com/wago-gw/wago/shared"
)

// connectRequest is the body of /session/connect and /session/pair.
type connectRequest struct {
	Subscribe []string
	Immediate bool
	Phone     string
}

// parseConnect reads and checks a connect or pair body, and stores a new
// subscription before the connector is called.
func (a *API) parseConnect(w http.ResponseWriter, r *http.Request, row *shared.Session, needPhone bool) (*shared.Session, shared.ConnectOptions, error) {
	var req connectRequest
	if err := decode(w, r, &req); err != nil {
		return nil, shared.ConnectOptions{}, err
	}
	opts := shared.ConnectOptions{Immediate: req.Immediate, Phone: strings.TrimSpace(req.Phone)}
	if opts.Phone == "" && needPhone {
		return nil, opts, shared.Errorf(shared.EINVALID, "missing Phone: use the international format, e.g. 5511999999999")
	}
	if opts.Phone != "" {
		if !shared.IsPhone(opts.Phone) {
			return nil, opts, shared.Errorf(shared.EINVALID, "invalid Phone: use the international format, digits only after an optional +, e.g. 5511999999999")
		}
		opts.Phone = strings.TrimPrefix(opts.Phone, "+")
	}
	events, err := shared.ParseEvents(req.Subscribe)
	if err != nil {
		return nil, opts, err
	}
	if len(events) > 0 && strings.Join(events, ",") != row.EventsString() {
		if row, err = a.store.Update(r.Context(), row.Token, shared.SessionUpdate{Events: events}); err != nil {
			return nil, opts, err
		}
		a.reloadSession(r.Context(), row)
	}
	return row, opts, nil
}

// connectAnswer is the data of connect and pair.
func connectAnswer(row *shared.Session, res shared.ConnectResult) map[string]any {
	out := map[string]any{
		"details":   "Connected!",
		"events":    row.EventsString(),
		"jid":       sessionJID(row, res.Status),
		"webhook":   row.Webhook,
		"connected": res.Status.Connected,
		"loggedIn":  res.Status.LoggedIn,
		"state":     res.Status.State,
	}
	if res.LinkingCode != "" {
		out["LinkingCode"] = res.LinkingCode
	}
	if res.Status.LastError != "" {
		out["lastError"] = res.Status.LastError
	}
	return out
}

func (a *API) connect(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	row, opts, err := a.parseConnect(w, r, row, false)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	res, err := shared.Call(r.Context(), a.connector, shared.OpConnect, row.Token, opts)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, connectAnswer(row, res))
}

func (a *API) pair(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	row, opts, err := a.parseConnect(w, r, row, true)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	res, err := shared.Call(r.Context(), a.connector, shared.OpPair, row.Token, opts)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	data := connectAnswer(row, res)
	data["details"] = "Enter the code in WhatsApp: Linked devices > Link with phone number"
	OK(w, data)
}

// statusAnswer is the data of /session/status: WaGo's fields, wuzapi's
// lowercase spelling of the same four (wuzapi clients read those), and
// wago's own.
type statusAnswer struct {
	Connected bool   `json:"Connected"`
	LoggedIn  bool   `json:"LoggedIn"`
	Jid       string `json:"Jid"`
	Events    string `json:"Events"`
	// The same values, as wuzapi spells them.
	ConnectedLower bool   `json:"connected"`
	LoggedInLower  bool   `json:"loggedIn"`
	JidLower       string `json:"jid"`
	EventsLower    string `json:"events"`

	Name      string `json:"name"`
	Webhook   string `json:"webhook"`
	State     string `json:"state"`
	HasQR     bool   `json:"hasQR"`
	LastError string `json:"lastError,omitempty"`
	Since     string `json:"since,omitempty"`
}

// appendJSON implements jsonAppender.
func (s statusAnswer) appendJSON(b []byte) []byte {
	b = appendBool(b, `{"Connected":`, s.Connected)
	b = appendBool(b, `,"LoggedIn":`, s.LoggedIn)
	b = appendField(b, `,"Jid":`, s.Jid)
	b = appendField(b, `,"Events":`, s.Events)
	b = appendBool(b, `,"connected":`, s.ConnectedLower)
	b = appendBool(b, `,"loggedIn":`, s.LoggedInLower)
	b = appendField(b, `,"jid":`, s.JidLower)
	b = appendField(b, `,"events":`, s.EventsLower)
	b = appendField(b, `,"name":`, s.Name)
	b = appendField(b, `,"webhook":`, s.Webhook)
	b = appendField(b, `,"state":`, s.State)
	b = appendBool(b, `,"hasQR":`, s.HasQR)
	if s.LastError != "" {
		b = appendField(b, `,"lastError":`, s.LastError)
	}
	if s.Since != "" {
		b = appendField(b, `,"since":`, s.Since)
	}
	return append(b, '}')
}

func (a *API) status(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	st, err := a.connector.Status(r.Context(), row.Token)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, newStatusAnswer(row, st))
}

// sessionJID is the JID to show: the live one, else the stored one (a
// linked device whose client is not running), but none once logged out,
// where the row read may predate the logout.
func sessionJID(row *shared.Session, st shared.Status) string {
	if st.JID != "" || st.State == shared.StateLoggedOut {
		return st.JID
	}
	return row.JID
}

func newStatusAnswer(row *shared.Session, st shared.Status) statusAnswer {
	jid, events := sessionJID(row, st), row.EventsString()
	out := statusAnswer{
		Connected: st.Connected, LoggedIn: st.LoggedIn, Jid: jid, Events: events,
		ConnectedLower: st.Connected, LoggedInLower: st.LoggedIn, JidLower: jid, EventsLower: events,
		Name: row.Name, Webhook: row.Webhook, State: st.State, HasQR: st.HasQR, LastError: st.LastError,
	}
	if !st.Since.IsZero() {
		out.Since = st.Since.Format("2006-01-02T15:04:05Z07:00")
	}
	return out
}

func (a *API) qr(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	code, err := a.connector.QR(r.Context(), row.Token)
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	png, err := renderQR(code)
	if err != nil {
		Error(w, r, a.log, shared.Wrap(err, shared.EINTERNAL, "could not render the QR code"))
		return
	}
	OK(w, map[string]string{"QRCode": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
}

func (a *API) disconnect(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	if _, err := shared.Call(r.Context(), a.connector, shared.OpDisconnect, row.Token, shared.Empty{}); err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, details("Disconnected"))
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, row *shared.Session) {
	if _, err := shared.Call(r.Context(), a.connector, shared.OpLogout, row.Token, shared.Empty{}); err != nil {
		Error(w, r, a.log, err)
		return
	}
	OK(w, details("Logged out"))
}

// details is the data of an answer that only reports what was done:
// WaGo's details and wuzapi's Details, with the same text.
func details(text string) map[string]string {
	return map[string]string{"details": text, "Details": text}
}

// qrModulePixels is the size of one QR module in the PNG. A whole number of
// pixels per module keeps every module the same size, which phones (and
// decoders) read more reliably than a fixed image size that scales the
// modules unevenly.
const qrModulePixels = 6

// renderQR draws code as a PNG QR image with a quiet zone.
func renderQR(code string) ([]byte, error) {
	q, err := qrcode.New(code, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	return q.PNG(-qrModulePixels)
}
