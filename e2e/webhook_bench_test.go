package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wago-gw/wago/connector/waemu"
)

// BenchmarkWebhookKill9 sends messages from the emulator's contact at
// 1,000/s (WAGO_BENCH_WEBHOOK_MESSAGES of them, default 2,000) to an
// embedded wago that posts them to a local receiver, kills wago with
// SIGKILL halfway and starts it again on the same data directory. It
// reports the messages the emulator accepted (sent), those that never
// reached the receiver (lost), the lost ones the device had acknowledged
// (lost-acked: must be 0) and the extra deliveries (duplicates: the same
// message accepted twice, which its webhook-id lets a receiver drop).
//
// The emulator, as WhatsApp does, delivers again at the next login what a
// socket got but the device never receipted (whatsmeow receipts a message
// only once its handlers, and so the outbox append, returned), and keeps at
// most 1,000 messages for an offline device.
func BenchmarkWebhookKill9(b *testing.B) {
	total := 2000
	if v := envInt("WAGO_BENCH_WEBHOOK_MESSAGES"); v > 0 {
		total = v
	}
	for range b.N {
		emu := startEmulator(b)
		recv := newHookReceiver(b)
		dataDir := b.TempDir()
		env := append(embeddedEnv(emu, dataDir), "WAGO_WEBHOOK_RETRY_SCHEDULE=200ms,200ms,200ms,200ms,200ms,1s,1s,1s,1s,1s,1s,1s,1s,1s")
		p := startWago(b, env)
		const token = "bench-hook"
		p.ok(p.call("POST", "/session/init", `{"Name":"bench-hook","Token":"`+token+`","Os":"linux"}`, "admintoken", adminToken), nil)
		jid := link(b, p, emu, token)
		p.ok(p.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", token), nil)

		var (
			sentLock sync.Mutex
			sent     = map[string]string{} // text -> message ID
			next     atomic.Int64
			senders  sync.WaitGroup
		)
		start := time.Now()
		killAt := total / 2
		killed := make(chan struct{})
		for range 8 {
			senders.Add(1)
			go func() {
				defer senders.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					// Open loop: message i leaves at i ms.
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
					if i == killAt {
						close(killed)
					}
					text := fmt.Sprintf("bench %d", i)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					id, err := emu.SendTextFromContact(ctx, jid.ToNonAD(), text)
					cancel()
					if err == nil {
						sentLock.Lock()
						sent[text] = id
						sentLock.Unlock()
					}
				}
			}()
		}
		<-killed
		p.kill()
		restarted := time.Now()
		startWago(b, env)
		b.Logf("wago restarted in %s", time.Since(restarted).Round(time.Millisecond))
		senders.Wait()

		// Wait until every sent message arrived, or nothing new arrives for 10 s.
		last, lastChange := -1, time.Now()
		for time.Since(lastChange) < 10*time.Second {
			got := len(recv.received())
			if got != last {
				last, lastChange = got, time.Now()
			}
			if got >= len(sent) {
				delivered := map[string]bool{}
				for _, h := range recv.received() {
					delivered[h.text()] = true
				}
				if len(delivered) >= len(sent) {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		count := map[string]int{}
		for _, h := range recv.received() {
			count[h.text()]++
		}
		lost, dups := 0, 0
		// A lost message that the device acknowledged (a delivery receipt
		// reached the contact) is wago's fault: WhatsApp will not send it
		// again. One never acknowledged, WhatsApp would send again.
		acked := map[string]bool{}
		for _, m := range emu.ContactInbox() {
			if m.Kind == waemu.InboxReceipt {
				acked[m.ID] = true
			}
		}
		var lostTexts []string
		lostAcked := 0
		for text, id := range sent {
			if count[text] == 0 {
				lost++
				lostTexts = append(lostTexts, text)
				if acked[id] {
					lostAcked++
				}
			}
		}
		if lost > 0 {
			b.Logf("lost (the kill was at message %d): %q; acknowledged by the device: %d", killAt, lostTexts, lostAcked)
		}
		b.ReportMetric(float64(lostAcked), "lost-acked")
		b.ReportMetric(float64(len(acked)), "acked")
		for _, n := range count {
			dups += max(0, n-1)
		}
		b.ReportMetric(float64(len(sent)), "sent")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(dups), "duplicates")
	}
}

// envInt reads a positive whole number from the environment (0 if unset
// or invalid).
func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
