package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// DefaultSentTTL is how long a SentLog remembers a sent message ID.
const DefaultSentTTL = 24 * time.Hour

// SentLog remembers, in Redis, the messages each token sent by ID, so that a
// client retrying a send with the same ID gets the first answer and the
// message is not sent again, whichever connector runs the retry (after a
// failover too). Keys: <prefix>:sent:<token>:<id>, TTL.
type SentLog struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewSentLog returns a SentLog on rdb under prefix ("" for DefaultPrefix).
func NewSentLog(rdb redis.UniversalClient, prefix string) *SentLog {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &SentLog{rdb: rdb, prefix: prefix, ttl: DefaultSentTTL}
}

func (l *SentLog) key(token, id string) string { return l.prefix + ":sent:" + token + ":" + id }

// Sent returns the result of the message id that token sent, if known.
func (l *SentLog) Sent(ctx context.Context, token, id string) (shared.SendResult, bool, error) {
	raw, err := l.rdb.Get(ctx, l.key(token, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return shared.SendResult{}, false, nil
	} else if err != nil {
		return shared.SendResult{}, false, unavailable(err, "read the sent log")
	}
	var res shared.SendResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return shared.SendResult{}, false, shared.Wrap(err, shared.EINTERNAL, "internal error")
	}
	return res, true, nil
}

// RecordSent remembers that token sent the message id with res.
func (l *SentLog) RecordSent(ctx context.Context, token, id string, res shared.SendResult) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := l.rdb.Set(ctx, l.key(token, id), raw, l.ttl).Err(); err != nil {
		return unavailable(err, "write the sent log")
	}
	return nil
}
