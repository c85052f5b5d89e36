package redisbus

import (
	"context"
	"testing"
	"time"

	"github.com/wago-gw/wago/shared"
)

// TestSentLog: a recorded send is found by token and ID, under the prefix,
// with a TTL; another token's same ID is not.
func TestSentLog(t *testing.T) {
	rdb := MustOpenRedis(t)
	prefix := testPrefix(t, rdb)
	log := NewSentLog(rdb, prefix)
	ctx := context.Background()
	if _, ok, err := log.Sent(ctx, "tok", "ID1"); ok || err != nil {
		t.Fatalf("before any send: %v %v", ok, err)
	}
	want := shared.SendResult{ID: "ID1", Timestamp: 1700000000}
	if err := log.RecordSent(ctx, "tok", "ID1", want); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := log.Sent(ctx, "tok", "ID1"); !ok || err != nil || got != want {
		t.Fatalf("after the send: %+v %v %v", got, ok, err)
	}
	if _, ok, _ := log.Sent(ctx, "other", "ID1"); ok {
		t.Fatal("another token's ID was found")
	}
	if ttl := rdb.TTL(ctx, prefix+":sent:tok:ID1").Val(); ttl <= 23*time.Hour {
		t.Fatalf("TTL %v", ttl)
	}
}
