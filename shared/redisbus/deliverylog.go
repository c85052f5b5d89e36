package redisbus

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// DefaultDeliveryLogTTL is how long a token's delivery records outlive its
// last delivery.
const DefaultDeliveryLogTTL = 24 * time.Hour

// DeliveryLog is the shared.DeliveryLog of the distributed roles: the
// connectors' delivery workers record, the api role reads. Key: a list
// <prefix>:deliveries:<token> of JSON records, newest first, at most
// shared.MaxRecentDeliveries, with a TTL.
type DeliveryLog struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewDeliveryLog returns a DeliveryLog on rdb under prefix ("" for
// DefaultPrefix).
func NewDeliveryLog(rdb redis.UniversalClient, prefix string) *DeliveryLog {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &DeliveryLog{rdb: rdb, prefix: prefix, ttl: DefaultDeliveryLogTTL}
}

func (l *DeliveryLog) key(token string) string { return l.prefix + ":deliveries:" + token }

// recordScript drops the record of the same event (its JSON starts with
// {"id":"<id>"), pushes the new one, trims the list and renews its TTL.
var recordScript = redis.NewScript(`
local head = ARGV[1]
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
	if string.sub(v, 1, #head) == head then
		redis.call('LREM', KEYS[1], 1, v)
		break
	end
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Record implements shared.DeliveryLog.
func (l *DeliveryLog) Record(ctx context.Context, token string, r shared.DeliveryRecord) error {
	raw, err := json.Marshal(r) // "id" is DeliveryRecord's first field
	if err != nil {
		return err
	}
	id, _ := json.Marshal(r.ID)
	head := `{"id":` + string(id) + `,`
	err = recordScript.Run(ctx, l.rdb, []string{l.key(token)}, head, raw,
		strconv.Itoa(shared.MaxRecentDeliveries), strconv.FormatInt(l.ttl.Milliseconds(), 10)).Err()
	if err != nil {
		return unavailable(err, "record a webhook delivery")
	}
	return nil
}

// Recent implements shared.DeliveryLog.
func (l *DeliveryLog) Recent(ctx context.Context, token string) ([]shared.DeliveryRecord, error) {
	raws, err := l.rdb.LRange(ctx, l.key(token), 0, shared.MaxRecentDeliveries-1).Result()
	if err != nil {
		return nil, unavailable(err, "read the webhook deliveries")
	}
	out := make([]shared.DeliveryRecord, 0, len(raws))
	for _, raw := range raws {
		var r shared.DeliveryRecord
		if json.Unmarshal([]byte(raw), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
