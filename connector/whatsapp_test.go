package connector

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/store"
)

func TestParseWAVersion(t *testing.T) {
	v, err := ParseWAVersion(" 2.3000.1031080999 ")
	if err != nil || v != (store.WAVersionContainer{2, 3000, 1031080999}) {
		t.Fatalf("got %v, %v", v, err)
	}
	for _, bad := range []string{"", "2.3000", "2.3000.x", "0.0.0", "2.3000.1.4", "-1.2.3"} {
		if _, err := ParseWAVersion(bad); err == nil {
			t.Errorf("ParseWAVersion(%q) accepted it", bad)
		}
	}
}

// TestConfiguredVersionReachesTheLoginPayload: the pinned whatsmeow's
// SetWAVersion leaves the login payload's AppVersion alone, so both must
// change.
func TestConfiguredVersionReachesTheLoginPayload(t *testing.T) {
	before := store.GetWAVersion()
	defer setWAVersion(before)
	ready := make(chan struct{})
	resolveVersion(context.Background(), "2.3000.1099999999", false, slog.New(slog.DiscardHandler), ready)
	<-ready
	want := store.WAVersionContainer{2, 3000, 1099999999}
	if got := store.GetWAVersion(); got != want {
		t.Fatalf("store version %v, want %v", got, want)
	}
	av := store.BaseClientPayload.GetUserAgent().GetAppVersion()
	if av.GetPrimary() != 2 || av.GetSecondary() != 3000 || av.GetTertiary() != 1099999999 {
		t.Fatalf("login payload AppVersion %v, want %v", av, want)
	}
}

// TestVersionFetchFailureDoesNotHang: with WhatsApp unreachable the fetch
// gives up and whatsmeow's built-in version stays.
func TestVersionFetchFailureDoesNotHang(t *testing.T) {
	before := store.GetWAVersion()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if the network never answered: the request fails at once
	ready := make(chan struct{})
	resolveVersion(ctx, "", true, slog.New(slog.DiscardHandler), ready)
	<-ready
	if got := store.GetWAVersion(); got != before {
		t.Fatalf("version changed to %v after a failed fetch", got)
	}
}

func TestParseRootKey(t *testing.T) {
	k, err := ParseRootKey(strings.Repeat("ab", 32))
	if err != nil || k[0] != 0xab || k[31] != 0xab {
		t.Fatalf("got %x, %v", k, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		if _, err := ParseRootKey(bad); err == nil {
			t.Errorf("ParseRootKey(%q) accepted it", bad)
		}
	}
}
