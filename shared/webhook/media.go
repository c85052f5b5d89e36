package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/wago-gw/wago/shared"
)

// Inlined media: with Config.InlineMediaMax set, the worker downloads the
// media of a received message when it builds the payload, and adds it the
// way wuzapi does (base64, mimeType, fileName). The event is queued as it
// arrived (its download fields only), so whatsmeow's handler never waits on
// a download; a download that fails leaves the event as it is.

// mediaKinds names the message fields that hold media, with their kind.
var mediaKinds = []struct{ field, kind string }{
	{"imageMessage", shared.KindImage},
	{"videoMessage", shared.KindVideo},
	{"audioMessage", shared.KindAudio},
	{"documentMessage", shared.KindDocument},
	{"stickerMessage", shared.KindSticker},
}

// mediaFields are the download fields of a media message, as whatsmeow's
// events encode them: the names of shared.DownloadRequest's fields.
type mediaFields struct {
	shared.DownloadRequest
	FileName string `json:"fileName"`
}

// inlined is the media added to a payload.
type inlined struct {
	Base64   string
	MimeType string
	FileName string
}

// mediaOf returns the download request of the media in a Message event's
// data, and its file name, or false when it has none.
func mediaOf(data json.RawMessage) (shared.DownloadRequest, string, bool) {
	var evt struct {
		Message map[string]json.RawMessage `json:"Message"`
	}
	if json.Unmarshal(data, &evt) != nil {
		return shared.DownloadRequest{}, "", false
	}
	for _, k := range mediaKinds {
		raw, ok := evt.Message[k.field]
		if !ok {
			continue
		}
		var f mediaFields
		if json.Unmarshal(raw, &f) != nil || f.DirectPath == "" || len(f.MediaKey) == 0 {
			return shared.DownloadRequest{}, "", false
		}
		f.Kind = k.kind
		return f.DownloadRequest, f.FileName, true
	}
	return shared.DownloadRequest{}, "", false
}

// inline downloads the media of d when the configuration asks for it and
// the file is small enough; nil otherwise.
func (w *Worker) inline(ctx context.Context, d shared.Delivery) *inlined {
	if w.cfg.InlineMediaMax <= 0 || w.cfg.Media == nil || d.Type != "Message" {
		return nil
	}
	req, name, ok := mediaOf(d.Data)
	if !ok || req.FileLength > w.cfg.InlineMediaMax {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	res, err := w.cfg.Media(ctx, d.Token, req)
	if err != nil {
		w.log.Warn("could not download a message's media for its webhook: sent without it", "session", shared.LogID(d.Token), "id", d.ID, "err", err)
		return nil
	}
	if int64(len(res.Data)) > w.cfg.InlineMediaMax {
		return nil
	}
	mime := res.Mimetype
	if mime == "" {
		mime = req.Mimetype
	}
	return &inlined{Base64: base64.StdEncoding.EncodeToString(res.Data), MimeType: mime, FileName: name}
}
