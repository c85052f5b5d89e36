package redisbus

import (
	"testing"

	"github.com/wago-gw/wago/shared/webhook/webhooktest"
)

// BenchmarkDistributedDelivery is shared/webhook's BenchmarkEmbeddedDelivery
// on the Redis outbox (16 tokens over 16 shards, all owned): events/s
// delivered to a local receiver and p99-ms from the append to the POST.
func BenchmarkDistributedDelivery(b *testing.B) {
	rdb := MustOpenRedis(b)
	webhooktest.BenchDelivery(b, NewOutbox(rdb, OutboxConfig{Prefix: testPrefix(b, rdb), Shards: 16}), 0, "")
}
