package shared

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
)

// Recipients and message IDs, checked the same way by every front.

var (
	// phoneRe is an international number: an optional +, then 7 to 15
	// digits, the first not 0.
	phoneRe = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)
	// jidRe is a user, group, LID or newsletter JID without a device part.
	jidRe = regexp.MustCompile(`^([0-9]{5,20}@s\.whatsapp\.net|[0-9]{5,20}(-[0-9]{5,20})?@g\.us|[0-9]{5,20}@lid|[0-9]{5,20}@newsletter)$`)
	// messageIDRe is a message ID a client may choose.
	messageIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// IsPhone reports whether s is a phone number in international format: an
// optional +, then 7 to 15 digits, the first not 0.
func IsPhone(s string) bool { return phoneRe.MatchString(s) }

// ParseRecipient checks a Phone field: a phone number in international
// format (digits only after an optional +) or a JID (user, group, LID or
// newsletter). It returns the JID to send to, or EINVALID naming field.
func ParseRecipient(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", Errorf(EINVALID, "missing %s: a phone number in international format or a JID", field)
	case phoneRe.MatchString(s):
		return strings.TrimPrefix(s, "+") + "@s.whatsapp.net", nil
	case jidRe.MatchString(s):
		return s, nil
	}
	return "", Errorf(EINVALID, "invalid %s: use a phone number in international format (digits only after an optional +) or a JID such as 5511999999999@s.whatsapp.net or 120363000000000000@g.us", field)
}

// ParseMessageID checks a message ID chosen by a client: 1 to 64 letters,
// digits, '.', '_' or '-'.
func ParseMessageID(field, s string) (string, error) {
	if !messageIDRe.MatchString(s) {
		return "", Errorf(EINVALID, "invalid %s: 1 to 64 letters, digits, '.', '_' or '-'", field)
	}
	return s, nil
}

// NewMessageID returns a fresh message ID in WhatsApp Web's format:
// "3EB0" and 18 upper-case hex digits.
func NewMessageID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b))
}
