package dynamo

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wago-gw/wago/shared"
)

// Single-table layout. Every item has the string hash key pk:
//
//	pk = "TOKEN#<token>"  the row: name, token, os, webhook, events (L of S),
//	                      webhookSecret, webhookFormat,
//	                      jid, autoConnect (BOOL), createdAt, updatedAt
//	                      (RFC 3339 with nanoseconds, UTC)
//	pk = "NAME#<name>"    the name's reservation: token
//
// Both items of a row are written and deleted in one transaction, so that a
// Name and a Token are each unique.
const (
	AttrPK            = "pk"
	attrName          = "name"
	attrToken         = "token"
	attrOs            = "os"
	attrWebhook       = "webhook"
	attrEvents        = "events"
	attrWebhookSecret = "webhookSecret"
	attrWebhookFormat = "webhookFormat"
	attrJID           = "jid"
	attrAutoConnect   = "autoConnect"
	attrCreatedAt     = "createdAt"
	attrUpdatedAt     = "updatedAt"

	tokenPrefix = "TOKEN#"
	namePrefix  = "NAME#"
)

func tokenKey(token string) string { return tokenPrefix + token }
func nameKey(name string) string   { return namePrefix + name }

// key returns the primary key map of the item with pk.
func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: str(pk)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func stamp(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberS{Value: t.UTC().Format(time.RFC3339Nano)}
}

func list(vs []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(vs))
	for i, v := range vs {
		l[i] = str(v)
	}
	return &types.AttributeValueMemberL{Value: l}
}

// rowItem returns the TOKEN# item of s.
func rowItem(s *shared.Session) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK:            str(tokenKey(s.Token)),
		attrName:          str(s.Name),
		attrToken:         str(s.Token),
		attrOs:            str(s.Os),
		attrWebhook:       str(s.Webhook),
		attrEvents:        list(s.Events),
		attrWebhookSecret: str(s.WebhookSecret),
		attrWebhookFormat: str(s.WebhookFormat),
		attrJID:           str(s.JID),
		attrAutoConnect:   boolean(s.AutoConnect),
		attrCreatedAt:     stamp(s.CreatedAt),
		attrUpdatedAt:     stamp(s.UpdatedAt),
	}
}

// nameItem returns the NAME# item of s.
func nameItem(s *shared.Session) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK:    str(nameKey(s.Name)),
		attrToken: str(s.Token),
	}
}

// decodeRow turns a TOKEN# item back into a Session. Missing attributes
// read as zero values; attributes of the wrong type are an error.
func decodeRow(item map[string]types.AttributeValue) (*shared.Session, error) {
	s := &shared.Session{Events: []string{}}
	var err error
	getS := func(name string, dst *string) {
		if err != nil {
			return
		}
		switch v := item[name].(type) {
		case nil, *types.AttributeValueMemberNULL:
		case *types.AttributeValueMemberS:
			*dst = v.Value
		default:
			err = fmt.Errorf("attribute %s: want S, have %T", name, v)
		}
	}
	getT := func(name string, dst *time.Time) {
		var raw string
		getS(name, &raw)
		if err != nil || raw == "" {
			return
		}
		*dst, err = time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			err = fmt.Errorf("attribute %s: %w", name, err)
		}
	}
	getS(attrName, &s.Name)
	getS(attrToken, &s.Token)
	getS(attrOs, &s.Os)
	getS(attrWebhook, &s.Webhook)
	getS(attrWebhookSecret, &s.WebhookSecret)
	getS(attrWebhookFormat, &s.WebhookFormat)
	getS(attrJID, &s.JID)
	getT(attrCreatedAt, &s.CreatedAt)
	getT(attrUpdatedAt, &s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	switch v := item[attrAutoConnect].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberBOOL:
		s.AutoConnect = v.Value
	default:
		return nil, fmt.Errorf("attribute %s: want BOOL, have %T", attrAutoConnect, v)
	}
	switch v := item[attrEvents].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberL:
		for i, e := range v.Value {
			es, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("attribute %s[%d]: want S, have %T", attrEvents, i, e)
			}
			s.Events = append(s.Events, es.Value)
		}
	case *types.AttributeValueMemberSS: // tolerated, though never written: order is lost
		s.Events = append(s.Events, v.Value...)
	default:
		return nil, fmt.Errorf("attribute %s: want L, have %T", attrEvents, v)
	}
	return s, nil
}
