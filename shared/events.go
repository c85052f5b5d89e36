package shared

import (
	"slices"
	"strings"
)

// Event classes a session can subscribe to (the `Subscribe` field of
// /session/connect). EventAll stands for every class.
const (
	EventMessage      = "Message"
	EventReadReceipt  = "ReadReceipt"
	EventPresence     = "Presence"
	EventHistorySync  = "HistorySync"
	EventChatPresence = "ChatPresence"
	EventCall         = "Call"
	EventAll          = "All"
	EventNewsletter   = "Newsletter"
	EventLoggedOut    = "LoggedOut"
)

// EventClasses lists the valid classes in the order WaGo documents them.
var EventClasses = []string{
	EventMessage, EventReadReceipt, EventPresence, EventHistorySync,
	EventChatPresence, EventCall, EventAll, EventNewsletter, EventLoggedOut,
}

// ParseEvents validates a subscription list. It trims each class, drops
// duplicates, accepts any letter case, and returns the classes spelt as
// documented. An unknown class is an EINVALID error that lists the valid ones.
func ParseEvents(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, raw := range in {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(EventClasses, func(c string) bool { return strings.EqualFold(c, name) })
		if i < 0 {
			return nil, Errorf(EINVALID, "invalid event type %q: valid types are %s", name, strings.Join(EventClasses, ", "))
		}
		if !slices.Contains(out, EventClasses[i]) {
			out = append(out, EventClasses[i])
		}
	}
	return out, nil
}

// Subscribed reports whether a session subscribed to class events.
func Subscribed(events []string, class string) bool {
	return slices.Contains(events, EventAll) || slices.Contains(events, class)
}
