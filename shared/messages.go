package shared

// The messages area: sending messages and operating on sent or received
// ones. Every op runs in LaneSend: the ops of one token run one at a time,
// in the order they were accepted, and never wait behind a connect.

// Kinds of message that OpSend sends (SendRequest.Kind).
const (
	KindText     = "text"
	KindImage    = "image"
	KindVideo    = "video"
	KindAudio    = "audio"
	KindDocument = "document"
	KindSticker  = "sticker"
	KindLocation = "location"
	KindContact  = "contact"
	KindPoll     = "poll"
)

// SendRequest is one message to send. The HTTP functions validate it, so
// the connector only builds and sends it.
type SendRequest struct {
	// To is the recipient: a user JID (phone@s.whatsapp.net, or @lid) or
	// a group JID (@g.us), normalised by the API.
	To string `json:"to"`
	// ID is the WhatsApp message ID. The API sets it (the client's Id, or
	// a fresh one) before the op is queued, so that a redelivered command
	// or a retried request sends the same message, which the connector
	// sends at most once per token.
	ID string `json:"id"`
	// IDFromClient is set when the client chose ID (so it may retry with
	// it): only then is the ID looked up in the shared sent log.
	IDFromClient bool `json:"idFromClient,omitempty"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Text is the body of a text, or the caption of media.
	Text string `json:"text,omitempty"`
	// Reply quotes an earlier message; Mentions are user JIDs mentioned.
	Reply    *Reply   `json:"reply,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	// Media is the file of image, video, audio, document and sticker.
	Media *Media `json:"media,omitempty"`
	// Location, Contact and Poll are the bodies of their kinds.
	Location *Location    `json:"location,omitempty"`
	Contact  *ContactCard `json:"contact,omitempty"`
	Poll     *Poll        `json:"poll,omitempty"`
}

// Reply names the quoted message: its ID and, in groups or for messages
// the device did not send, its sender's JID.
type Reply struct {
	ID          string `json:"id"`
	Participant string `json:"participant,omitempty"`
}

// Media is a file to send: its bytes (Blob), or a URL the connector
// fetches. It is sent as it is, never re-encoded.
type Media struct {
	Blob
	URL      string `json:"url,omitempty"`
	Mimetype string `json:"mimetype,omitempty"`
	FileName string `json:"fileName,omitempty"`
	// PTT marks an audio as a voice note.
	PTT bool `json:"ptt,omitempty"`
}

// BlobField implements BlobCarrier: the media's bytes, if any.
func (r SendRequest) BlobField() *Blob {
	if r.Media == nil {
		return nil
	}
	return &r.Media.Blob
}

// MaxMediaSize is the largest file each media kind may send: WhatsApp's
// own limits, and 64 MiB for documents (the gateway's).
var MaxMediaSize = map[string]int64{
	KindImage:    16 << 20,
	KindVideo:    64 << 20,
	KindAudio:    16 << 20,
	KindDocument: 64 << 20,
	KindSticker:  1 << 20,
}

// Location is a pin on the map.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
}

// ContactCard is a contact shared as a vCard.
type ContactCard struct {
	Name  string `json:"name"`
	Vcard string `json:"vcard"`
}

// Poll is a poll to create.
type Poll struct {
	Question  string   `json:"question"`
	Options   []string `json:"options"`
	MaxAnswer int      `json:"maxAnswer"`
}

// SendResult is what WhatsApp acknowledged.
type SendResult struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
}

// OpSend sends a message. Returns ErrNoSession when no client runs,
// ErrNotLoggedIn when the device is not logged in, EUNAVAILABLE when
// WhatsApp did not acknowledge it, EINVALID for a message WhatsApp or
// whatsmeow refuses. Sending an ID that the token already sent answers
// the first result again without sending.
var OpSend = NewOp[SendRequest, SendResult]("message.send", LaneSend)

// MessageRef names a message in a chat: its ID and, for a message the
// device did not send, its sender (in groups, or a received message).
type MessageRef struct {
	Chat   string `json:"chat"`
	ID     string `json:"id"`
	Sender string `json:"sender,omitempty"`
	FromMe bool   `json:"fromMe,omitempty"`
}

// ReactRequest reacts to a message; an empty Emoji removes the reaction.
type ReactRequest struct {
	Target MessageRef `json:"target"`
	Emoji  string     `json:"emoji"`
}

// EditRequest replaces the text of a message the device sent.
type EditRequest struct {
	Target MessageRef `json:"target"`
	Text   string     `json:"text"`
}

// MarkReadRequest marks messages of one chat (and, in groups, one sender)
// as read.
type MarkReadRequest struct {
	Chat   string   `json:"chat"`
	Sender string   `json:"sender,omitempty"`
	IDs    []string `json:"ids"`
}

// Chat presence states (ChatPresenceRequest.State).
const (
	PresenceComposing = "composing"
	PresencePaused    = "paused"
	PresenceRecording = "recording"
)

// ChatPresenceRequest shows the device typing (or recording) in a chat.
type ChatPresenceRequest struct {
	Chat  string `json:"chat"`
	State string `json:"state"`
}

// The message ops. Each returns ErrNoSession or ErrNotLoggedIn when the
// device cannot send, as OpSend does.
var (
	// OpReact sends a reaction (or removes one) and answers its ID.
	OpReact = NewOp[ReactRequest, SendResult]("message.react", LaneSend)
	// OpEdit edits a message the device sent and answers the edit's ID.
	OpEdit = NewOp[EditRequest, SendResult]("message.edit", LaneSend)
	// OpRevoke deletes a message for everyone and answers the revoke's ID.
	OpRevoke = NewOp[MessageRef, SendResult]("message.revoke", LaneSend)
	// OpMarkRead sends read receipts.
	OpMarkRead = NewOp[MarkReadRequest, Empty]("message.markread", LaneSend)
	// OpChatPresence sends a chat presence (typing, recording, paused).
	OpChatPresence = NewOp[ChatPresenceRequest, Empty]("message.presence", LaneSend)
)

// DownloadRequest names the media of a received message, with the fields
// the message carries.
type DownloadRequest struct {
	Kind          string `json:"kind"`
	DirectPath    string `json:"directPath"`
	MediaKey      []byte `json:"mediaKey"`
	FileEncSHA256 []byte `json:"fileEncSHA256"`
	FileSHA256    []byte `json:"fileSHA256"`
	FileLength    int64  `json:"fileLength"`
	Mimetype      string `json:"mimetype,omitempty"`
}

// DownloadResult is the decrypted file.
type DownloadResult struct {
	Mimetype string `json:"mimetype"`
	Data     []byte `json:"data"`
}

// OpDownload downloads and decrypts the media of a received message.
// Returns ENOTFOUND when WhatsApp no longer has it, EINVALID when the
// fields do not match the file.
var OpDownload = NewOp[DownloadRequest, DownloadResult]("message.download", LaneQuery)
