package shared

// The users and calls areas: who is on WhatsApp, their profile, the
// device's own presence, and incoming calls. Questions run in LaneQuery;
// what changes state (presence, call reject) in LaneSend, in order with
// the token's sends.

// UserCheck is one answer of OpUserCheck.
type UserCheck struct {
	Query        string `json:"Query"`
	IsInWhatsapp bool   `json:"IsInWhatsapp"`
	JID          string `json:"JID"`
	VerifiedName string `json:"VerifiedName"`
}

// UserInfo is one answer of OpUserInfo.
type UserInfo struct {
	JID          string   `json:"JID"`
	VerifiedName string   `json:"VerifiedName"`
	Status       string   `json:"Status"`
	PictureID    string   `json:"PictureID"`
	Devices      []string `json:"Devices"`
	LID          string   `json:"LID,omitempty"`
}

// AvatarRequest asks for a user's profile picture; Preview for the thumbnail.
type AvatarRequest struct {
	JID     string `json:"jid"`
	Preview bool   `json:"preview,omitempty"`
}

// Avatar is a profile picture: where to download it.
type Avatar struct {
	URL        string `json:"URL"`
	ID         string `json:"ID"`
	Type       string `json:"Type"`
	DirectPath string `json:"DirectPath"`
}

// CallRejectRequest rejects an incoming call.
type CallRejectRequest struct {
	From   string `json:"from"`
	CallID string `json:"callId"`
}

// The users and calls ops. Each returns ErrNoSession or ErrNotLoggedIn
// when the device is not connected, EUNAVAILABLE when WhatsApp does not
// answer.
var (
	// OpUserCheck answers, per phone number (digits), whether it is on
	// WhatsApp and its JID.
	OpUserCheck = NewOp[[]string, []UserCheck]("user.check", LaneQuery)
	// OpUserInfo answers the profile of user JIDs.
	OpUserInfo = NewOp[[]string, []UserInfo]("user.info", LaneQuery)
	// OpUserAvatar answers a user's profile picture; ENOTFOUND when there
	// is none (or it is not visible).
	OpUserAvatar = NewOp[AvatarRequest, Avatar]("user.avatar", LaneQuery)
	// OpUserPresence sets the device's own presence: "available" or
	// "unavailable".
	OpUserPresence = NewOp[string, Empty]("user.presence", LaneSend)
	// OpCallReject rejects an incoming call.
	OpCallReject = NewOp[CallRejectRequest, Empty]("call.reject", LaneSend)
)
