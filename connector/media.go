package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"github.com/wago-gw/wago/shared"
)

// Media: fetching a media URL, uploading, and downloading received media.

func init() {
	handle(shared.OpDownload, (*Manager).download)
}

// mediaTypes maps a kind to whatsmeow's media type (the encryption keys
// and the upload path).
var mediaTypes = map[string]whatsmeow.MediaType{
	shared.KindImage:    whatsmeow.MediaImage,
	shared.KindVideo:    whatsmeow.MediaVideo,
	shared.KindAudio:    whatsmeow.MediaAudio,
	shared.KindDocument: whatsmeow.MediaDocument,
	shared.KindSticker:  whatsmeow.MediaImage,
}

// mediaFetchTimeout bounds fetching a media URL.
const mediaFetchTimeout = 60 * time.Second

// fetchClient fetches media URLs: bounded in time, and following at most 5
// redirects, to http and https only.
var fetchClient = &http.Client{
	Timeout: mediaFetchTimeout,
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
		}
		return nil
	},
}

// fetchMedia downloads media.URL, at most limit bytes, and returns its
// bytes and the Content-Type the server gave.
func fetchMedia(ctx context.Context, url string, limit int64) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", shared.Errorf(shared.EINVALID, "invalid media URL")
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, "", shared.Wrap(err, shared.EINVALID, "could not fetch the media URL: "+dialCause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", shared.Errorf(shared.EINVALID, "could not fetch the media URL: it answered HTTP %d", resp.StatusCode)
	}
	if resp.ContentLength > limit {
		return nil, "", shared.Errorf(shared.ETOOLARGE, "media too large: at most %d bytes for this kind", limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", shared.Wrap(err, shared.EINVALID, "could not fetch the media URL: the download broke off")
	}
	if int64(len(data)) > limit {
		return nil, "", shared.Errorf(shared.ETOOLARGE, "media too large: at most %d bytes for this kind", limit)
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return data, strings.TrimSpace(ct), nil
}

// buildMedia uploads the media of req (fetching it first when it is a
// URL) and returns the message carrying it.
func (m *Manager) buildMedia(ctx context.Context, cli *whatsmeow.Client, req shared.SendRequest) (*waE2E.Message, error) {
	media := req.Media
	if media == nil {
		return nil, shared.Errorf(shared.EINVALID, "invalid message: %s without media", req.Kind)
	}
	data, mimetype := media.Data, media.Mimetype
	if len(data) == 0 && media.URL != "" {
		var served string
		var err error
		if data, served, err = fetchMedia(ctx, media.URL, shared.MaxMediaSize[req.Kind]); err != nil {
			return nil, err
		}
		if mimetype, err = shared.CheckMedia(req.Kind, served, data); err != nil {
			return nil, err
		}
	}
	if len(data) == 0 {
		return nil, shared.Errorf(shared.EINVALID, "invalid message: empty media")
	}
	up, err := cli.Upload(ctx, data, mediaTypes[req.Kind])
	if err != nil {
		if ctx.Err() != nil {
			return nil, stopped(ctx)
		}
		return nil, shared.Wrap(err, shared.EUNAVAILABLE, "could not upload the media to WhatsApp")
	}
	ci := contextInfo(req)
	caption := nonEmpty(req.Text)
	length := proto.Uint64(up.FileLength)
	switch req.Kind {
	case shared.KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Caption: caption, Mimetype: proto.String(mimetype), URL: &up.URL, DirectPath: &up.DirectPath,
			MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			ContextInfo: ci,
		}}, nil
	case shared.KindVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			Caption: caption, Mimetype: proto.String(mimetype), URL: &up.URL, DirectPath: &up.DirectPath,
			MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			ContextInfo: ci,
		}}, nil
	case shared.KindAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			Mimetype: proto.String(mimetype), URL: &up.URL, DirectPath: &up.DirectPath, PTT: proto.Bool(media.PTT),
			MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			ContextInfo: ci,
		}}, nil
	case shared.KindDocument:
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			Caption: caption, Mimetype: proto.String(mimetype), URL: &up.URL, DirectPath: &up.DirectPath,
			FileName: nonEmpty(media.FileName), Title: nonEmpty(media.FileName),
			MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			ContextInfo: ci,
		}}, nil
	case shared.KindSticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			Mimetype: proto.String(mimetype), URL: &up.URL, DirectPath: &up.DirectPath,
			MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			ContextInfo: ci,
		}}, nil
	}
	return nil, shared.Errorf(shared.EINVALID, "invalid message: kind %q is not media", req.Kind)
}

// download downloads and decrypts the media of a received message.
func (m *Manager) download(ctx context.Context, token string, req shared.DownloadRequest) (shared.DownloadResult, error) {
	var out shared.DownloadResult
	err := m.withClient(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		mt, ok := mediaTypes[req.Kind]
		if !ok {
			return shared.Errorf(shared.EINVALID, "invalid media kind %q", req.Kind)
		}
		data, err := cli.DownloadMediaWithPath(ctx, req.DirectPath, req.FileEncSHA256, req.FileSHA256, req.MediaKey, int(req.FileLength), mt, "")
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return stopped(ctx)
		case errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404), errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410):
			return shared.Errorf(shared.ENOTFOUND, "media expired: WhatsApp no longer has it")
		case errors.Is(err, whatsmeow.ErrInvalidMediaHMAC), errors.Is(err, whatsmeow.ErrInvalidMediaEncSHA256),
			errors.Is(err, whatsmeow.ErrInvalidMediaSHA256), errors.Is(err, whatsmeow.ErrFileLengthMismatch):
			return shared.Wrap(err, shared.EINVALID, "the media fields do not match the file")
		default:
			m.log.Warn("media download failed", "session", s.logID, "err", err)
			return shared.Wrap(err, shared.EUNAVAILABLE, "could not download the media")
		}
		out = shared.DownloadResult{Mimetype: req.Mimetype, Data: data}
		return nil
	})
	return out, err
}
