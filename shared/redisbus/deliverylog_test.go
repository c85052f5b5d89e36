package redisbus

import (
	"testing"

	"github.com/wago-gw/wago/shared/storetest"
)

// TestDeliveryLog runs the shared DeliveryLog contract on Redis.
func TestDeliveryLog(t *testing.T) {
	rdb := MustOpenRedis(t)
	storetest.DeliveryLog(t, NewDeliveryLog(rdb, testPrefix(t, rdb)))
}
