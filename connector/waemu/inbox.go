package waemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// mediaDownloadTimeout bounds the contact's download of a received media message.
const mediaDownloadTimeout = 30 * time.Second

// InboxKind says what an InboxMessage records.
type InboxKind string

// Kinds of InboxMessage.
const (
	// InboxText is a text (Conversation, or ExtendedTextMessage with Extended set).
	InboxText InboxKind = "text"
	// InboxImage is an image message (Media, Caption).
	InboxImage InboxKind = "image"
	// InboxVideo is a video message (Media, Caption).
	InboxVideo InboxKind = "video"
	// InboxAudio is an audio message (Media; Media.PTT for voice notes).
	InboxAudio InboxKind = "audio"
	// InboxDocument is a document (Media with FileName, Caption).
	InboxDocument InboxKind = "document"
	// InboxSticker is a sticker (Media).
	InboxSticker InboxKind = "sticker"
	// InboxLocation is a location (Latitude, Longitude, LocationName, LocationAddress).
	InboxLocation InboxKind = "location"
	// InboxContact is a contact card (DisplayName, VCard).
	InboxContact InboxKind = "contact"
	// InboxPoll is a poll creation (PollQuestion, PollOptions, PollSelectable).
	InboxPoll InboxKind = "poll"
	// InboxReaction is a reaction (TargetID, Reaction; an empty Reaction removes one).
	InboxReaction InboxKind = "reaction"
	// InboxEdit is an edit (TargetID, Text = the new text).
	InboxEdit InboxKind = "edit"
	// InboxRevoke is a revoke "for everyone" (TargetID).
	InboxRevoke InboxKind = "revoke"
	// InboxOther is any other message (see Message).
	InboxOther InboxKind = "other"
	// InboxReceipt is a receipt the contact received for a message it sent (ID,
	// ReceiptType: "" delivered, "read", "played", ...), one entry per message ID.
	InboxReceipt InboxKind = "receipt"
	// InboxChatPresence is a chat state the contact received (State: composing or
	// paused; PresenceMedia "audio" means recording).
	InboxChatPresence InboxKind = "chat_presence"
)

// InboxMessage is something the built-in contact received. Which fields are set
// depends on Kind (see the InboxKind constants); From, Time and, for messages and
// receipts, ID are always set.
type InboxMessage struct {
	// Kind is what the entry records.
	Kind InboxKind `json:"kind"`
	// From is the sending device (with its device part).
	From types.JID `json:"from"`
	// ID is the message ID (for receipts: the ID of the contact's message).
	ID string `json:"id,omitempty"`
	// Time is the server timestamp of the message or receipt (for chat presence: when
	// the contact got it).
	Time time.Time `json:"time"`
	// PushName is the sender's push name as relayed (notify).
	PushName string `json:"push_name,omitempty"`

	// Text is the text of an InboxText entry and the new text of an InboxEdit.
	Text string `json:"text,omitempty"`
	// Extended is true when the text came as an ExtendedTextMessage.
	Extended bool `json:"extended,omitempty"`
	// Caption is the caption of an image, video or document.
	Caption string `json:"caption,omitempty"`
	// QuotedID and QuotedParticipant are the quoted message's StanzaID and participant
	// (ContextInfo of a reply); Mentions are the mentioned JIDs.
	QuotedID          string   `json:"quoted_id,omitempty"`
	QuotedParticipant string   `json:"quoted_participant,omitempty"`
	Mentions          []string `json:"mentions,omitempty"`

	// Media describes an image, video, audio, document or sticker and what the contact
	// downloaded of it.
	Media *InboxMedia `json:"media,omitempty"`

	// Latitude, Longitude, LocationName and LocationAddress describe a location.
	Latitude        float64 `json:"latitude,omitempty"`
	Longitude       float64 `json:"longitude,omitempty"`
	LocationName    string  `json:"location_name,omitempty"`
	LocationAddress string  `json:"location_address,omitempty"`

	// DisplayName and VCard describe a contact card.
	DisplayName string `json:"display_name,omitempty"`
	VCard       string `json:"vcard,omitempty"`

	// PollQuestion, PollOptions and PollSelectable describe a poll creation
	// (PollSelectable 0 means any number of options).
	PollQuestion   string   `json:"poll_question,omitempty"`
	PollOptions    []string `json:"poll_options,omitempty"`
	PollSelectable int      `json:"poll_selectable,omitempty"`

	// TargetID is the message a reaction, edit or revoke is about.
	TargetID string `json:"target_id,omitempty"`
	// Reaction is a reaction's emoji; "" removes the reaction.
	Reaction string `json:"reaction,omitempty"`

	// ReceiptType is the type of an InboxReceipt: "" (delivered), "read", ...
	ReceiptType string `json:"receipt_type,omitempty"`

	// State and PresenceMedia describe an InboxChatPresence.
	State         string `json:"state,omitempty"`
	PresenceMedia string `json:"presence_media,omitempty"`

	// Message is the received (unwrapped) message; shared, do not modify.
	Message *waE2E.Message `json:"-"`
}

