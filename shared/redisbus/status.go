package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
)

// Live status that does not outlive its connector.
//
// The StatePublisher of a connector stamps every status it writes with the
// lease of the token's shard it holds ("<consumerID>:<epoch>", see lease.go)
// and writes none for a shard it does not own. A reader fetches, in the same
// pipeline as the status keys, the lease and its PTTL of every shard
// concerned, and trusts a running state (connecting, qr, pairing,
// connected) only while the lease is the one the status was written under
// and was renewed within LeaseTTL/2 (a live owner renews every LeaseTTL/3).
// So when a connector dies its sessions read disconnected within LeaseTTL/2
// (7.5 s by default), and a status left by a previous owner never reads
// connected under the next one: the next owner writes its own. Other states
// (logged_out, failed, ...) are read as written. An unstamped status is
// trusted as is.

// storedStatus is the value of a status key.
type storedStatus struct {
	shared.Status
	// Owner is the lease the status was written under; "" for none.
	Owner string `json:"owner,omitempty"`
}

// shardLease is what a reader fetched of a shard's lease.
type shardLease struct {
	value *redis.StringCmd
	pttl  *redis.DurationCmd
}

// queueLeases adds to pipe a GET and a PTTL of the lease of every shard of
// tokens (each shard once).
func (c *Client) queueLeases(ctx context.Context, pipe redis.Pipeliner, tokens []string) map[int]shardLease {
	out := make(map[int]shardLease)
	for _, token := range tokens {
		shard := ShardOf(token, c.cfg.Shards)
		if _, ok := out[shard]; !ok {
			key := c.keys.lease(shard)
			out[shard] = shardLease{value: pipe.Get(ctx, key), pttl: pipe.PTTL(ctx, key)}
		}
	}
	return out
}

// decodeStatus decodes a GET of a status key and checks it against the
// lease of its shard; ok is false when the key is missing.
func (c *Client) decodeStatus(token string, cmd *redis.StringCmd, leases map[int]shardLease) (st shared.Status, ok bool, err error) {
	raw, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return shared.Status{}, false, nil
	} else if err != nil {
		return shared.Status{}, false, unavailable(err, "read status")
	}
	st, _, err = c.decodeStatusValue(token, raw, leases)
	return st, err == nil, err
}

// decodeStatusValue decodes raw, the value of token's status key, and
// checks it against the lease of its shard. holds is how long after the
// read the status passes that check, 0 when it does not depend on it.
func (c *Client) decodeStatusValue(token string, raw []byte, leases map[int]shardLease) (st shared.Status, holds time.Duration, err error) {
	var s storedStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return shared.Status{}, 0, shared.Wrap(fmt.Errorf("failed to decode status: %w", err), shared.EINTERNAL, "internal error")
	}
	if s.Owner == "" || !shared.ClientRunning(s.State) {
		return s.Status, 0, nil
	}
	l := leases[ShardOf(token, c.cfg.Shards)]
	value, err := l.value.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return shared.Status{}, 0, unavailable(err, "read lease")
	}
	if value == s.Owner && l.pttl.Val() > c.cfg.LeaseTTL/2 {
		return s.Status, l.pttl.Val() - c.cfg.LeaseTTL/2, nil
	}
	// Its connector died or gave the shard up: no client runs for it now.
	return shared.Status{State: shared.StateDisconnected, JID: s.JID}, 0, nil
}

// Status implements shared.Connector: it reads the status key the owning
// connector publishes. A missing key (no client runs, or its connector died
// more than the status TTL ago) is StateDisconnected, and so is a running
// state whose connector is gone.
func (c *Client) Status(ctx context.Context, token string) (shared.Status, error) {
	sts, err := c.Statuses(ctx, []string{token})
	if err != nil {
		return shared.Status{}, err
	}
	return sts[0], nil
}

// Statuses implements shared.Connector with one pipelined round trip: the
// status keys, and the lease of each shard concerned; short lists share
// it with the reads of other callers (see statusbatch.go). With
// ClientConfig.StatusCache, statuses read lately come from the cache
// (statuscache.go).
func (c *Client) Statuses(ctx context.Context, tokens []string) ([]shared.Status, error) {
	if len(tokens) == 0 {
		return []shared.Status{}, nil
	}
	if c.cache != nil {
		if sts, ok := c.cache.get(tokens); ok {
			return sts, nil
		}
	}
	if len(tokens) <= batchedStatuses {
		return c.batchStatuses(ctx, tokens)
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	r := &statusRead{tokens: tokens}
	c.readStatuses(actx, []*statusRead{r})
	return r.out, r.err
}

// QR implements shared.Live from the published keys, with shared.QRCode:
// a missing status key is a session without a client.
func (c *Client) QR(ctx context.Context, token string) (string, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	stCmd := pipe.Get(actx, c.keys.status(token))
	qrCmd := pipe.Get(actx, c.keys.qr(token))
	leases := c.queueLeases(actx, pipe, []string{token})
	if _, err := pipe.Exec(actx); err != nil && !errors.Is(err, redis.Nil) {
		return "", unavailable(err, "read QR code")
	}
	st, ok, err := c.decodeStatus(token, stCmd, leases)
	if err != nil {
		return "", err
	} else if !ok {
		return "", shared.ErrNoSession
	}
	code, err := qrCmd.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", unavailable(err, "read QR code")
	}
	return shared.QRCode(st, code)
}
