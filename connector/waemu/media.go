package waemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// Media host defaults.
const (
	// DefaultMaxMediaSize is the default cap of one uploaded (encrypted) media object: 100 MiB.
	DefaultMaxMediaSize = 100 << 20
	// DefaultMaxMediaTotal is the default cap of all uploaded media kept in memory: 1 GiB.
	// Past it the oldest objects are forgotten (their downloads then answer 404, which
	// whatsmeow reports as expired media).
	DefaultMaxMediaTotal = 1 << 30
	// mediaHost is the host name media_conn hands out; every request to it reaches the
	// emulator anyway because the clients' dialers ignore the address.
	mediaHost = "mmg.whatsapp.net"
	// profileHost is the host of profile picture URLs.
	profileHost = "pps.whatsapp.net"
	// mediaConnTTL and mediaAuthTTL are the lifetimes (seconds) media_conn announces.
	mediaConnTTL = 300
	mediaAuthTTL = 21600
	// maxMediaAuths bounds the remembered media_conn auth tokens.
	maxMediaAuths = 10000
)

// mmsPathPrefix is the direct-path prefix WhatsApp uses for each upload type.
var mmsPathPrefix = map[string]string{
	"image":    "/v/t62.7118-24/",
	"video":    "/v/t62.7161-24/",
	"audio":    "/v/t62.7114-24/",
	"document": "/v/t62.7119-24/",
	"sticker":  "/v/t62.15575-24/",
}

// MediaObject describes one encrypted media object uploaded to the emulator's media host.
type MediaObject struct {
	// DirectPath is the object's direct path (with its query string), as in the upload answer.
	DirectPath string `json:"direct_path"`
	// URL is the object's full URL, as in the upload answer.
	URL string `json:"url"`
	// MMSType is the upload type of the URL path: image, video, audio, document, ...
	MMSType string `json:"mms_type"`
	// Size is the length of the encrypted object (ciphertext + 10-byte MAC).
	Size int `json:"size"`
	// EncSHA256 is the hex SHA-256 of the encrypted object (whatsmeow's FileEncSHA256).
	EncSHA256 string `json:"enc_sha256"`
	// Uploaded is when the upload finished.
	Uploaded time.Time `json:"uploaded"`
	// Downloads counts the successful downloads of the object.
	Downloads int `json:"downloads"`
}

// mediaObject is a stored upload.
type mediaObject struct {
	info MediaObject
	data []byte
}

// mediaStore keeps uploads in memory, keyed by the direct path without its query.
type mediaStore struct {
	mu      sync.Mutex
	objects map[string]*mediaObject
	order   []string // upload order, oldest first, for eviction
	total   int64
	auths   map[string]time.Time // media_conn auth token -> expiry
}

func newMediaStore() *mediaStore {
	return &mediaStore{objects: make(map[string]*mediaObject), auths: make(map[string]time.Time)}
}

func (m *mediaStore) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects = make(map[string]*mediaObject)
	m.order = nil
	m.total = 0
	m.auths = make(map[string]time.Time)
}

// MediaObjects lists the media objects kept by the media host, oldest first.
func (s *Server) MediaObjects() []MediaObject {
	m := s.media
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MediaObject, 0, len(m.order))
	for _, key := range m.order {
		out = append(out, m.objects[key].info)
	}
	return out
}

