package shared

import (
	"net/http"
	"slices"
	"strings"
)

// Media checks: the declared MIME type must suit the kind of message, and
// the bytes must be what it says.

// mediaMimetypes lists the types each media kind may send (a document may
// send any).
var mediaMimetypes = map[string][]string{
	KindImage:   {"image/jpeg", "image/png"},
	KindVideo:   {"video/mp4", "video/3gpp"},
	KindAudio:   {"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"},
	KindSticker: {"image/webp"},
}

// sniffGroups maps a type that http.DetectContentType recognises to the
// declared types its bytes may stand for (one container, several names).
var sniffGroups = map[string][]string{
	"image/jpeg":      {"image/jpeg"},
	"image/png":       {"image/png"},
	"image/webp":      {"image/webp"},
	"image/gif":       {"image/gif"},
	"video/mp4":       {"video/mp4", "audio/mp4", "video/3gpp"},
	"application/ogg": {"audio/ogg", "video/ogg", "application/ogg"},
	"audio/mpeg":      {"audio/mpeg"},
	"audio/wave":      {"audio/wav", "audio/wave", "audio/x-wav"},
	"application/pdf": {"application/pdf"},
	"application/zip": {"application/zip"},
}

// baseType is a MIME type without parameters, lower case.
func baseType(mimetype string) string {
	t, _, _ := strings.Cut(mimetype, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// CheckMedia checks the bytes of a media message of kind, declared as
// mimetype (empty: what the bytes look like), and returns the type to send.
// It refuses, with EINVALID naming Mimetype, a type the kind cannot send
// and a type the bytes contradict.
func CheckMedia(kind, mimetype string, data []byte) (string, error) {
	if len(data) == 0 {
		return "", Errorf(EINVALID, "empty media")
	}
	if max := MaxMediaSize[kind]; int64(len(data)) > max {
		return "", Errorf(ETOOLARGE, "media too large: a %s is at most %d bytes", kind, max)
	}
	sniffed := baseType(http.DetectContentType(data))
	group, known := sniffGroups[sniffed]
	declared := baseType(mimetype)
	if declared == "" || declared == "application/octet-stream" && kind != KindDocument {
		if !known && kind != KindDocument {
			return "", Errorf(EINVALID, "missing Mimetype: the bytes of this %s are not a type it can send", kind)
		}
		if known {
			declared, mimetype = sniffed, sniffed
		} else {
			declared, mimetype = "application/octet-stream", "application/octet-stream"
		}
	}
	if allowed, ok := mediaMimetypes[kind]; ok && !slices.Contains(allowed, declared) {
		return "", Errorf(EINVALID, "invalid Mimetype: the %s route takes %s", kind, strings.Join(allowed, ", "))
	}
	switch {
	case known && !slices.Contains(group, declared) && (kind != KindDocument || declaredKnown(declared)):
		return "", Errorf(EINVALID, "invalid Mimetype: the bytes are %s, not %s", sniffed, declared)
	case !known && (kind == KindImage || kind == KindSticker):
		return "", Errorf(EINVALID, "invalid Mimetype: the bytes are not %s", declared)
	}
	return strings.TrimSpace(mimetype), nil
}

// declaredKnown reports whether t is a type whose bytes DetectContentType
// would recognise, so that a document declared as t can be checked.
func declaredKnown(t string) bool {
	for _, group := range sniffGroups {
		if slices.Contains(group, t) {
			return true
		}
	}
	return false
}
