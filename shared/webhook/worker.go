// Package webhook delivers the events of the outbox to each token's
// receiver: at least once, signed the Standard Webhooks way, with retries
// on a schedule and a dead-letter list after the last one.
//
// The Worker takes due deliveries from a shared.Outbox and hands each to
// its token's lane: a lane makes the token's attempts one at a time, in the
// order the outbox returns them (the token's sequence), so first attempts
// happen in order; a failed attempt is scheduled again and the lane goes
// on. Each receiver (scheme and host of its URL) takes at most
// Concurrency requests at once, so a slow or dead receiver holds only its
// own slots. The receiver's URL, secret and format are read from the token
// row at each attempt: a changed URL applies to events already queued, and
// events of a deleted token or of a token without a webhook are dropped.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wago-gw/wago/shared"
)

// DefaultSchedule is the Standard Webhooks retry schedule: the delays
// before attempts 2 to 10 (the first is immediate).
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// Defaults of Config.
const (
	DefaultTimeout     = 15 * time.Second
	DefaultConcurrency = 8
	// maxRetryAfter caps a receiver's Retry-After.
	maxRetryAfter = 24 * time.Hour
	// maxInFlight bounds the deliveries taken from the outbox and not yet
	// ended.
	maxInFlight = 4096
)

// Config configures a Worker.
type Config struct {
	Outbox shared.Outbox
	// Rows reads a token's row at each attempt: its URL, secret, format.
	Rows shared.Store
	// Secret is the global whsec_ secret of the tokens without their own;
	// empty: their deliveries are not signed.
	Secret string
	// Format is the payload format of the tokens without their own
	// (shared.WebhookFormatForm by default).
	Format string
	// Schedule is the delays before the retries; nil: DefaultSchedule.
	// After the last one fails, the event becomes a dead letter.
	Schedule []time.Duration
	// Timeout bounds one request. Default 15 s.
	Timeout time.Duration
	// Concurrency bounds the requests in flight to one receiver. Default 8.
	Concurrency int
	// DenyPrivate refuses receivers whose address (after DNS) is loopback,
	// private, link-local or unspecified.
	DenyPrivate bool
	// Log receives the worker's logs; nil discards them.
	Log *slog.Logger
	// Client overrides the HTTP client (tests); its Timeout is not used.
	Client *http.Client
	// Gone, when set, is called after a 410 removed a token's webhook, so
	// that the connector stops queueing its events.
	Gone func(token string)
	// Registerer receives the worker's metrics (metrics.go); nil: none.
	Registerer prometheus.Registerer
	// Deliveries, when set, records how each attempt ended (the
	// dashboard's last events of a session).
	Deliveries shared.DeliveryLog
	// InlineMediaMax, when positive, adds to the payload of a received
	// message the media it carries, up to this many bytes, downloaded with
	// Media when the payload is built (see media.go).
	InlineMediaMax int64
	Media          func(ctx context.Context, token string, req shared.DownloadRequest) (shared.DownloadResult, error)
}

// Worker delivers the outbox's events. Run it once per outbox consumer.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	metrics *metrics

	// inFlight limits the deliveries taken and not yet ended.
	inFlight chan struct{}

	// lanesLock guards lanes and receivers.
	lanesLock sync.Mutex
	lanes     map[string]*lane
	receivers map[string]chan struct{}
	wg        sync.WaitGroup
}

// lane is one token's queue of deliveries.
type lane struct {
	queue   []shared.Delivery
	running bool
}

// New returns a Worker.
func New(cfg Config) *Worker {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Format == "" {
		cfg.Format = shared.WebhookFormatForm
	}
	client := cfg.Client
	if client == nil {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if cfg.DenyPrivate {
			dialer.Control = refusePrivate
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = dialer.DialContext
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		client = &http.Client{Transport: tr}
	}
	client = &http.Client{Transport: client.Transport, Jar: client.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	log := cfg.Log
	return &Worker{
		cfg: cfg, log: cfg.Log, client: client,
		metrics:   newMetrics(cfg.Registerer, cfg.Outbox, func(err error) { log.Warn("could not count the webhook outbox", "err", err) }),
		inFlight:  make(chan struct{}, maxInFlight),
		lanes:     map[string]*lane{},
		receivers: map[string]chan struct{}{},
	}
}

// errPrivate refuses a receiver on a private address.
var errPrivate = errors.New("receiver address is private")

// refusePrivate is a dialer Control that refuses loopback, private,
// link-local and unspecified addresses: it runs after DNS resolution, on
// the address actually dialled.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
		return errPrivate
	}
	return nil
}

