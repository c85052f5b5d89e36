package connector

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/store"
)

// Hooks point whatsmeow at a WhatsApp-protocol server other than WhatsApp's
// own. They exist only so that the real binary can be tested end to end
// against the project's emulator; unset, nothing changes.
type Hooks struct {
	// Addr, when set, is a host:port that every WhatsApp websocket and media
	// request dials instead of WhatsApp's servers, in plain TCP.
	Addr string
	// RootKey, when set, replaces whatsmeow.WACertPubKey: the public key the
	// server's Noise certificate chain must be signed by.
	RootKey *[32]byte
}

// ParseRootKey decodes the 64 hex characters of WAGO_WHATSAPP_ROOT_KEY.
func ParseRootKey(s string) (*[32]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("root key must be 64 hex characters")
	}
	var k [32]byte
	copy(k[:], b)
	return &k, nil
}

// install applies the process-wide part of the hooks. whatsmeow's root key
// is a package variable, so it is set once, before any client exists.
func (h Hooks) install() {
	if h.RootKey != nil {
		whatsmeow.WACertPubKey = *h.RootKey
	}
}

// httpClient returns the HTTP client that every whatsmeow client of the
// process shares for its websocket, pre-login and media requests. whatsmeow
// would otherwise clone a transport per client; one shared transport costs
// less per session (an upgraded websocket connection leaves the pool, so
// sharing does not couple the sessions). With Addr set, every request
// dials Addr in plain TCP.
func (h Hooks) httpClient() *http.Client {
	if h.Addr == "" {
		return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, "tcp", h.Addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DialTLSContext: dial}}
}

// useHTTPClient makes cli send every request through hc.
func useHTTPClient(cli *whatsmeow.Client, hc *http.Client) {
	cli.SetPreLoginHTTPClient(hc)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetMediaHTTPClient(hc)
}

// ParseWAVersion parses a WhatsApp Web version such as 2.3000.1031080782.
func ParseWAVersion(s string) (store.WAVersionContainer, error) {
	var v store.WAVersionContainer
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("WhatsApp version %q: want three dot-separated numbers", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return v, fmt.Errorf("WhatsApp version %q: %w", s, err)
		}
		v[i] = uint32(n)
	}
	if v.IsZero() {
		return v, fmt.Errorf("WhatsApp version %q is zero", s)
	}
	return v, nil
}

// setWAVersion announces v in every later login. The pinned whatsmeow's
// SetWAVersion does not update the login payload's AppVersion, so both are
// set. It must run before any client connects.
func setWAVersion(v store.WAVersionContainer) {
	store.SetWAVersion(v)
	store.BaseClientPayload.UserAgent.AppVersion = &waWa6.ClientPayload_UserAgent_AppVersion{
		Primary: &v[0], Secondary: &v[1], Tertiary: &v[2],
	}
}

// resolveVersion sets the announced WhatsApp Web version: the configured
// one, else the one WhatsApp currently serves (fetched with a short
// timeout), else whatsmeow's built-in one. It closes ready when done.
func resolveVersion(ctx context.Context, configured string, fetch bool, log *slog.Logger, ready chan<- struct{}) {
	defer close(ready)
	if configured != "" {
		v, err := ParseWAVersion(configured)
		if err != nil {
			log.Error("ignoring WAGO_WA_VERSION", "err", err)
		} else {
			setWAVersion(v)
			log.Info("announcing configured WhatsApp Web version", "version", v.String())
			return
		}
	}
	if !fetch {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	v, err := whatsmeow.GetLatestVersion(ctx, &http.Client{Timeout: 4 * time.Second})
	if err != nil {
		log.Warn("could not fetch the current WhatsApp Web version; using whatsmeow's built-in one",
			"builtin", store.GetWAVersion().String(), "err", err)
		return
	}
	setWAVersion(*v)
	log.Info("announcing the current WhatsApp Web version", "version", v.String())
}
