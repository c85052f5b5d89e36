package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector/waemu"
)

// rootSeed is the emulators' root key seed. The emulator's built-in contact
// is a whatsmeow client in this process, and whatsmeow's root key is a
// process-wide variable, so every emulator here shares one root key.
var rootSeed = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// startEmulator runs a WhatsApp-protocol emulator on loopback.
func startEmulator(t testing.TB) *waemu.Server {
	t.Helper()
	return startEmulatorWith(t, waemu.Config{})
}

// startEmulatorWith is startEmulator with cfg (its RootKey is set here).
func startEmulatorWith(t testing.TB, cfg waemu.Config) *waemu.Server {
	t.Helper()
	seed := rootSeed
	cfg.RootKey = &seed
	emu, err := waemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu
}

// embeddedEnv is the environment of an all-in-one wago on emu.
func embeddedEnv(emu *waemu.Server, dataDir string) []string {
	return []string{
		"WAGO_DATA_DIR=" + dataDir,
		"WAGO_ADMIN_TOKEN=" + adminToken,
		"WAGO_WHATSAPP_ADDR=" + emu.Addr(),
		"WAGO_WHATSAPP_ROOT_KEY=" + emu.RootPublicKeyHex(),
	}
}

// scanQR fetches /session/qr, decodes the PNG back to the QR string (so the
// image is proven scannable) and returns it.
func (p *proc) scanQR(token string) string {
	p.t.Helper()
	var qr struct{ QRCode string }
	p.ok(p.call("GET", "/session/qr", "", "token", token), &qr)
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(qr.QRCode, prefix) {
		p.t.Fatalf("QRCode is not a PNG data URL: %.40q", qr.QRCode)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr.QRCode, prefix))
	if err != nil {
		p.t.Fatal(err)
	}
	code, err := decodeQR(raw, gozxing.DecodeHintType_PURE_BARCODE)
	if err != nil {
		p.t.Fatalf("the QR image does not decode: %v", err)
	}
	if parts := strings.Split(code, ","); len(parts) != 4 {
		p.t.Fatalf("QR string %q does not have whatsmeow's four parts", code)
	}
	return code
}

// decodeQR reads the QR code of a PNG image with the decoder hint.
func decodeQR(raw []byte, hint gozxing.DecodeHintType) (string, error) {
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{hint: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// link connects token, has the emulator's phone scan its QR code, waits
// until it is logged in and returns the device JID.
func link(t testing.TB, p *proc, emu *waemu.Server, token string) types.JID {
	t.Helper()
	var c map[string]any
	p.ok(p.call("POST", "/session/connect", `{"Subscribe":["All"],"Immediate":false}`, "token", token), &c)
	if c["state"] != "qr" {
		t.Fatalf("connect of an unlinked session answered state %v", c["state"])
	}
	code := p.scanQR(token)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jid, err := emu.ScanQR(ctx, code)
	if err != nil {
		t.Fatalf("phone scan: %v", err)
	}
	st := p.waitStatus(token, 30*time.Second, "logged in after the scan", func(s status) bool { return s.Connected && s.LoggedIn })
	if st.Jid != jid.String() {
		t.Fatalf("status Jid %q, emulator linked %q", st.Jid, jid)
	}
	return jid
}

// waitFor polls cond until it holds or within passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func device(emu *waemu.Server, jid types.JID) (waemu.Device, bool) {
	for _, d := range emu.Devices() {
		if d.JID == jid {
			return d, true
		}
	}
	return waemu.Device{}, false
}
