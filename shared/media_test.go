package shared

import (
	"strings"
	"testing"
)

func TestCheckMedia(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("x", 100))
	jpeg := []byte("\xff\xd8\xff\xe0" + strings.Repeat("x", 100))
	mp4 := []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + strings.Repeat("x", 100))
	ogg := []byte("OggS\x00" + strings.Repeat("x", 100))
	webp := []byte("RIFF\x00\x10\x00\x00WEBPVP8 " + strings.Repeat("x", 100))
	pdf := []byte("%PDF-1.7\n" + strings.Repeat("x", 100))
	for _, c := range []struct {
		kind, declared string
		data           []byte
		want, err      string
	}{
		{KindImage, "image/png", png, "image/png", ""},
		{KindImage, "", jpeg, "image/jpeg", ""},
		{KindImage, "image/jpeg", png, "", "invalid Mimetype: the bytes are image/png, not image/jpeg"},
		{KindImage, "image/gif", []byte("GIF89a" + strings.Repeat("x", 10)), "", "invalid Mimetype: the image route takes image/jpeg, image/png"},
		{KindImage, "image/png", []byte("plain text"), "", "invalid Mimetype: the bytes are not image/png"},
		{KindImage, "", []byte("\x00\x01\x02\x03\x04"), "", "missing Mimetype: the bytes of this image are not a type it can send"},
		{KindVideo, "video/mp4", mp4, "video/mp4", ""},
		{KindVideo, "video/mp4", png, "", "invalid Mimetype: the bytes are image/png, not video/mp4"},
		{KindAudio, "audio/ogg; codecs=opus", ogg, "audio/ogg; codecs=opus", ""},
		{KindAudio, "audio/mp4", mp4, "audio/mp4", ""},
		{KindAudio, "audio/aac", []byte("\xff\xf1\x50\x80" + strings.Repeat("\x00", 50)), "audio/aac", ""},
		{KindAudio, "image/png", png, "", "invalid Mimetype: the audio route takes audio/ogg, audio/mpeg, audio/mp4, audio/aac, audio/amr"},
		{KindSticker, "image/webp", webp, "image/webp", ""},
		{KindSticker, "image/webp", png, "", "invalid Mimetype: the bytes are image/png, not image/webp"},
		{KindDocument, "application/pdf", pdf, "application/pdf", ""},
		{KindDocument, "application/vnd.ms-excel", []byte("\xd0\xcf\x11\xe0" + strings.Repeat("x", 50)), "application/vnd.ms-excel", ""},
		{KindDocument, "application/pdf", png, "", "invalid Mimetype: the bytes are image/png, not application/pdf"},
		{KindDocument, "", []byte("\x00\x01\x02\x03"), "application/octet-stream", ""},
		{KindImage, "image/png", nil, "", "empty media"},
		{KindSticker, "image/webp", append(webp, make([]byte, 1<<20)...), "", "media too large: a sticker is at most 1048576 bytes"},
	} {
		got, err := CheckMedia(c.kind, c.declared, c.data)
		if got != c.want || ErrorMessage(err) != c.err {
			t.Errorf("CheckMedia(%s, %q) = %q, %v; want %q, %q", c.kind, c.declared, got, err, c.want, c.err)
		}
	}
}

func TestParseRecipient(t *testing.T) {
	for in, want := range map[string]string{
		"+5511999999999":                 "5511999999999@s.whatsapp.net",
		" 5511999999999 ":                "5511999999999@s.whatsapp.net",
		"5511999999999@s.whatsapp.net":   "5511999999999@s.whatsapp.net",
		"120363000000000000@g.us":        "120363000000000000@g.us",
		"5511999999999-1600000000@g.us":  "5511999999999-1600000000@g.us",
		"123456789012345@lid":            "123456789012345@lid",
		"":                               "",
		"0511999999999":                  "",
		"5511999999999:3@s.whatsapp.net": "",
		"abc@s.whatsapp.net":             "",
		"5511999999999@example.com":      "",
	} {
		got, err := ParseRecipient("Phone", in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseRecipient(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
