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

	// Connection classes: the session's connection state changed.
	EventConnected    = "Connected"
	EventDisconnected = "Disconnected"
	EventQR           = "QR"
	EventPairSuccess  = "PairSuccess"
)

// EventClasses lists the valid classes in the order WaGo documents them.
var EventClasses = []string{
	EventMessage, EventReadReceipt, EventPresence, EventHistorySync,
	EventChatPresence, EventCall, EventAll, EventNewsletter, EventLoggedOut,
	EventConnected, EventDisconnected, EventQR, EventPairSuccess,
}

// EventTypes maps the whatsmeow event type names that Subscribe also
// accepts (wuzapi clients send them) to the class that carries them; ""
// for the types that no class carries, which only their own name (or All)
// selects. A type name selects exactly that type; Connected, Disconnected,
// QR, PairSuccess and LoggedOut are both a class and a type.
var EventTypes = map[string]string{
	"Message": EventMessage, "UndecryptableMessage": EventMessage, "FBMessage": EventMessage,
	"Receipt": EventReadReceipt, "Presence": EventPresence, "ChatPresence": EventChatPresence,
	"HistorySync": EventHistorySync,
	"CallOffer":   EventCall, "CallAccept": EventCall, "CallPreAccept": EventCall, "CallTransport": EventCall,
	"CallOfferNotice": EventCall, "CallRelayLatency": EventCall, "CallTerminate": EventCall,
	"CallReject": EventCall, "UnknownCallEvent": EventCall,
	"NewsletterJoin": EventNewsletter, "NewsletterLeave": EventNewsletter,
	"NewsletterMuteChange": EventNewsletter, "NewsletterLiveUpdate": EventNewsletter,
	"LoggedOut": EventLoggedOut, "Connected": EventConnected, "Disconnected": EventDisconnected,
	"QR": EventQR, "PairSuccess": EventPairSuccess,
	"PairError": "", "StreamReplaced": "", "TemporaryBan": "", "ConnectFailure": "", "ClientOutdated": "",
	"KeepAliveTimeout": "", "KeepAliveRestored": "", "GroupInfo": "", "JoinedGroup": "", "Picture": "",
	"UserAbout": "", "IdentityChange": "", "PrivacySettings": "", "PushName": "", "BusinessName": "",
	"Contact": "", "Pin": "", "Star": "", "DeleteForMe": "", "Mute": "", "Archive": "",
	"MarkChatAsRead": "", "ClearChat": "", "DeleteChat": "", "Blocklist": "", "MediaRetry": "",
	"OfflineSyncPreview": "", "OfflineSyncCompleted": "", "AppStateSyncComplete": "", "LabelEdit": "",
	"LabelAssociationChat": "", "LabelAssociationMessage": "",
}

// EventNames returns the valid Subscribe names: the classes, then the
// type names that are not also classes, sorted.
func EventNames() []string {
	out := append([]string{}, EventClasses...)
	var types []string
	for name := range EventTypes {
		if !slices.Contains(EventClasses, name) {
			types = append(types, name)
		}
	}
	slices.Sort(types)
	return append(out, types...)
}

// ParseEvents validates a subscription list of classes and whatsmeow event
// type names (EventTypes). It trims each name, drops duplicates, accepts
// any letter case, and returns the names spelt as documented. An unknown
// name is an EINVALID error that lists the valid ones.
func ParseEvents(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	var names []string
	for _, raw := range in {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		if names == nil {
			names = EventNames()
		}
		i := slices.IndexFunc(names, func(c string) bool { return strings.EqualFold(c, name) })
		if i < 0 {
			return nil, Errorf(EINVALID, "invalid event type %q: valid types are %s", name, strings.Join(names, ", "))
		}
		if !slices.Contains(out, names[i]) {
			out = append(out, names[i])
		}
	}
	return out, nil
}

// Subscribed reports whether a session subscribed to class events.
func Subscribed(events []string, class string) bool {
	return slices.Contains(events, EventAll) || slices.Contains(events, class)
}

// SubscribedTo reports whether a subscription selects an event of whatsmeow
// type typ in class (empty for a type no class carries): All, its class or
// its own type name.
func SubscribedTo(events []string, class, typ string) bool {
	return slices.Contains(events, EventAll) || class != "" && slices.Contains(events, class) || slices.Contains(events, typ)
}
