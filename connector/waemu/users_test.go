package waemu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// TestUsers checks what whatsmeow's user queries get: IsOnWhatsApp, GetUserInfo,
// GetProfilePictureInfo (and the picture's download) and presence subscription.
func TestUsers(t *testing.T) {
	t.Parallel()
	s := mustStartServer(t)
	cli, evts, jid := pairedClient(t, s, dbPath(t, "users"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	contact := s.Contact()
	unknown := types.NewJID("15550009999", types.DefaultUserServer)

	// IsOnWhatsApp: the contact (started on demand), the device's own number, an unknown one.
	resp, err := cli.IsOnWhatsApp(ctx, []string{"+" + contact.User, "+" + jid.User, "+" + unknown.User})
	if err != nil {
		t.Fatalf("IsOnWhatsApp: %v", err)
	}
	if len(resp) != 3 || !resp[0].IsIn || resp[0].JID != contact || resp[0].Query != "+"+contact.User ||
		!resp[1].IsIn || resp[1].JID != jid.ToNonAD() || resp[2].IsIn || resp[2].JID != unknown {
		t.Errorf("IsOnWhatsApp = %+v", resp)
	}

	// GetUserInfo.
	pictureID, pictureData := s.ProfilePicture(contact)
	if pictureID == "" || len(pictureData) == 0 {
		t.Fatalf("ProfilePicture(contact) = %q, %d bytes", pictureID, len(pictureData))
	}
	infos, err := cli.GetUserInfo(ctx, []types.JID{contact, unknown})
	if err != nil {
		t.Fatalf("GetUserInfo: %v", err)
	}
	ci := infos[contact]
	if ci.Status != contactStatus || ci.PictureID != pictureID || !slices.Equal(ci.Devices, []types.JID{contact}) || ci.LID.Server != types.HiddenUserServer {
		t.Errorf("GetUserInfo(contact) = %+v", ci)
	}
	if ui, ok := infos[unknown]; !ok || len(ui.Devices) != 0 || ui.PictureID != "" || !ui.LID.IsEmpty() {
		t.Errorf("GetUserInfo(unknown) = %+v, %v", ui, ok)
	}

	// Profile pictures: the contact's is served by the emulator's HTTP listener.
	pic, err := cli.GetProfilePictureInfo(ctx, contact, nil)
	if err != nil || pic == nil || pic.ID != pictureID || pic.URL == "" || pic.DirectPath == "" || pic.Type != "image" {
		t.Fatalf("GetProfilePictureInfo(contact) = %+v, %v", pic, err)
	}
	httpResp, err := s.HTTPClient().Get(pic.URL)
	if err != nil {
		t.Fatalf("GET picture: %v", err)
	}
	body, _ := io.ReadAll(httpResp.Body)
	httpResp.Body.Close()
	if httpResp.StatusCode != 200 || !bytes.Equal(body, pictureData) || httpResp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET picture = %d, %d bytes", httpResp.StatusCode, len(body))
	}
	if pic, err := cli.GetProfilePictureInfo(ctx, contact, &whatsmeow.GetProfilePictureParams{ExistingID: pictureID}); pic != nil || err != nil {
		t.Errorf("GetProfilePictureInfo with the current id = %+v, %v; want nil, nil", pic, err)
	}
	if _, err := cli.GetProfilePictureInfo(ctx, jid.ToNonAD(), nil); !errors.Is(err, whatsmeow.ErrProfilePictureNotSet) {
		t.Errorf("GetProfilePictureInfo(no picture) error = %v", err)
	}
	if _, err := cli.GetProfilePictureInfo(ctx, unknown, nil); !errors.Is(err, whatsmeow.ErrProfilePictureNotSet) {
		t.Errorf("GetProfilePictureInfo(unknown) error = %v", err)
	}
	newID, err := s.SetProfilePicture(jid.ToNonAD(), []byte("not really a jpeg"))
	if err != nil {
		t.Fatalf("SetProfilePicture: %v", err)
	}
	if pic, err := cli.GetProfilePictureInfo(ctx, jid.ToNonAD(), &whatsmeow.GetProfilePictureParams{Preview: true}); err != nil || pic.ID != newID || pic.Type != "preview" {
		t.Errorf("GetProfilePictureInfo after SetProfilePicture = %+v, %v", pic, err)
	}

	// Presence: subscribing answers with the contact's presence (it announces itself
	// available when it connects), and later changes follow.
	if err := cli.SubscribePresence(ctx, contact); err != nil {
		t.Fatalf("SubscribePresence: %v", err)
	}
	evts.waitEvent(t, "contact available", func(e any) bool {
		p, ok := e.(*events.Presence)
		return ok && p.From == contact && !p.Unavailable
	})
	if err := s.SendPresenceFromContact(ctx, false); err != nil {
		t.Fatalf("SendPresenceFromContact: %v", err)
	}
	evts.waitEvent(t, "contact unavailable", func(e any) bool {
		p, ok := e.(*events.Presence)
		return ok && p.From == contact && p.Unavailable && !p.LastSeen.IsZero()
	})
}
