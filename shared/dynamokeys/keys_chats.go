package dynamokeys

import (
	"context"
	"github.com/wago-gw/wago/shared/dynamo"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.mau.fi/whatsmeow/store"
	wtypes "go.mau.fi/whatsmeow/types"
)

// Chat settings: T#<chat JID> (muted: Unix seconds, -1 forever; pinned;
// archived), each set on its own as in sqlstore.

func (d *deviceKeys) putChatSetting(ctx context.Context, chat wtypes.JID, attr string, v types.AttributeValue) error {
	_, err := d.k.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.k.table, Key: d.key("T#" + chat.String()).av(),
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": v},
	})
	return wrapErr("put chat setting", err)
}

func (d *deviceKeys) PutMutedUntil(ctx context.Context, chat wtypes.JID, mutedUntil time.Time) error {
	var val int64
	if mutedUntil == store.MutedForever {
		val = -1
	} else if !mutedUntil.IsZero() {
		val = mutedUntil.Unix()
	}
	return d.putChatSetting(ctx, chat, "muted", num(val))
}

func (d *deviceKeys) PutPinned(ctx context.Context, chat wtypes.JID, pinned bool) error {
	return d.putChatSetting(ctx, chat, "pinned", boolean(pinned))
}

func (d *deviceKeys) PutArchived(ctx context.Context, chat wtypes.JID, archived bool) error {
	return d.putChatSetting(ctx, chat, "archived", boolean(archived))
}

func (d *deviceKeys) GetChatSettings(ctx context.Context, chat wtypes.JID) (settings wtypes.LocalChatSettings, err error) {
	item, err := d.k.get(ctx, d.key("T#"+chat.String()))
	if err != nil || item == nil {
		return settings, wrapErr("get chat settings", err)
	}
	settings.Found = true
	settings.Pinned, settings.Archived = getBool(item, "pinned"), getBool(item, "archived")
	if muted := getN(item, "muted"); muted < 0 {
		settings.MutedUntil = store.MutedForever
	} else if muted > 0 {
		settings.MutedUntil = time.Unix(muted, 0)
	}
	return settings, nil
}

// Message secrets: X#<chat>#<sender>#<message ID> (v, sender), both JIDs
// without device. A secret once stored is kept (sqlstore: ON CONFLICT DO
// NOTHING).

const attrSender = "sender"

func (d *deviceKeys) secretKey(chat, sender wtypes.JID, id wtypes.MessageID) itemKey {
	return d.key("X#" + chat.String() + "#" + sender.String() + "#" + id)
}

func (d *deviceKeys) secretItem(chat, sender wtypes.JID, id wtypes.MessageID, secret []byte) map[string]types.AttributeValue {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	return d.secretKey(chat, sender, id).with(map[string]types.AttributeValue{attrV: bin(secret), attrSender: str(sender.String())})
}

// PutMessageSecrets stores the secrets not stored yet: one BatchGetItem
// finds those, BatchWriteItem writes the rest.
func (d *deviceKeys) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	if len(inserts) == 0 {
		return nil
	}
	ctx = withoutTxn(ctx)
	keys := make([]itemKey, len(inserts))
	for i, in := range inserts {
		keys[i] = d.secretKey(in.Chat.ToNonAD(), in.Sender.ToNonAD(), in.ID)
	}
	found, err := d.k.batchGet(ctx, keys)
	if err != nil {
		return wrapErr("get message secrets", err)
	}
	var items []map[string]types.AttributeValue
	for i, in := range inserts {
		if _, ok := found[keys[i]]; ok {
			continue
		}
		found[keys[i]] = nil // the first insert of a key wins
		items = append(items, d.secretItem(in.Chat, in.Sender, in.ID, in.Secret))
	}
	return wrapErr("put message secrets", d.k.batchWrite(ctx, items, nil))
}

func (d *deviceKeys) PutMessageSecret(ctx context.Context, chat, sender wtypes.JID, id wtypes.MessageID, secret []byte) error {
	err := d.k.put(withoutTxn(ctx), d.secretItem(chat, sender, id, secret), "attribute_not_exists(pk)")
	if dynamo.IsConditionFailed(err) {
		err = nil
	}
	return wrapErr("put message secret", err)
}

