package functions

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/wago-gw/wago/shared"
)

// The media routes: /send/{image,video,audio,document,sticker} (and
// wuzapi's /chat/send/*) take the file as a data URL or an http(s) URL
// that the connector fetches, and /message/download/* (and wuzapi's
// /chat/download*) answer the file of a received message as a data URL.

// mediaField is the body field that carries each kind's file.
var mediaField = map[string]string{
	shared.KindImage: "Image", shared.KindVideo: "Video", shared.KindAudio: "Audio",
	shared.KindDocument: "Document", shared.KindSticker: "Sticker",
}

// sendMedia serves the send route of one media kind.
func (a *API) sendMedia(kind string) sessionHandler {
	field := mediaField[kind]
	return func(w http.ResponseWriter, r *http.Request, row *shared.Session) {
		var body struct {
			sendFields
			Image, Video, Audio, Document, Sticker string
			Caption, FileName, Mimetype            string
			PTT                                    bool
		}
		if err := decodeMax(w, r, &body, maxMediaBody); err != nil {
			Error(w, r, a.log, err)
			return
		}
		req, err := body.request(kind)
		if err != nil {
			Error(w, r, a.log, err)
			return
		}
		file := map[string]string{
			shared.KindImage: body.Image, shared.KindVideo: body.Video, shared.KindAudio: body.Audio,
			shared.KindDocument: body.Document, shared.KindSticker: body.Sticker,
		}[kind]
		media, err := parseMedia(kind, field, file, body.Mimetype)
		if err != nil {
			Error(w, r, a.log, err)
			return
		}
		media.PTT = body.PTT && kind == shared.KindAudio
		if kind == shared.KindDocument {
			media.FileName = strings.TrimSpace(body.FileName)
			if media.FileName == "" {
				media.FileName = "document"
			}
		}
		if kind != shared.KindAudio && kind != shared.KindSticker {
			req.Text = body.Caption
		}
		req.Media = media
		a.send(w, r, row, req)
	}
}

// parseMedia reads a media field: a data URL (checked against the kind
// and the bytes here) or an http(s) URL (checked by the connector once
// fetched). mimetype, when set, overrides the data URL's type.
func parseMedia(kind, field, value, mimetype string) (*shared.Media, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, shared.Errorf(shared.EINVALID, "missing %s: a data URL (data:<type>;base64,...) or an http(s) URL", field)
	}
	if strings.HasPrefix(value, "http://") || strings.HasPrefix(value, "https://") {
		u, err := url.Parse(value)
		if err != nil || u.Host == "" {
			return nil, shared.Errorf(shared.EINVALID, "invalid %s: not a valid URL", field)
		}
		return &shared.Media{URL: value, Mimetype: mimetype}, nil
	}
	declared, data, err := parseDataURL(value)
	if err != nil {
		return nil, shared.Errorf(shared.EINVALID, "invalid %s: %s", field, err.Error())
	}
	if mimetype != "" {
		declared = mimetype
	}
	if declared, err = shared.CheckMedia(kind, declared, data); err != nil {
		return nil, err
	}
	return &shared.Media{Blob: shared.Blob{Data: data}, Mimetype: declared}, nil
}

// dataURLError is a client-safe reason a data URL is refused.
type dataURLError string

func (e dataURLError) Error() string { return string(e) }

// parseDataURL decodes data:<type>[;params];base64,<data>.
func parseDataURL(s string) (string, []byte, error) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return "", nil, dataURLError("a data URL (data:<type>;base64,...) or an http(s) URL")
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(meta, ";base64") {
		return "", nil, dataURLError("a data URL must be base64: data:<type>;base64,...")
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(payload); err != nil {
			return "", nil, dataURLError("the data URL is not valid base64")
		}
	}
	if len(data) == 0 {
		return "", nil, dataURLError("the data URL is empty")
	}
	// A copy: a substring would keep the whole base64 body alive as long
	// as the message that carries the type (whatsmeow keeps the last 256
	// sent messages of each client for retries).
	return strings.Clone(strings.TrimSuffix(meta, ";base64")), data, nil
}

// downloadFields are the media fields of a received message, as whatsmeow
// (and so the webhook's event) spells them; byte fields are base64.
type downloadFields struct {
	URL           string
	DirectPath    string
	MediaKey      []byte
	Mimetype      string
	FileEncSHA256 []byte
	FileSHA256    []byte
	FileLength    int64
}

// downloadMedia serves /message/download/<kind>.
func (a *API) downloadMedia(kind string) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, row *shared.Session) {
		var body downloadFields
		if err := decode(w, r, &body); err != nil {
			Error(w, r, a.log, err)
			return
		}
		req, err := body.request(kind)
		if err != nil {
			Error(w, r, a.log, err)
			return
		}
		res, err := shared.Call(r.Context(), a.connector, shared.OpDownload, row.Token, req)
		if err != nil {
			Error(w, r, a.log, err)
			return
		}
		mimetype := res.Mimetype
		if mimetype == "" {
			mimetype = http.DetectContentType(res.Data)
		}
		dataURL := "data:" + mimetype + ";base64," + base64.StdEncoding.EncodeToString(res.Data)
		OK(w, map[string]any{"Mimetype": mimetype, "Data": dataURL, "mimetype": mimetype, "data": dataURL})
	}
}

// request checks the fields: a direct path (or the URL it is in), the key
// and the hashes.
func (f downloadFields) request(kind string) (shared.DownloadRequest, error) {
	path := f.DirectPath
	if path == "" && f.URL != "" {
		if u, err := url.Parse(f.URL); err == nil {
			path = u.Path
			if u.RawQuery != "" {
				path += "?" + u.RawQuery
			}
		}
	}
	switch {
	case !strings.HasPrefix(path, "/"):
		return shared.DownloadRequest{}, shared.Errorf(shared.EINVALID, "missing DirectPath (or URL) of the media")
	case len(f.MediaKey) != 32:
		return shared.DownloadRequest{}, shared.Errorf(shared.EINVALID, "invalid MediaKey: 32 bytes in base64")
	case len(f.FileEncSHA256) != 32 || len(f.FileSHA256) != 32:
		return shared.DownloadRequest{}, shared.Errorf(shared.EINVALID, "invalid FileEncSHA256 or FileSHA256: 32 bytes in base64")
	case f.FileLength < 0 || f.FileLength > shared.MaxMediaSize[kind]:
		return shared.DownloadRequest{}, shared.Errorf(shared.EINVALID, "invalid FileLength")
	}
	return shared.DownloadRequest{
		Kind: kind, DirectPath: path, MediaKey: f.MediaKey, FileEncSHA256: f.FileEncSHA256,
		FileSHA256: f.FileSHA256, FileLength: f.FileLength, Mimetype: f.Mimetype,
	}, nil
}
