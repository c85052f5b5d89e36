package waemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMediaHost uploads and downloads through whatsmeow's own Upload and Download
// (media_conn iq, POST /mms/..., GET of the URL and of the direct path), then checks
// the host's refusals with raw HTTP.
func TestMediaHost(t *testing.T) {
	t.Parallel()
	s, err := New(Config{RootKey: &testRootKey, Log: testLog("Emu"), MaxMediaSize: 64 << 10})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	cli, _, _ := pairedClient(t, s, dbPath(t, "media"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	data := randomBytes(t, 40000)
	up, err := cli.Upload(ctx, data, whatsmeow.MediaImage)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if up.URL == "" || up.DirectPath == "" || up.DirectPath[0] != '/' {
		t.Fatalf("UploadResponse = %+v", up)
	}
	img := &waE2E.ImageMessage{
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
	}
	got, err := cli.Download(ctx, img)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Download by URL = %d bytes, %v", len(got), err)
	}
	img.URL = nil // whatsmeow then builds https://<media_conn host><direct path>&hash=...
	if got, err = cli.Download(ctx, img); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Download by direct path = %d bytes, %v", len(got), err)
	}
	objs := s.MediaObjects()
	if len(objs) != 1 || objs[0].MMSType != "image" || objs[0].Downloads != 2 ||
		objs[0].EncSHA256 != hex.EncodeToString(up.FileEncSHA256) || objs[0].DirectPath != up.DirectPath {
		t.Errorf("MediaObjects() = %+v", objs)
	}

	// Raw HTTP: the same plain listener whatsmeow's dialer reaches.
	mc := s.iqMediaConn(&waBinary.Node{Tag: "iq", Content: []waBinary.Node{{Tag: "media_conn"}}})
	auth := mc[0].Attrs["auth"].(string)
	hc := s.HTTPClient()
	post := func(body []byte, token, auth string) int {
		t.Helper()
		u := "https://" + mediaHost + "/mms/image/" + token + "?" + url.Values{"auth": {auth}, "token": {token}}.Encode()
		resp, err := hc.Post(u, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tokenOf := func(b []byte) string {
		sum := sha256.Sum256(b)
		return base64.URLEncoding.EncodeToString(sum[:])
	}
	small := []byte("0123456789abcdef0123456789")
	if code := post(small, tokenOf(small), "wrong"); code != http.StatusUnauthorized {
		t.Errorf("upload with a bad auth = %d, want 401", code)
	}
	if code := post(small, tokenOf([]byte("other")), auth); code != http.StatusBadRequest {
		t.Errorf("upload with a wrong token = %d, want 400", code)
	}
	big := randomBytes(t, 64<<10+1)
	if code := post(big, tokenOf(big), auth); code != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over MaxMediaSize = %d, want 413", code)
	}
	if code := post(small, tokenOf(small), auth); code != http.StatusOK {
		t.Errorf("raw upload = %d, want 200", code)
	}
	resp, err := hc.Get("https://" + mediaHost + "/v/t62.7118-24/nope.enc?ccb=11-4")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown object = %d, want 404", resp.StatusCode)
	}
	if n := len(s.MediaObjects()); n != 2 {
		t.Errorf("len(MediaObjects()) = %d, want 2", n)
	}
}
