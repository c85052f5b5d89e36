package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wago-gw/wago/connector/waemu"
)

// BenchmarkWebhookKill9 sends messages from the emulator's contact at
// 1,000/s (WAGO_BENCH_WEBHOOK_MESSAGES of them, default 2,000) to a wago
// that posts them to a local receiver, kills the process that holds the
// socket with SIGKILL halfway (embedded: wago itself, on its data
// directory; distributed: the connector, with the API and Redis up) and
// starts it again. It
// reports the messages the emulator accepted (sent), those that never
// reached the receiver (lost), the lost ones the device had acknowledged
// (lost-acked: must be 0) and the extra deliveries (duplicates: the same
// message accepted twice, which its webhook-id lets a receiver drop).
//
// The emulator, as WhatsApp does, delivers again at the next login what a
// socket got but the device never receipted (whatsmeow receipts a message
// only once its handlers, and so the outbox append, returned). WhatsApp
// keeps an offline device's messages for weeks; the emulator keeps 1,000
// by default, raised here so that a distributed connector's outage (its
// lease, 15 s, at 1,000 messages/s) fits.
func BenchmarkWebhookKill9(b *testing.B) {
	total := 2000
	if v := envInt("WAGO_BENCH_WEBHOOK_MESSAGES"); v > 0 {
		total = v
	}
	schedule := "WAGO_WEBHOOK_RETRY_SCHEDULE=200ms,200ms,200ms,200ms,200ms,1s,1s,1s,1s,1s,1s,1s,1s,1s"
	// embedded: the whole process is killed; distributed: the connector
	// (the API and Redis stay up).
	b.Run("embedded", func(b *testing.B) {
		for range b.N {
			emu := startEmulatorWith(b, waemu.Config{MaxPending: 100_000})
			env := append(embeddedEnv(emu, b.TempDir()), schedule)
			p := startWago(b, env)
			p.ok(p.call("POST", "/session/init", `{"Name":"bench-hook","Token":"bench-hook","Os":"linux"}`, "admintoken", adminToken), nil)
			jid := link(b, p, emu, "bench-hook")
			webhookKill9(b, total, emu, p, jid, func() { p.kill(); startWago(b, env) })
		}
	})
	b.Run("distributed", func(b *testing.B) {
		for range b.N {
			e := newDistEnv(b, redisDBWebhookBench)
			emu := startEmulatorWith(b, waemu.Config{MaxPending: 100_000})
			api := startDistAPI(b, e)
			keysDir := b.TempDir()
			conn := startConnectorWithEnv(b, e, emu, keysDir, schedule)
			distInit(api, "bench-hook", "bench-hook")
			jid := distLink(b, api, emu, "bench-hook")
			webhookKill9(b, total, emu, api, jid, func() { conn.kill(); startConnectorWithEnv(b, e, emu, keysDir, schedule) })
		}
	})
}

// webhookKill9 is one run of BenchmarkWebhookKill9 on the linked session
// "bench-hook" (device jid) of api: restart kills the process that holds
// the socket and starts it again.
func webhookKill9(b *testing.B, total int, emu *waemu.Server, api *proc, jid types.JID, restart func()) {
	recv := newHookReceiver(b)
	api.ok(api.call("POST", "/webhook", `{"WebhookURL":"`+recv.srv.URL+`","Secret":"`+hookSecret+`","Events":["Message"]}`, "token", "bench-hook"), nil)
	{
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
		before := logins(emu, jid)
		restarted := time.Now()
		restart()
		senders.Wait()
		// The device logs in again (distributed: once the dead connector's
		// lease ran out), and the emulator delivers what it never receipted.
		waitFor(b, 90*time.Second, "the device to log in again", func() bool { return logins(emu, jid) > before })
		b.Logf("killed, restarted and logged in again in %s", time.Since(restarted).Round(time.Millisecond))

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
			slices.Sort(lostTexts)
			b.Logf("lost %d (the kill was at message %d), e.g. %q; acknowledged by the device: %d", lost, killAt, lostTexts[:min(len(lostTexts), 10)], lostAcked)
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