// Run delivers until ctx ends, then waits for its lanes to stop: attempts
// in flight are cancelled with ctx, and their events stay in the outbox
// (leased until the next start, or until another consumer claims them).
func (w *Worker) Run(ctx context.Context) {
	defer w.wg.Wait()
	for ctx.Err() == nil {
		free := cap(w.inFlight) - len(w.inFlight)
		if free == 0 {
			select {
			case w.inFlight <- struct{}{}: // wait for one slot, then give it back
				<-w.inFlight
			case <-ctx.Done():
				return
			}
			continue
		}
		ds, err := w.cfg.Outbox.Next(ctx, min(free, 256), time.Second)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("could not read the webhook outbox", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		inSeqOrder(ds)
		for _, d := range ds {
			w.inFlight <- struct{}{}
			w.enqueue(ctx, d)
		}
	}
}

// inSeqOrder sorts each token's deliveries by sequence, keeping tokens in
// the order of their first delivery: lanes are per token, so only a
// token's own order matters.
func inSeqOrder(ds []shared.Delivery) {
	first := map[string]int{}
	for i, d := range ds {
		if _, ok := first[d.Token]; !ok {
			first[d.Token] = i
		}
	}
	slices.SortStableFunc(ds, func(a, b shared.Delivery) int {
		if c := first[a.Token] - first[b.Token]; c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// enqueue appends d to its token's lane and starts the lane if it is idle.
func (w *Worker) enqueue(ctx context.Context, d shared.Delivery) {
	w.lanesLock.Lock()
	defer w.lanesLock.Unlock()
	l := w.lanes[d.Token]
	if l == nil {
		l = &lane{}
		w.lanes[d.Token] = l
	}
	l.queue = append(l.queue, d)
	if !l.running {
		l.running = true
		w.wg.Add(1)
		go w.drain(ctx, d.Token, l)
	}
}

// drain runs a lane's deliveries in order until it is empty.
func (w *Worker) drain(ctx context.Context, token string, l *lane) {
	defer w.wg.Done()
	for {
		w.lanesLock.Lock()
		if len(l.queue) == 0 {
			l.running = false
			delete(w.lanes, token)
			w.lanesLock.Unlock()
			return
		}
		d := l.queue[0]
		l.queue = l.queue[1:]
		w.lanesLock.Unlock()
		w.deliver(ctx, d)
		<-w.inFlight
	}
}

// outcome is the result of one attempt.
type outcome struct {
	ok    bool
	gone  bool          // 410: stop delivering to this URL
	after time.Duration // the receiver's Retry-After, if any
	why   string
}

// deliver makes one attempt of d and ends it in the outbox: done, retried
// or buried. When ctx ends (shutdown) the delivery is left to the outbox,
// which hands it out again.
func (w *Worker) deliver(ctx context.Context, d shared.Delivery) {
	if ctx.Err() != nil {
		return
	}
	// The outbox ends the attempt even if shutdown starts meanwhile.
	octx := context.WithoutCancel(ctx)
	row, err := w.cfg.Rows.Get(ctx, d.Token)
	switch {
	case shared.ErrorCode(err) == shared.ENOTFOUND || err == nil && row.Webhook == "":
		w.end(octx, d, w.cfg.Outbox.Done, shared.DeliveryDropped) // no receiver any more
		return
	case err != nil:
		w.log.Warn("could not read a token row for a webhook delivery", "session", shared.LogID(d.Token), "err", err)
		d.LastError = "could not read the session"
		w.retry(octx, d, 0)
		return
	}
	res := w.attempt(ctx, row, d)
	if ctx.Err() != nil && !res.ok {
		return // interrupted by shutdown: due again at the next start
	}
	d.Attempts++
	d.LastError = res.why
	if res.ok {
		w.metrics.delivered.Inc()
	} else {
		w.metrics.failed.Inc()
	}
	switch {
	case res.ok:
		w.end(octx, d, w.cfg.Outbox.Done, shared.DeliveryDelivered)
	case res.gone:
		w.log.Warn("receiver answered 410 Gone: its webhook is removed", "session", shared.LogID(d.Token))
		if _, err := w.cfg.Rows.Update(octx, d.Token, shared.SessionUpdate{Webhook: shared.Ptr("")}); err != nil {
			w.log.Error("could not remove a gone webhook", "session", shared.LogID(d.Token), "err", err)
		} else if w.cfg.Gone != nil {
			w.cfg.Gone(d.Token)
		}
		w.end(octx, d, w.cfg.Outbox.Done, shared.DeliveryDropped)
	default:
		w.retry(octx, d, res.after)
	}
}

// retry schedules d's next attempt, or buries it after the last.
func (w *Worker) retry(ctx context.Context, d shared.Delivery, after time.Duration) {
	i := d.Attempts - 1
	if d.Attempts == 0 {
		i = 0
	}
	if i >= len(w.cfg.Schedule) {
		w.metrics.buried.Inc()
		w.log.Warn("webhook event failed its last attempt: parked in the dead letters", "session", shared.LogID(d.Token), "id", d.ID, "why", d.LastError)
		w.end(ctx, d, w.cfg.Outbox.Bury, shared.DeliveryFailed)
		return
	}
	w.metrics.retried.Inc()
	delay := jitter(w.cfg.Schedule[i])
	delay = max(delay, min(after, maxRetryAfter))
	d.NextAt = time.Now().Add(delay)
	w.end(ctx, d, w.cfg.Outbox.Retry, shared.DeliveryRetrying)
}

// jitter spreads d by up to ±10 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	span := int64(d) / 5
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span+1))
}

// end ends d's attempt in the outbox with fn, and records it as status.
func (w *Worker) end(ctx context.Context, d shared.Delivery, fn func(context.Context, shared.Delivery) error, status string) {
	if err := fn(ctx, d); err != nil {
		w.log.Error("could not update the webhook outbox", "session", shared.LogID(d.Token), "id", d.ID, "err", err)
	}
	if w.cfg.Deliveries == nil {
		return
	}
	if err := w.cfg.Deliveries.Record(ctx, d.Token, shared.NewDeliveryRecord(d, status)); err != nil {
		w.log.Warn("could not record a webhook delivery", "session", shared.LogID(d.Token), "id", d.ID, "err", err)
	}
}

// receiver returns the concurrency slots of the receiver of u.
func (w *Worker) receiver(u *url.URL) chan struct{} {
	key := u.Scheme + "://" + u.Host
	w.lanesLock.Lock()
	defer w.lanesLock.Unlock()
	r := w.receivers[key]
	if r == nil {
		r = make(chan struct{}, w.cfg.Concurrency)
		w.receivers[key] = r
	}
	return r
}

// attempt posts d to row's webhook once.
func (w *Worker) attempt(ctx context.Context, row *shared.Session, d shared.Delivery) outcome {
	u, err := url.Parse(row.Webhook)
	if err != nil || shared.CheckWebhookURL("webhook", row.Webhook) != nil {
		return outcome{why: "invalid webhook URL"}
	}
	format := row.WebhookFormat
	if format == "" {
		format = w.cfg.Format
	}
	body, contentType, err := payload(format, d, w.inline(ctx, d))
	if err != nil {
		return outcome{why: "could not encode the event"}
	}
	secret := row.WebhookSecret
	if secret == "" {
		secret = w.cfg.Secret
	}
	slots := w.receiver(u)
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return outcome{why: "shutting down"}
	}
	defer func() { <-slots }()

	rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, row.Webhook, bytes.NewReader(body))
	if err != nil {
		return outcome{why: "invalid webhook URL"}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "wago-webhooks")
	ts := time.Now().Unix()
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("Wago-Sequence", strconv.FormatInt(d.Seq, 10))
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if secret != "" {
		sig, err := SignAll(secret, d.ID, ts, body)
		if err != nil {
			return outcome{why: "invalid webhook secret"}
		}
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return outcome{why: netCause(err)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return outcome{ok: true}
	case resp.StatusCode == http.StatusGone:
		return outcome{gone: true, why: "receiver answered 410"}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return outcome{after: retryAfter(resp.Header.Get("Retry-After")), why: "receiver answered " + strconv.Itoa(resp.StatusCode)}
	}
	return outcome{why: "receiver answered " + strconv.Itoa(resp.StatusCode)}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// netCause names a failed request's cause without internals.
func netCause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errPrivate):
		return "receiver address is private (refused by configuration)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "receiver timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "DNS lookup failed"
	}
	return "network error"
}

