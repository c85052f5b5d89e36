package connector

import (
	"context"
	"errors"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/shared"
)

// Users and calls: who is on WhatsApp, profiles, the device's presence,
// rejecting calls.

func init() {
	handle(shared.OpUserCheck, (*Manager).userCheck)
	handle(shared.OpUserInfo, (*Manager).userInfo)
	handle(shared.OpUserAvatar, (*Manager).userAvatar)
	handle(shared.OpUserPresence, (*Manager).userPresence)
	handle(shared.OpCallReject, (*Manager).callReject)
}

// queryError maps a failed query to WhatsApp to a client-safe error.
func (m *Manager) queryError(ctx context.Context, s *session, err error) error {
	m.log.Warn("query failed", "session", s.logID, "err", err)
	if ctx.Err() != nil {
		return stopped(ctx)
	}
	if errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn) {
		return shared.ErrNotLoggedIn
	}
	return shared.Wrap(err, shared.EUNAVAILABLE, "WhatsApp did not answer the query")
}

func (m *Manager) userCheck(ctx context.Context, token string, phones []string) ([]shared.UserCheck, error) {
	var out []shared.UserCheck
	err := m.withClient(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		query := make([]string, len(phones))
		for i, p := range phones {
			query[i] = "+" + p
		}
		resp, err := cli.IsOnWhatsApp(ctx, query)
		if err != nil {
			return m.queryError(ctx, s, err)
		}
		byQuery := make(map[string]types.IsOnWhatsAppResponse, len(resp))
		for _, r := range resp {
			byQuery[r.Query] = r
		}
		for i, p := range phones {
			c := shared.UserCheck{Query: p}
			if r, ok := byQuery[query[i]]; ok {
				c.IsInWhatsapp = r.IsIn
				if r.IsIn {
					c.JID = r.JID.String()
				}
				if r.VerifiedName != nil && r.VerifiedName.Details != nil {
					c.VerifiedName = r.VerifiedName.Details.GetVerifiedName()
				}
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

func (m *Manager) userInfo(ctx context.Context, token string, users []string) ([]shared.UserInfo, error) {
	var out []shared.UserInfo
	err := m.withClient(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(users...)
		if err != nil {
			return err
		}
		info, err := cli.GetUserInfo(ctx, jids)
		if err != nil {
			return m.queryError(ctx, s, err)
		}
		for _, jid := range jids {
			i, ok := info[jid]
			if !ok {
				continue
			}
			u := shared.UserInfo{JID: jid.String(), Status: i.Status, PictureID: i.PictureID, Devices: []string{}}
			if i.VerifiedName != nil && i.VerifiedName.Details != nil {
				u.VerifiedName = i.VerifiedName.Details.GetVerifiedName()
			}
			if !i.LID.IsEmpty() {
				u.LID = i.LID.String()
			}
			for _, d := range i.Devices {
				u.Devices = append(u.Devices, d.String())
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

func (m *Manager) userAvatar(ctx context.Context, token string, req shared.AvatarRequest) (shared.Avatar, error) {
	var out shared.Avatar
	err := m.withClient(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(req.JID)
		if err != nil {
			return err
		}
		pic, err := cli.GetProfilePictureInfo(ctx, jids[0], &whatsmeow.GetProfilePictureParams{Preview: req.Preview})
		switch {
		case errors.Is(err, whatsmeow.ErrProfilePictureNotSet), errors.Is(err, whatsmeow.ErrProfilePictureUnauthorized):
			return shared.Errorf(shared.ENOTFOUND, "no profile picture")
		case err != nil:
			return m.queryError(ctx, s, err)
		case pic == nil:
			return shared.Errorf(shared.ENOTFOUND, "no profile picture")
		}
		out = shared.Avatar{URL: pic.URL, ID: pic.ID, Type: pic.Type, DirectPath: pic.DirectPath}
		return nil
	})
	return out, err
}

func (m *Manager) userPresence(ctx context.Context, token string, state string) (shared.Empty, error) {
	return shared.Empty{}, m.inLane(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		p := types.PresenceAvailable
		if state == string(types.PresenceUnavailable) {
			p = types.PresenceUnavailable
		}
		if err := cli.SendPresence(ctx, p); err != nil {
			return m.queryError(ctx, s, err)
		}
		return nil
	})
}

func (m *Manager) callReject(ctx context.Context, token string, req shared.CallRejectRequest) (shared.Empty, error) {
	return shared.Empty{}, m.inLane(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(req.From)
		if err != nil {
			return err
		}
		if err := cli.RejectCall(ctx, jids[0], req.CallID); err != nil {
			return m.queryError(ctx, s, err)
		}
		return nil
	})
}