// InboxMedia is the media of a received message: what the message declared and what
// the contact downloaded (through the emulator's media host) and decrypted.
type InboxMedia struct {
	// Mimetype, FileName (documents), PTT (voice notes) and Seconds are as declared.
	Mimetype string `json:"mimetype,omitempty"`
	FileName string `json:"file_name,omitempty"`
	PTT      bool   `json:"ptt,omitempty"`
	Seconds  uint32 `json:"seconds,omitempty"`
	// FileLength is the declared plaintext length.
	FileLength uint64 `json:"file_length"`
	// URL and DirectPath are where the message says the media is.
	URL        string `json:"url,omitempty"`
	DirectPath string `json:"direct_path,omitempty"`
	// SHA256 is the hex SHA-256 of the downloaded, decrypted bytes and Length their
	// length; both are empty when DownloadError is set.
	SHA256 string `json:"sha256,omitempty"`
	Length int    `json:"length"`
	// DownloadError is why the download failed, if it did.
	DownloadError string `json:"download_error,omitempty"`
}

// contextInfoHolder is implemented by the message types that can quote and mention.
type contextInfoHolder interface {
	GetContextInfo() *waE2E.ContextInfo
}

// inboxEntry turns a received message into an inbox entry, downloading its media.
func inboxEntry(ctx context.Context, cli *whatsmeow.Client, v *events.Message) InboxMessage {
	msg := v.Message
	e := InboxMessage{Kind: InboxOther, From: v.Info.Sender, ID: v.Info.ID, Time: v.Info.Timestamp, PushName: v.Info.PushName, Message: msg}
	var ci contextInfoHolder
	var media whatsmeow.DownloadableMessage
	switch {
	case msg.Conversation != nil:
		e.Kind, e.Text = InboxText, msg.GetConversation()
	case msg.ExtendedTextMessage != nil:
		e.Kind, e.Text, e.Extended = InboxText, msg.GetExtendedTextMessage().GetText(), true
		ci = msg.ExtendedTextMessage
	case msg.ImageMessage != nil:
		m := msg.ImageMessage
		e.Kind, e.Caption, ci, media = InboxImage, m.GetCaption(), m, m
		e.Media = &InboxMedia{Mimetype: m.GetMimetype(), FileLength: m.GetFileLength(), URL: m.GetURL(), DirectPath: m.GetDirectPath()}
	case msg.VideoMessage != nil:
		m := msg.VideoMessage
		e.Kind, e.Caption, ci, media = InboxVideo, m.GetCaption(), m, m
		e.Media = &InboxMedia{Mimetype: m.GetMimetype(), Seconds: m.GetSeconds(), FileLength: m.GetFileLength(), URL: m.GetURL(), DirectPath: m.GetDirectPath()}
	case msg.AudioMessage != nil:
		m := msg.AudioMessage
		e.Kind, ci, media = InboxAudio, m, m
		e.Media = &InboxMedia{Mimetype: m.GetMimetype(), PTT: m.GetPTT(), Seconds: m.GetSeconds(), FileLength: m.GetFileLength(), URL: m.GetURL(), DirectPath: m.GetDirectPath()}
	case msg.DocumentMessage != nil:
		m := msg.DocumentMessage
		e.Kind, e.Caption, ci, media = InboxDocument, m.GetCaption(), m, m
		e.Media = &InboxMedia{Mimetype: m.GetMimetype(), FileName: m.GetFileName(), FileLength: m.GetFileLength(), URL: m.GetURL(), DirectPath: m.GetDirectPath()}
	case msg.StickerMessage != nil:
		m := msg.StickerMessage
		e.Kind, ci, media = InboxSticker, m, m
		e.Media = &InboxMedia{Mimetype: m.GetMimetype(), FileLength: m.GetFileLength(), URL: m.GetURL(), DirectPath: m.GetDirectPath()}
	case msg.LocationMessage != nil:
		m := msg.LocationMessage
		e.Kind, ci = InboxLocation, m
		e.Latitude, e.Longitude, e.LocationName, e.LocationAddress = m.GetDegreesLatitude(), m.GetDegreesLongitude(), m.GetName(), m.GetAddress()
	case msg.ContactMessage != nil:
		m := msg.ContactMessage
		e.Kind, ci = InboxContact, m
		e.DisplayName, e.VCard = m.GetDisplayName(), m.GetVcard()
	case msg.PollCreationMessage != nil || msg.PollCreationMessageV2 != nil || msg.PollCreationMessageV3 != nil:
		m := msg.GetPollCreationMessage()
		if m == nil {
			m = msg.GetPollCreationMessageV2()
		}
		if m == nil {
			m = msg.GetPollCreationMessageV3()
		}
		e.Kind, ci = InboxPoll, m
		e.PollQuestion, e.PollSelectable = m.GetName(), int(m.GetSelectableOptionsCount())
		for _, o := range m.GetOptions() {
			e.PollOptions = append(e.PollOptions, o.GetOptionName())
		}
	case msg.ReactionMessage != nil:
		e.Kind, e.TargetID, e.Reaction = InboxReaction, msg.ReactionMessage.GetKey().GetID(), msg.ReactionMessage.GetText()
	case msg.ProtocolMessage != nil:
		pm := msg.ProtocolMessage
		switch pm.GetType() {
		case waE2E.ProtocolMessage_REVOKE:
			e.Kind, e.TargetID = InboxRevoke, pm.GetKey().GetID()
		case waE2E.ProtocolMessage_MESSAGE_EDIT:
			e.Kind, e.TargetID = InboxEdit, pm.GetKey().GetID()
			e.Text = editedText(pm.GetEditedMessage())
		}
	}
	if ci != nil {
		if info := ci.GetContextInfo(); info != nil {
			e.QuotedID, e.QuotedParticipant, e.Mentions = info.GetStanzaID(), info.GetParticipant(), info.GetMentionedJID()
		}
	}
	if media != nil {
		dctx, cancel := context.WithTimeout(ctx, mediaDownloadTimeout)
		data, err := cli.Download(dctx, media)
		cancel()
		if err != nil {
			e.Media.DownloadError = err.Error()
		} else {
			sum := sha256.Sum256(data)
			e.Media.SHA256, e.Media.Length = hex.EncodeToString(sum[:]), len(data)
		}
	}
	return e
}

// editedText is the text of an edit's new content (a text or a media caption).
func editedText(m *waE2E.Message) string {
	switch {
	case m.Conversation != nil:
		return m.GetConversation()
	case m.ExtendedTextMessage != nil:
		return m.GetExtendedTextMessage().GetText()
	case m.ImageMessage != nil:
		return m.GetImageMessage().GetCaption()
	case m.VideoMessage != nil:
		return m.GetVideoMessage().GetCaption()
	case m.DocumentMessage != nil:
		return m.GetDocumentMessage().GetCaption()
	}
	return ""
}
