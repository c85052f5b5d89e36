package shared

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Lane is the per-token queue an operation runs in. Different lanes of one
// token never wait for each other, so a send never waits behind a 20 s
// connect.
type Lane uint8

// Lanes.
const (
	// LaneLifecycle: connect, pair, disconnect, logout, delete. Transports
	// run these as they come: the connector serialises them per token
	// itself, and must be able to let a disconnect or a delete interrupt a
	// connect that hangs on WhatsApp.
	LaneLifecycle Lane = iota + 1
	// LaneSend: sends and the other operations on messages. Transports run
	// the ops of one token one at a time, in the order they were accepted.
	LaneSend
	// LaneQuery: questions to WhatsApp (users, media downloads) that need
	// no order: transports run them as they come.
	LaneQuery
)

// Ordered reports whether transports run the lane's ops of one token one
// at a time, in order.
func (l Lane) Ordered() bool { return l == LaneSend }

// String returns the lane's name, as it appears in queue keys and logs.
func (l Lane) String() string {
	switch l {
	case LaneLifecycle:
		return "lifecycle"
	case LaneSend:
		return "send"
	case LaneQuery:
		return "query"
	}
	return fmt.Sprintf("lane%d", uint8(l))
}

// Op declares one operation of the connector: its name on the wire, its
// lane, and its request and result types (plain data that encodes as JSON).
// Ops are declared once, as package variables next to their types (see
// sessions.go); the connector implements each in a feature file, the HTTP
// functions call it with Call, and the transports carry every op without
// knowing it.
type Op[Req, Res any] struct {
	name  string
	lane  Lane
	dials bool
}

// OpInfo is the untyped view of an Op: what a transport needs to carry it.
type OpInfo interface {
	// Name is the op's unique name on the wire ("session.connect").
	Name() string
	// Lane is the per-token queue the op runs in.
	Lane() Lane
	// Dials reports whether the op may wait for WhatsApp to answer a new
	// connection (connect, pair): transports give it a longer timeout.
	Dials() bool
	// DecodeRequest decodes a request encoded as JSON into a Req value.
	DecodeRequest(data []byte) (any, error)
	// DecodeResult decodes a result encoded as JSON into a Res value.
	DecodeResult(data []byte) (any, error)
}

// OpOption changes an Op as it is declared.
type OpOption func(*opSettings)

type opSettings struct{ dials bool }

// Dials marks an op that may wait for WhatsApp to answer a new connection.
func Dials() OpOption { return func(s *opSettings) { s.dials = true } }

var (
	opsLock sync.RWMutex
	ops     = map[string]OpInfo{}
)

// NewOp declares an op and registers it under name. It panics if the name
// is taken or the lane unknown: ops are declared at package initialisation.
func NewOp[Req, Res any](name string, lane Lane, options ...OpOption) *Op[Req, Res] {
	var s opSettings
	for _, o := range options {
		o(&s)
	}
	if lane != LaneLifecycle && lane != LaneSend && lane != LaneQuery {
		panic(fmt.Sprintf("shared: op %q has an unknown lane %d", name, lane))
	}
	op := &Op[Req, Res]{name: name, lane: lane, dials: s.dials}
	opsLock.Lock()
	defer opsLock.Unlock()
	if _, taken := ops[name]; taken || name == "" {
		panic(fmt.Sprintf("shared: op name %q is empty or declared twice", name))
	}
	ops[name] = op
	return op
}

// LookupOp returns the op registered under name.
func LookupOp(name string) (OpInfo, bool) {
	opsLock.RLock()
	defer opsLock.RUnlock()
	op, ok := ops[name]
	return op, ok
}

// Ops returns every declared op, by name.
func Ops() []OpInfo {
	opsLock.RLock()
	out := make([]OpInfo, 0, len(ops))
	for _, op := range ops {
		out = append(out, op)
	}
	opsLock.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Name implements OpInfo.
func (o *Op[Req, Res]) Name() string { return o.name }

// Lane implements OpInfo.
func (o *Op[Req, Res]) Lane() Lane { return o.lane }

// Dials implements OpInfo.
func (o *Op[Req, Res]) Dials() bool { return o.dials }

// DecodeRequest implements OpInfo.
func (o *Op[Req, Res]) DecodeRequest(data []byte) (any, error) { return decodeAs[Req](data) }

// DecodeResult implements OpInfo.
func (o *Op[Req, Res]) DecodeResult(data []byte) (any, error) { return decodeAs[Res](data) }

func decodeAs[T any](data []byte) (any, error) {
	var v T
	if len(data) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("failed to decode %T: %w", v, err)
	}
	return v, nil
}

// Call runs op for token through c, with the types the op declares.
func Call[Req, Res any](ctx context.Context, c Invoker, op *Op[Req, Res], token string, req Req) (Res, error) {
	out, err := c.Invoke(ctx, token, op, req)
	res, _ := out.(Res)
	return res, err
}

// Empty is the request or result of an op that carries nothing.
type Empty struct{}

// Blob is a request's large bytes: inline (Data) in the all-in-one process,
// or, in distributed mode, a reference (Ref) to where the transport keeps
// them, so that they never ride inside a stream entry.
type Blob struct {
	Data []byte `json:"data,omitempty"`
	Ref  string `json:"ref,omitempty"`
}

// BlobCarrier is a request with a Blob (nil when it has none this time).
type BlobCarrier interface {
	BlobField() *Blob
}
