package waemu

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// ContactMedia is a media message for SendMediaFromContact.
type ContactMedia struct {
	// Kind is InboxImage, InboxVideo, InboxAudio, InboxDocument or InboxSticker.
	Kind InboxKind
	// Data is the plaintext media; the contact encrypts and uploads it.
	Data []byte
	// Mimetype is the declared MIME type, e.g. image/jpeg.
	Mimetype string
	// Caption is the caption of an image, video or document.
	Caption string
	// FileName is a document's file name.
	FileName string
	// PTT marks an audio message as a voice note.
	PTT bool
}

// SendImageFromContact makes the contact send an image (uploaded through the
// emulator's media host) to `to` and returns the message ID.
func (s *Server) SendImageFromContact(ctx context.Context, to types.JID, data []byte, mimetype, caption string) (string, error) {
	return s.SendMediaFromContact(ctx, to, ContactMedia{Kind: InboxImage, Data: data, Mimetype: mimetype, Caption: caption})
}

// SendMediaFromContact makes the contact upload media with whatsmeow's Upload (through
// the emulator's media host) and send it to `to`; it returns the message ID.
func (s *Server) SendMediaFromContact(ctx context.Context, to types.JID, m ContactMedia) (string, error) {
	cli, err := s.ensureContact(ctx)
	if err != nil {
		return "", err
	}
	var mediaType whatsmeow.MediaType
	switch m.Kind {
	case InboxImage, InboxSticker:
		mediaType = whatsmeow.MediaImage
	case InboxVideo:
		mediaType = whatsmeow.MediaVideo
	case InboxAudio:
		mediaType = whatsmeow.MediaAudio
	case InboxDocument:
		mediaType = whatsmeow.MediaDocument
	default:
		return "", fmt.Errorf("waemu: %q is not a media kind", m.Kind)
	}
	up, err := cli.Upload(ctx, m.Data, mediaType)
	if err != nil {
		return "", fmt.Errorf("contact failed to upload media: %w", err)
	}
	var mime *string
	if m.Mimetype != "" {
		mime = proto.String(m.Mimetype)
	}
	var caption *string
	if m.Caption != "" {
		caption = proto.String(m.Caption)
	}
	msg := &waE2E.Message{}
	switch m.Kind {
	case InboxImage:
		msg.ImageMessage = &waE2E.ImageMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: mime, Caption: caption,
		}
	case InboxSticker:
		msg.StickerMessage = &waE2E.StickerMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: mime,
		}
	case InboxVideo:
		msg.VideoMessage = &waE2E.VideoMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: mime, Caption: caption,
		}
	case InboxAudio:
		msg.AudioMessage = &waE2E.AudioMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: mime, PTT: proto.Bool(m.PTT),
		}
	case InboxDocument:
		var name *string
		if m.FileName != "" {
			name = proto.String(m.FileName)
		}
		msg.DocumentMessage = &waE2E.DocumentMessage{
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: mime, Caption: caption, FileName: name, Title: name,
		}
	}
	return s.SendMessageFromContact(ctx, to, msg)
}

// MarkReadFromContact makes the contact send a read receipt for messages it got from
// `chat` (a user JID).
func (s *Server) MarkReadFromContact(ctx context.Context, chat types.JID, ids ...string) error {
	cli, err := s.ensureContact(ctx)
	if err != nil {
		return err
	}
	chat = chat.ToNonAD()
	if err := cli.MarkRead(ctx, ids, time.Now(), chat, chat); err != nil {
		return fmt.Errorf("contact failed to mark messages read: %w", err)
	}
	return nil
}

// SendChatPresenceFromContact makes the contact send a chat state to `to`: composing
// (with recording: recording audio) or paused.
func (s *Server) SendChatPresenceFromContact(ctx context.Context, to types.JID, composing, recording bool) error {
	cli, err := s.ensureContact(ctx)
	if err != nil {
		return err
	}
	state, media := types.ChatPresencePaused, types.ChatPresenceMediaText
	if composing {
		state = types.ChatPresenceComposing
		if recording {
			media = types.ChatPresenceMediaAudio
		}
	}
	if err := cli.SendChatPresence(ctx, to.ToNonAD(), state, media); err != nil {
		return fmt.Errorf("contact failed to send chat presence: %w", err)
	}
	return nil
}

// SendPresenceFromContact makes the contact announce itself available or unavailable;
// devices subscribed to its presence get it. The contact announces "available" each
// time it connects.
func (s *Server) SendPresenceFromContact(ctx context.Context, available bool) error {
	cli, err := s.ensureContact(ctx)
	if err != nil {
		return err
	}
	state := types.PresenceUnavailable
	if available {
		state = types.PresenceAvailable
	}
	if err := cli.SendPresence(ctx, state); err != nil {
		return fmt.Errorf("contact failed to send presence: %w", err)
	}
	return nil
}
