package main

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 32 * mib, 100},          // no collection yet
		{4 * mib, 32 * mib, 700},    // goal 4 + 28 = 32 MiB
		{1 * mib, 32 * mib, 3100},   // goal 32 MiB
		{16 * mib, 32 * mib, 100},   // GOGC=100 reaches the floor itself
		{100 * mib, 32 * mib, 100},  // many sessions: unchanged
		{15 * mib, 32 * mib, 113},   // just under floor/2
		{3 * mib, 3 * mib / 2, 100}, // floor under the live heap
	} {
		if got := gcPercentFor(c.live, c.floor); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
		}
	}
}

// gogc reads the GOGC in force.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitGOGC collects until the GOGC in force is as want says, or fails.
func waitGOGC(t *testing.T, what string, want func(uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !want(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC is %d", what, gogc())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer runs after the collection
	}
}

// The tuner raises GOGC while the live heap is under floor/2, and gives
// GOGC=100 back once it is above; an operator's GOGC turns it off.
func TestGCFloorFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	const floor = 64 << 20
	tuner := startGCFloor(floor)
	if tuner == nil {
		t.Fatal("not started with GOGC and GOMEMLIMIT unset")
	}
	defer func() {
		tuner.stop()
		waitGOGC(t, "after stop", func(p uint64) bool { return p == 100 })
	}()
	waitGOGC(t, "small live heap", func(p uint64) bool { return p > 100 })

	live := make([][]byte, 48) // 48 MiB live, over floor/2
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitGOGC(t, "48 MiB live", func(p uint64) bool { return p == 100 })
	runtime.KeepAlive(live)

	t.Setenv("GOGC", "100")
	if startGCFloor(floor) != nil {
		t.Fatal("started although GOGC is set")
	}
}
