package main

import (
	"context"
	"os"
	"testing"
)

// openRedis speaks RESP2 and pools 128 connections unless the URL says
// otherwise; on a real Redis the connection reports resp=2.
func TestOpenRedisOptions(t *testing.T) {
	rdb, err := openRedis("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	if o := rdb.Options(); o.Protocol != 2 || o.PoolSize != 128 {
		t.Fatalf("defaults: protocol %d, pool %d; want 2 and 128", o.Protocol, o.PoolSize)
	}
	rdb.Close()
	rdb, err = openRedis("redis://127.0.0.1:6379/0?protocol=3&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if o := rdb.Options(); o.Protocol != 3 || o.PoolSize != 7 {
		t.Fatalf("from the URL: protocol %d, pool %d; want 3 and 7", o.Protocol, o.PoolSize)
	}
	rdb.Close()

	url := os.Getenv("WAGO_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WAGO_TEST_REDIS_URL is not set: start a Redis with .ci/redis")
		}
		t.Skip("WAGO_TEST_REDIS_URL is not set: the live check needs Redis")
	}
	rdb, err = openRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	info, err := rdb.ClientInfo(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if info.Resp != 2 {
		t.Fatalf("the connection speaks RESP%d, want RESP2 (%+v)", info.Resp, info)
	}
}
