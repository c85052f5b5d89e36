package connector

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wago-gw/wago/shared"
)

// Operations on messages: react, edit, revoke, mark read, chat presence.
// They run in the token's send lane, in order with its sends.

func init() {
	handle(shared.OpReact, (*Manager).react)
	handle(shared.OpEdit, (*Manager).edit)
	handle(shared.OpRevoke, (*Manager).revoke)
	handle(shared.OpMarkRead, (*Manager).markRead)
	handle(shared.OpChatPresence, (*Manager).chatPresence)
}

// inLane runs fn with the token's logged-in client, in its send lane.
func (m *Manager) inLane(ctx context.Context, token string, fn func(s *session, cli *whatsmeow.Client) error) error {
	return m.withClient(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		s.outbox.lock.Lock()
		defer s.outbox.lock.Unlock()
		return fn(s, cli)
	})
}

// withClient runs fn with the token's logged-in client, in no lane: for
// questions to WhatsApp that need no order.
func (m *Manager) withClient(ctx context.Context, token string, fn func(s *session, cli *whatsmeow.Client) error) error {
	s, cli, err := m.loggedIn(ctx, token)
	if err != nil {
		return err
	}
	return fn(s, cli)
}

// parseJIDs parses JIDs the API checked.
func parseJIDs(ss ...string) ([]types.JID, error) {
	out := make([]types.JID, len(ss))
	for i, s := range ss {
		if s == "" {
			continue
		}
		jid, err := types.ParseJID(s)
		if err != nil {
			return nil, shared.Errorf(shared.EINVALID, "invalid JID %q", s)
		}
		out[i] = jid
	}
	return out, nil
}

// sendBuilt sends a protocol message built for chat and answers its result.
func (m *Manager) sendBuilt(ctx context.Context, token, chat string, build func(cli *whatsmeow.Client, chat types.JID) (*waE2E.Message, error)) (shared.SendResult, error) {
	var res shared.SendResult
	err := m.inLane(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(chat)
		if err != nil {
			return err
		}
		msg, err := build(cli, jids[0])
		if err != nil {
			return err
		}
		resp, err := cli.SendMessage(ctx, jids[0], msg)
		if err != nil {
			return m.sendError(ctx, s, err)
		}
		m.metrics.sent.Inc()
		res = shared.SendResult{ID: resp.ID, Timestamp: resp.Timestamp.Unix()}
		return nil
	})
	return res, err
}

// key is the sender of target as BuildMessageKey wants it: empty for the
// device's own messages.
func key(target shared.MessageRef, chat types.JID) (types.JID, error) {
	if target.FromMe {
		return types.EmptyJID, nil
	}
	if target.Sender == "" {
		return chat, nil // a received message in a one-to-one chat
	}
	jids, err := parseJIDs(target.Sender)
	if err != nil {
		return types.EmptyJID, err
	}
	return jids[0], nil
}

func (m *Manager) react(ctx context.Context, token string, req shared.ReactRequest) (shared.SendResult, error) {
	return m.sendBuilt(ctx, token, req.Target.Chat, func(cli *whatsmeow.Client, chat types.JID) (*waE2E.Message, error) {
		sender, err := key(req.Target, chat)
		if err != nil {
			return nil, err
		}
		return cli.BuildReaction(chat, sender, req.Target.ID, req.Emoji), nil
	})
}

func (m *Manager) edit(ctx context.Context, token string, req shared.EditRequest) (shared.SendResult, error) {
	return m.sendBuilt(ctx, token, req.Target.Chat, func(cli *whatsmeow.Client, chat types.JID) (*waE2E.Message, error) {
		return cli.BuildEdit(chat, req.Target.ID, &waE2E.Message{Conversation: proto.String(req.Text)}), nil
	})
}

func (m *Manager) revoke(ctx context.Context, token string, req shared.MessageRef) (shared.SendResult, error) {
	return m.sendBuilt(ctx, token, req.Chat, func(cli *whatsmeow.Client, chat types.JID) (*waE2E.Message, error) {
		sender, err := key(req, chat)
		if err != nil {
			return nil, err
		}
		return cli.BuildRevoke(chat, sender, req.ID), nil
	})
}

func (m *Manager) markRead(ctx context.Context, token string, req shared.MarkReadRequest) (shared.Empty, error) {
	return shared.Empty{}, m.inLane(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(req.Chat, req.Sender)
		if err != nil {
			return err
		}
		sender := jids[1]
		if sender.IsEmpty() {
			sender = jids[0]
		}
		if err := cli.MarkRead(ctx, req.IDs, time.Now(), jids[0], sender); err != nil {
			return m.sendError(ctx, s, err)
		}
		return nil
	})
}

func (m *Manager) chatPresence(ctx context.Context, token string, req shared.ChatPresenceRequest) (shared.Empty, error) {
	return shared.Empty{}, m.inLane(ctx, token, func(s *session, cli *whatsmeow.Client) error {
		jids, err := parseJIDs(req.Chat)
		if err != nil {
			return err
		}
		state, media := types.ChatPresenceComposing, types.ChatPresenceMediaText
		switch req.State {
		case shared.PresencePaused:
			state = types.ChatPresencePaused
		case shared.PresenceRecording:
			media = types.ChatPresenceMediaAudio
		}
		if err := cli.SendChatPresence(ctx, jids[0], state, media); err != nil {
			return m.sendError(ctx, s, err)
		}
		return nil
	})
}
