package webhook_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wago-gw/wago/shared/sqlite"
	"github.com/wago-gw/wago/shared/webhook/webhooktest"
)

// BenchmarkEmbeddedDelivery appends b.N events of 16 tokens (one goroutine
// each) to a SQLite outbox as fast as it takes them, and waits until a
// local receiver has them all: events/s is the delivered rate, p99-ms the
// latency from the append to the POST (under this overload, mostly queueing).
func BenchmarkEmbeddedDelivery(b *testing.B) { benchEmbedded(b, 0) }

// BenchmarkEmbeddedDeliveryAt1000 appends at 1,000 events/s (open loop):
// p99-ms is the latency from the append to the POST at that rate.
func BenchmarkEmbeddedDeliveryAt1000(b *testing.B) { benchEmbedded(b, 1000) }

// benchEmbedded delivers b.N events appended as fast as possible (rate 0)
// or at rate events/s, from a SQLite outbox.
func benchEmbedded(b *testing.B, rate int) {
	outbox, err := sqlite.OpenOutbox(context.Background(), filepath.Join(b.TempDir(), "outbox.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer outbox.Close()
	webhooktest.BenchDelivery(b, outbox, rate, secret)
}
