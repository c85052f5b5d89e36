package redisbus

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/wago-gw/wago/shared"
)

// The message format between Client and Server, and the Redis key layout.
//
// Every key of one shard carries the hash tag {<shard>} so that the keys a
// Lua script touches together (stream, lease, epoch, done markers) live in
// one Redis Cluster slot:
//
//	<prefix>:cmd:{<shard>}          stream of commands (XADD MAXLEN ~)
//	<prefix>:lease:{<shard>}        "<consumerID>:<epoch>", PX LeaseTTL
//	<prefix>:epoch:{<shard>}        INCR'd on every acquisition (fencing)
//	<prefix>:done:{<shard>}:<id>    idempotency marker, then the reply JSON
//	<prefix>:reply:<id>             list the caller BLPOPs
//	<prefix>:status:<token>         JSON of shared.Status and the lease it
//	                                was written under ("owner"), TTL
//	<prefix>:qr:<token>             current QR code, TTL
//	<prefix>:blob:<id>              a request's large bytes (media), TTL;
//	                                the command carries the key
//	<prefix>:members                ZSET consumerID -> last seen (unix ms)

// wireVersion is the "v" field of every command; a Server acks and drops
// commands of a version it does not know.
const wireVersion = "2"

// Stream entry fields.
const (
	fieldVersion  = "v"
	fieldID       = "id"
	fieldOp       = "op"
	fieldToken    = "token"
	fieldRequest  = "req"
	fieldDeadline = "deadline"
)

// consumerGroup is the consumer group every Server reads shard streams with.
const consumerGroup = "wago"

// ShardOf returns the shard of token: FNV-1a (32 bits) of the token modulo
// shards. Client and Server must agree on shards.
func ShardOf(token string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(token))
	return int(h.Sum32() % uint32(shards))
}

// keys builds the Redis key names under one prefix.
type keys struct{ prefix string }

func (k keys) stream(shard int) string { return fmt.Sprintf("%s:cmd:{%d}", k.prefix, shard) }
func (k keys) lease(shard int) string  { return fmt.Sprintf("%s%d}", k.leasePrefix(), shard) }
func (k keys) epoch(shard int) string  { return fmt.Sprintf("%s:epoch:{%d}", k.prefix, shard) }
func (k keys) done(shard int, id string) string {
	return fmt.Sprintf("%s:done:{%d}:%s", k.prefix, shard, id)
}
func (k keys) reply(id string) string     { return k.prefix + ":reply:" + id }
func (k keys) status(token string) string { return k.prefix + ":status:" + token }
func (k keys) qr(token string) string     { return k.prefix + ":qr:" + token }
func (k keys) members() string            { return k.prefix + ":members" }
func (k keys) blobPrefix() string         { return k.prefix + ":blob:" }
func (k keys) leasePrefix() string        { return k.prefix + ":lease:{" }

// command is one request from a Client to the Server owning the token's
// shard: an op of shared's op table, by name, with its request as JSON.
type command struct {
	ID    string
	Op    shared.OpInfo
	Token string
	Req   []byte
	// Deadline is when the caller stops waiting; a Server drops the command
	// without running it after that.
	Deadline time.Time
}

// newCommandID returns a random, unguessable command id.
func newCommandID() string { return rand.Text() }

// values returns the stream entry fields of c.
func (c command) values() []any {
	return []any{
		fieldVersion, wireVersion,
		fieldID, c.ID,
		fieldOp, c.Op.Name(),
		fieldToken, c.Token,
		fieldRequest, string(c.Req),
		fieldDeadline, strconv.FormatInt(c.Deadline.UnixMilli(), 10),
	}
}

// parseCommand decodes the fields of a stream entry. A malformed entry is an
// ErrMalformedCommand error.
func parseCommand(values map[string]any) (command, error) {
	str := func(name string) string {
		s, _ := values[name].(string)
		return s
	}
	if v := str(fieldVersion); v != wireVersion {
		return command{}, fmt.Errorf("%w: unknown version %q", ErrMalformedCommand, v)
	}
	c := command{ID: str(fieldID), Token: str(fieldToken), Req: []byte(str(fieldRequest))}
	if c.ID == "" || c.Token == "" {
		return command{}, fmt.Errorf("%w: missing id or token", ErrMalformedCommand)
	}
	op, ok := shared.LookupOp(str(fieldOp))
	if !ok {
		return command{}, fmt.Errorf("%w: unknown op %q", ErrMalformedCommand, str(fieldOp))
	}
	c.Op = op
	ms, err := strconv.ParseInt(str(fieldDeadline), 10, 64)
	if err != nil {
		return command{}, fmt.Errorf("%w: bad deadline: %v", ErrMalformedCommand, err)
	}
	c.Deadline = time.UnixMilli(ms)
	return c, nil
}

// reply is what a Server answers to one command: a result (the op's result
// type, as JSON), an error, or both.
type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

// wireError is a *shared.Error without its internal cause, which never
// leaves the connector.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// newReply builds the reply to a command that returned res and err. Any
// error that is not a *shared.Error becomes EINTERNAL "internal error".
func newReply(res any, err error) reply {
	var r reply
	if res != nil {
		data, merr := json.Marshal(res)
		if merr != nil {
			err = fmt.Errorf("failed to encode the result: %w", merr)
		} else {
			r.Result = data
		}
	}
	if err != nil {
		var se *shared.Error
		if !errors.As(err, &se) {
			se = shared.Errorf(shared.EINTERNAL, "internal error")
		}
		r.Error = &wireError{Code: se.Code, Message: se.Message}
	}
	return r
}

// knownErrors are the sentinels a decoded error is mapped back to, so that
// errors.Is(err, shared.ErrNoSession) holds on both sides of the seam.
var knownErrors = []*shared.Error{
	shared.ErrSessionNotFound,
	shared.ErrAlreadyExists,
	shared.ErrNoSession,
	shared.ErrNotLoggedIn,
	shared.ErrAlreadyLoggedIn,
	shared.ErrNoQRYet,
	shared.ErrLinkedNoQR,
}

// err returns the error r carries, or nil.
func (r reply) err() error {
	if r.Error == nil {
		return nil
	}
	for _, known := range knownErrors {
		if known.Code == r.Error.Code && known.Message == r.Error.Message {
			return known
		}
	}
	return &shared.Error{Code: r.Error.Code, Message: r.Error.Message}
}