// iqMediaConn answers <iq xmlns=w:m type=set><media_conn/></iq> as WhatsApp does:
// <media_conn auth ttl auth_ttl max_buckets><host hostname/></media_conn>
// (whatsmeow mediaconn.go). The auth token is checked by uploads.
func (s *Server) iqMediaConn(node *waBinary.Node) []waBinary.Node {
	if _, ok := node.GetOptionalChildByTag("media_conn"); !ok {
		return nil
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	auth := base64.RawURLEncoding.EncodeToString(buf)
	now := time.Now()
	m := s.media
	m.mu.Lock()
	if len(m.auths) >= maxMediaAuths {
		for k, exp := range m.auths {
			if now.After(exp) {
				delete(m.auths, k)
			}
		}
		if len(m.auths) >= maxMediaAuths {
			m.auths = make(map[string]time.Time)
		}
	}
	m.auths[auth] = now.Add(mediaAuthTTL * time.Second)
	m.mu.Unlock()
	return []waBinary.Node{{
		Tag: "media_conn",
		Attrs: waBinary.Attrs{
			"auth":        auth,
			"ttl":         mediaConnTTL,
			"auth_ttl":    mediaAuthTTL,
			"max_buckets": 12,
		},
		Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": mediaHost}}},
	}}
}

// serveMedia serves the plain-HTTP requests of the listener: uploads
// (POST /mms/<type>/<token>?auth&token), media downloads (GET of a direct path or URL)
// and profile pictures.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	// A direct path without a query gets whatsmeow's "&hash=..." glued to its path.
	if i := strings.IndexByte(path, '&'); i >= 0 {
		path = path[:i]
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/mms/"):
		s.serveUpload(w, r, path)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		if s.servePicture(w, r, path) {
			return
		}
		s.serveDownload(w, r, path)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, path string) {
	parts := strings.Split(strings.TrimPrefix(path, "/mms/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		http.NotFound(w, r)
		return
	}
	mmsType, token := parts[0], parts[1]
	q := r.URL.Query()
	m := s.media
	m.mu.Lock()
	exp, ok := m.auths[q.Get("auth")]
	m.mu.Unlock()
	if !ok || time.Now().After(exp) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	wantHash, err := base64.URLEncoding.DecodeString(token)
	if err != nil || len(wantHash) != sha256.Size || (q.Get("token") != "" && q.Get("token") != token) {
		http.Error(w, `{"error":"bad token"}`, http.StatusBadRequest)
		return
	}
	limit := s.cfg.MaxMediaSize
	if r.ContentLength > limit {
		http.Error(w, `{"error":"too large"}`, http.StatusRequestEntityTooLarge)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, `{"error":"too large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, `{"error":"read failed"}`, http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(data)
	if string(sum[:]) != string(wantHash) {
		http.Error(w, `{"error":"hash mismatch"}`, http.StatusBadRequest)
		return
	}
	idBuf := make([]byte, 16)
	_, _ = rand.Read(idBuf)
	objectID := hex.EncodeToString(idBuf)
	prefix, ok := mmsPathPrefix[mmsType]
	if !ok {
		prefix = "/v/t62.7117-24/"
	}
	key := prefix + objectID + ".enc"
	oh := make([]byte, 12)
	_, _ = rand.Read(oh)
	directPath := key + "?ccb=11-4&oh=01_" + base64.RawURLEncoding.EncodeToString(oh) +
		"&oe=" + strings.ToUpper(strconv.FormatInt(time.Now().Add(14*24*time.Hour).Unix(), 16)) + "&_nc_sid=5e03e0"
	obj := &mediaObject{data: data, info: MediaObject{
		DirectPath: directPath,
		URL:        "https://" + mediaHost + directPath + "&mms3=true",
		MMSType:    mmsType,
		Size:       len(data),
		EncSHA256:  hex.EncodeToString(sum[:]),
		Uploaded:   time.Now(),
	}}
	m.mu.Lock()
	m.objects[key] = obj
	m.order = append(m.order, key)
	m.total += int64(len(data))
	for m.total > s.cfg.MaxMediaTotal && len(m.order) > 1 {
		old := m.order[0]
		m.order = m.order[1:]
		m.total -= int64(len(m.objects[old].data))
		delete(m.objects, old)
	}
	m.mu.Unlock()
	s.log.Debugf("Stored %d-byte %s upload at %s", len(data), mmsType, key)

	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"url":         obj.info.URL,
		"direct_path": obj.info.DirectPath,
		"object_id":   objectID,
	})
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, path string) {
	m := s.media
	m.mu.Lock()
	obj, ok := m.objects[path]
	var data []byte
	if ok {
		data = obj.data
	}
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	// whatsmeow adds &hash=<base64url enc sha256> to direct-path downloads.
	if hash := queryAfterPath(r).Get("hash"); hash != "" {
		if want, err := base64.URLEncoding.DecodeString(hash); err != nil || hex.EncodeToString(want) != obj.info.EncSHA256 {
			http.NotFound(w, r)
			return
		}
	}
	if r.Method == http.MethodGet {
		m.mu.Lock()
		obj.info.Downloads++
		m.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(data)
	}
}

// queryAfterPath parses the query, including parameters glued to the path with '&'
// when a direct path had no '?'.
func queryAfterPath(r *http.Request) url.Values {
	q := r.URL.Query()
	if i := strings.IndexByte(r.URL.Path, '&'); i >= 0 {
		if extra, err := url.ParseQuery(r.URL.Path[i+1:]); err == nil {
			for k, v := range extra {
				q[k] = append(q[k], v...)
			}
		}
	}
	return q
}