// GetMessageSecret returns the secret and the sender it was stored with;
// as sqlstore, a chat or sender given as a phone number also finds one
// stored under its LID, and the other way round.
func (d *deviceKeys) GetMessageSecret(ctx context.Context, chat, sender wtypes.JID, id wtypes.MessageID) ([]byte, wtypes.JID, error) {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	item, err := d.k.get(ctx, d.secretKey(chat, sender, id))
	if err != nil {
		return nil, wtypes.JID{}, wrapErr("get message secret", err)
	}
	if item == nil {
		chats, err := d.withAlt(ctx, chat)
		if err != nil {
			return nil, wtypes.JID{}, err
		}
		senders, err := d.withAlt(ctx, sender)
		if err != nil {
			return nil, wtypes.JID{}, err
		}
		var keys []itemKey
		for _, c := range chats {
			for _, s := range senders {
				keys = append(keys, d.secretKey(c, s, id))
			}
		}
		if len(keys) == 1 {
			return nil, wtypes.JID{}, nil
		}
		found, err := d.k.batchGet(ctx, keys[1:])
		if err != nil {
			return nil, wtypes.JID{}, wrapErr("get message secret", err)
		}
		for _, key := range keys[1:] {
			if item = found[key]; item != nil {
				break
			}
		}
		if item == nil {
			return nil, wtypes.JID{}, nil
		}
	}
	realSender, err := wtypes.ParseJID(getS(item, attrSender))
	if err != nil {
		return nil, wtypes.JID{}, wrapErr("get message secret", err)
	}
	return getB(item, attrV), realSender, nil
}

// withAlt returns jid and, if the LID map knows it, its phone number (for
// a LID) or LID (for a phone number).
func (d *deviceKeys) withAlt(ctx context.Context, jid wtypes.JID) ([]wtypes.JID, error) {
	var alt wtypes.JID
	var err error
	switch jid.Server {
	case wtypes.HiddenUserServer:
		alt, err = d.k.LIDMap.GetPNForLID(ctx, jid)
	case wtypes.DefaultUserServer:
		alt, err = d.k.LIDMap.GetLIDForPN(ctx, jid)
	default:
		return []wtypes.JID{jid}, nil
	}
	if err != nil {
		return nil, wrapErr("get LID mapping", err)
	}
	if alt.IsEmpty() {
		return []wtypes.JID{jid}, nil
	}
	return []wtypes.JID{jid, alt.ToNonAD()}, nil
}

// Privacy tokens: P#<JID> (v, ts).

func (d *deviceKeys) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	if len(tokens) == 0 {
		return nil
	}
	items := make([]map[string]types.AttributeValue, len(tokens))
	for i, t := range tokens {
		items[i] = d.key("P#" + t.User.ToNonAD().String()).with(map[string]types.AttributeValue{
			attrV: bin(t.Token), attrTimestamp: num(t.Timestamp.Unix()),
		})
	}
	return wrapErr("put privacy tokens", d.k.batchWrite(ctx, items, nil))
}

// GetPrivacyToken returns the newest token stored for user or for its LID
// or phone number, or nil.
func (d *deviceKeys) GetPrivacyToken(ctx context.Context, user wtypes.JID) (*store.PrivacyToken, error) {
	user = user.ToNonAD()
	jids, err := d.withAlt(ctx, user)
	if err != nil {
		return nil, err
	}
	keys := make([]itemKey, len(jids))
	for i, j := range jids {
		keys[i] = d.key("P#" + j.String())
	}
	found, err := d.k.batchGet(ctx, keys)
	if err != nil {
		return nil, wrapErr("get privacy token", err)
	}
	var best map[string]types.AttributeValue
	for _, key := range keys {
		if item := found[key]; item != nil && (best == nil || getN(item, attrTimestamp) > getN(best, attrTimestamp)) {
			best = item
		}
	}
	if best == nil {
		return nil, nil
	}
	return &store.PrivacyToken{User: user, Token: getB(best, attrV), Timestamp: time.Unix(getN(best, attrTimestamp), 0)}, nil
}