// SignAll returns the webhook-signature header of a delivery signed with
// each of the space-separated secrets (a rotation): their signatures,
// separated by spaces.
func SignAll(secrets, id string, timestamp int64, body []byte) (string, error) {
	var sigs []string
	for _, s := range strings.Fields(secrets) {
		sig, err := Sign(s, id, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Sign returns the webhook-signature header of a delivery: "v1," and the
// base64 HMAC-SHA256, keyed with the whsec_ secret, of "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := shared.WebhookKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// jsonData is WaGo's payload object.
type jsonData struct {
	Type  string          `json:"type"`
	Event json.RawMessage `json:"event"`
	State string          `json:"state,omitempty"`
	// The JSON format adds these.
	Token     string `json:"token,omitempty"`
	ID        string `json:"id,omitempty"`
	Seq       int64  `json:"seq,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"`
	// Inlined media (Config.InlineMediaMax), named as wuzapi names them.
	Base64   string `json:"base64,omitempty"`
	MimeType string `json:"mimeType,omitempty"`
	FileName string `json:"fileName,omitempty"`
}

// Payload returns the body of a delivery in format and its content type,
// without inlined media (see payload).
func Payload(format string, d shared.Delivery) ([]byte, string, error) {
	return payload(format, d, nil)
}

// payload returns the body of a delivery in format and its content type:
// WaGo's form (token and jsonData = {"type","event","state"?}), or JSON
// ({"type","event","state"?,"token","id","seq","timestamp"}); media, when
// not nil, adds base64, mimeType and fileName.
func payload(format string, d shared.Delivery, media *inlined) ([]byte, string, error) {
	p := jsonData{Type: d.Type, Event: d.Data, State: d.State}
	if media != nil {
		p.Base64, p.MimeType, p.FileName = media.Base64, media.MimeType, media.FileName
	}
	if format == shared.WebhookFormatJSON {
		p.Token, p.ID, p.Seq, p.Timestamp = d.Token, d.ID, d.Seq, d.Time.Unix()
		b, err := json.Marshal(p)
		return b, "application/json", err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, "", err
	}
	form := url.Values{"token": {d.Token}, "jsonData": {string(b)}}
	return []byte(form.Encode()), "application/x-www-form-urlencoded", nil
}
