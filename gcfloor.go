package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// A floor under the garbage collector's heap goal.
//
// With GOGC=100 the collector runs each time the heap doubles its live
// part. wago's live heap without sessions is a few MiB (mostly whatsmeow's
// protobuf descriptors), so under HTTP load it ran 15 to 25 times a
// second, each time marking all of it: 3% of the CPU of the cheapest
// answer, and a collection under way slows the requests it overlaps, which
// shows in the p99. gcFloor raises GOGC while the live heap is small, so
// that the heap may grow to floor before the next collection, and gives
// GOGC=100 back once the live heap passes floor/2: with many sessions
// (100 KiB each) nothing changes. An operator's GOGC or GOMEMLIMIT is left
// alone.

// defaultGCFloor is the heap goal below which gcFloor raises GOGC.
const defaultGCFloor = 32 << 20

// gcPercentFor returns the GOGC that puts the heap goal of a live heap of
// live bytes at floor, and never below 100.
func gcPercentFor(live, floor uint64) int {
	if live == 0 || live*2 >= floor {
		return 100
	}
	return int(floor*100/live) - 100
}

// startGCFloor keeps the heap goal at floor bytes at least, re-tuned after
// every collection, unless GOGC or GOMEMLIMIT is set (it then returns nil).
func startGCFloor(floor uint64) *gcTuner {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	t := &gcTuner{floor: floor, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	return t
}

// gcTuner sets GOGC from the live heap after each collection: a finalizer
// on an object nothing references runs once the collection that found it
// unreachable is over, and arms the next one.
type gcTuner struct {
	floor   uint64
	percent int
	sample  []metrics.Sample
	stopped atomic.Bool
}

// stop gives GOGC=100 back after the next collection and tunes no more.
func (t *gcTuner) stop() { t.stopped.Store(true) }

// gcCycle is the object whose finalizer marks the end of a collection.
type gcCycle struct{ _ [16]byte } // not tiny-allocated: finalizers need their own object

func (t *gcTuner) tune() {
	if t.stopped.Load() {
		debug.SetGCPercent(100)
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		if p := gcPercentFor(t.sample[0].Value.Uint64(), t.floor); p != t.percent {
			debug.SetGCPercent(p)
			t.percent = p
		}
	}
	runtime.SetFinalizer(new(gcCycle), func(*gcCycle) { t.tune() })
}
