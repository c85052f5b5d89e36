package redisbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/connectortest"
)

// TestStatus_FollowsTheLease: statuses are stamped with the publishing
// Server's lease. While it renews, a connected session reads connected
// (long after LeaseTTL/2); once it stops renewing (a killed connector) the
// session reads disconnected within LeaseTTL/2, although its status key
// (TTL one minute) is still there, while a logged-out session still reads
// logged out; when another Server owns the shard, a status left by the
// previous owner is not trusted either; and a publisher whose Server's
// lease may have expired writes nothing.
func TestStatus_FollowsTheLease(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	scfg := testServerConfig(prefix)
	scfg.LeaseTTL = 2 * time.Second
	scfg.RedisTimeout = 300 * time.Millisecond
	scfg.ConsumerID = "A"
	a := NewServer(rdb, &connectortest.Fake{}, scfg)
	runServer(t, a)
	eventually(t, 3*time.Second, "A owns every shard", func() bool { return len(a.Owned()) == 4 })

	pcfg := testPublisherConfig(prefix)
	pcfg.StatusTTL = time.Minute
	pcfg.RefreshInterval = 20 * time.Second
	pcfg.Owner = a.OwnerOf
	p := NewStatePublisher(rdb, pcfg)
	runPublisher(t, p)
	ccfg := testClientConfig(prefix)
	ccfg.LeaseTTL = scfg.LeaseTTL
	c := NewClient(rdb, ccfg)

	connected := shared.Status{Connected: true, LoggedIn: true, JID: "1@s.whatsapp.net", State: shared.StateConnected}
	p.Publish("tok", connected, "")
	p.Publish("gone", shared.Status{State: shared.StateLoggedOut}, "")
	eventually(t, 2*time.Second, "published", func() bool {
		sts, err := c.Statuses(ctx, []string{"tok", "gone"})
		return err == nil && sts[0].Connected && sts[1].State == shared.StateLoggedOut
	})
	time.Sleep(scfg.LeaseTTL) // renewed meanwhile
	if st, err := c.Status(ctx, "tok"); err != nil || !st.Connected {
		t.Fatalf("status of a live owner's session after a lease period: %+v, %v", st, err)
	}

	a.frozen.Store(true) // no renewal any more
	killed := time.Now()
	eventually(t, scfg.LeaseTTL/2+scfg.LeaseTTL/3+500*time.Millisecond, "tok to read disconnected", func() bool {
		st, err := c.Status(ctx, "tok")
		return err == nil && !st.Connected && !st.LoggedIn && st.State == shared.StateDisconnected
	})
	took := time.Since(killed)
	t.Logf("a session of a dead connector reads disconnected %v after it stopped (lease TTL %v)", took.Round(time.Millisecond), scfg.LeaseTTL)
	if rdb.Exists(ctx, keys{prefix}.status("tok")).Val() != 1 {
		t.Fatal("the status key expired: the test proves nothing")
	}
	if lease := rdb.Get(ctx, keys{prefix}.lease(ShardOf("tok", 4))).Val(); lease == "" {
		t.Logf("(the lease had expired too)")
	}
	if st, err := c.Status(ctx, "gone"); err != nil || st.State != shared.StateLoggedOut {
		t.Errorf("a logged-out session of a dead connector: %+v, %v", st, err)
	}
	if _, err := c.QR(ctx, "tok"); !errors.Is(err, shared.ErrNoSession) && !errors.Is(err, shared.ErrLinkedNoQR) {
		t.Errorf("QR of a dead connector's session: %v", err)
	}

	// B takes the shards over; A's stamped status stays untrusted, and B's
	// own is read.
	bcfg := scfg
	bcfg.ConsumerID = "B"
	b := NewServer(rdb, &connectortest.Fake{}, bcfg)
	runServer(t, b)
	eventually(t, 2*scfg.LeaseTTL, "B owns every shard", func() bool { return len(b.Owned()) == 4 })
	if st, err := c.Status(ctx, "tok"); err != nil || st.Connected {
		t.Fatalf("a status written under A's lease, read under B's: %+v, %v", st, err)
	}
	pcfg.Owner = b.OwnerOf
	pb := NewStatePublisher(rdb, pcfg)
	runPublisher(t, pb)
	pb.Publish("tok", connected, "")
	eventually(t, 2*time.Second, "B's status", func() bool {
		st, err := c.Status(ctx, "tok")
		return err == nil && st.Connected
	})

	// A, paused past its lease's expiry and not yet aware of its loss,
	// writes nothing over B's status.
	p.Publish("tok", shared.Status{State: shared.StateConnecting}, "")
	time.Sleep(300 * time.Millisecond)
	if st, err := c.Status(ctx, "tok"); err != nil || !st.Connected {
		t.Errorf("A overwrote B's status: %+v, %v", st, err)
	}
}
