package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/go-logr/logr"
)

// The manager's garbage collection targets when GOGC is not set. The
// heap may grow by busyGCPercent of what is live between two collections
// while the manager is busy (a start, a mass creation, a refresh storm),
// and by restGCPercent once it is at rest (renewals on schedule), instead
// of Go's default of all of it (GOGC=100). The live heap is the caches,
// so the target decides the resident memory per token: the Go runtime
// keeps freed heap up to about a tenth over its heap goal instead of
// returning it. A collection costs CPU in proportion to what is
// allocated, which is much in a burst and little at rest: a low target
// all the time cost a fifth more time to make 5,000 new objects Ready;
// at rest it costs nothing measurable and takes about a fifth off the
// resident memory (docs/performance.md). Prometheus makes the same kind
// of trade (GOGC=75).
const (
	busyGCPercent = 50
	restGCPercent = 25
	// defaultGCPercent is the target at start, which is a burst.
	defaultGCPercent = busyGCPercent
	// gcTuneInterval is how often the manager looks at how much it
	// allocated.
	gcTuneInterval = 10 * time.Second
)

// gcPercent applies defaultGCPercent unless GOGC is set, and returns the
// garbage collection target in effect and where it came from.
func gcPercent(getenv func(string) string) (int, string) {
	if v := getenv("GOGC"); v != "" {
		// As the runtime reads it (readGOGC): "off", a 32-bit integer
		// (negative is off), or else its default.
		if v == "off" {
			return -1, "GOGC"
		}
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			return max(int(n), -1), "GOGC"
		}
		return 100, "GOGC"
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, "default"
}

// gcTarget is the target for an interval in which the manager allocated
// allocated bytes with live bytes of live heap: busy when, at
// busyGCPercent, at least one collection would have come in it.
func gcTarget(allocated, live uint64) int {
	// allocated ≥ live × busyGCPercent / 100, without overflow.
	if live == 0 || allocated >= live/100*busyGCPercent+live%100*busyGCPercent/100 {
		return busyGCPercent
	}
	return restGCPercent
}

// heapStats reads the bytes allocated since the start and the live heap
// as of the last collection.
func heapStats() (allocated, live uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// tuneGC sets the garbage collection target to gcTarget of each interval
// (ticks) until ctx ends: busyGCPercent in a burst, restGCPercent at rest.
// On coming to rest it also calls release (debug.FreeOSMemory: one
// collection, and what the burst left freed is returned to the system at
// once rather than over minutes, as the runtime would). Run only when the
// manager chose the target (GOGC not set).
func tuneGC(ctx context.Context, ticks <-chan time.Time, read func() (allocated, live uint64), set func(int) int, release func(), log logr.Logger) {
	last, _ := read()
	current := defaultGCPercent
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		allocated, live := read()
		if target := gcTarget(allocated-last, live); target != current {
			set(target)
			current = target
			log.V(1).Info("garbage collection target", "gcPercent", target, "allocatedBytesSinceLastLook", allocated-last, "liveHeapBytes", live)
			if target == restGCPercent {
				release()
			}
		}
		last = allocated
	}
}

// startGC applies the garbage collection target (gcPercent) and, when the
// manager chose it, tunes it every interval until ctx ends (tuneGC). It
// returns the target at start and where it came from.
func startGC(ctx context.Context, getenv func(string) string, interval time.Duration, log logr.Logger) (int, string) {
	gc, from := gcPercent(getenv)
	if from == "default" {
		t := time.NewTicker(interval)
		go func() {
			defer t.Stop()
			tuneGC(ctx, t.C, heapStats, debug.SetGCPercent, debug.FreeOSMemory, log)
		}()
	}
	return gc, from
}
