package main

import (
	"context"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// TestGCPercentDefault: without GOGC the manager collects at 50% heap
// growth; GOGC, when set, is left as the Go runtime read it.
func TestGCPercentDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if n, from := gcPercent(func(string) string { return "" }); n != defaultGCPercent || from != "default" {
		t.Errorf("gcPercent() = %d from %s, want %d from default", n, from, defaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("the runtime's GC percent is %d, want %d", got, defaultGCPercent)
	}
	if n, from := gcPercent(func(k string) string { return map[string]string{"GOGC": "200"}[k] }); n != 200 || from != "GOGC" {
		t.Errorf("with GOGC=200: %d from %s", n, from)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the runtime's GC percent was changed to %d", got)
	}
}

// TestGCTarget: busy (the burst target) when the interval allocated at
// least half the live heap, else at rest.
func TestGCTarget(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		allocated, live uint64
		want            int
	}{
		{0, 0, busyGCPercent},                 // nothing known yet
		{0, 20 * mib, restGCPercent},          // idle
		{5 * mib, 20 * mib, restGCPercent},    // a metrics scrape or a few renewals
		{10*mib - 1, 20 * mib, restGCPercent}, // just under one collection at the busy target
		{10 * mib, 20 * mib, busyGCPercent},   // one collection at the busy target
		{500 * mib, 20 * mib, busyGCPercent},  // a start or a mass creation
		{1 << 62, 1 << 40, busyGCPercent},     // no overflow
		{mib, 1 << 40, restGCPercent},         // a large heap at rest
		{1 << 40, 1 << 41, busyGCPercent},     // large numbers, busy
		{1<<40 - 1, 1 << 41, restGCPercent},   // large numbers, at rest
	} {
		if got := gcTarget(c.allocated, c.live); got != c.want {
			t.Errorf("gcTarget(%d, %d) = %d, want %d", c.allocated, c.live, got, c.want)
		}
	}
}

// TestTuneGC: the target follows each interval's allocations, is set only
// when it changes, memory is released on coming to rest, and the tuner
// stops with its context.
func TestTuneGC(t *testing.T) {
	const live = 100 << 20
	// What the tuner reads, in order: at its start, then at each tick
	// (bytes allocated since the process started).
	start := uint64(1 << 30)
	reads := []uint64{start,
		start,                           // nothing allocated: at rest
		start + live,                    // a burst
		start + live + live/2,           // still busy: no change
		start + live + live/2 + live/10, // at rest again
		start + live + live/2 + live/10, // still at rest: no change
	}
	ticks := make(chan time.Time)
	var set []int // written by the tuner only, read once it is done
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tuneGC(ctx, ticks, func() (uint64, uint64) {
			v := reads[0]
			reads = reads[1:]
			return v, live
		}, func(p int) int { set = append(set, p); return 0 }, func() { set = append(set, 0) }, logr.Discard())
	}()
	for range 5 {
		ticks <- time.Time{}
	}
	cancel()
	<-done
	// 0: memory released, on coming to rest only.
	want := []int{restGCPercent, 0, busyGCPercent, restGCPercent, 0}
	if !slices.Equal(set, want) {
		t.Errorf("targets set, memory released (0): %v, want %v", set, want)
	}
	if len(reads) != 0 {
		t.Errorf("%d reads left, want every tick read once", len(reads))
	}
}

// TestStartGC: without GOGC the target starts at the burst's and, in an
// idle process, comes down to the one at rest; with GOGC set it is left
// alone.
func TestStartGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	ctx, cancel := context.WithCancel(context.Background())
	if n, from := startGC(ctx, func(string) string { return "" }, 20*time.Millisecond, logr.Discard()); n != busyGCPercent || from != "default" {
		t.Fatalf("startGC() = %d from %s, want %d from default", n, from, busyGCPercent)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtimeGOGC() != restGCPercent {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d after 10 s idle, want %d", runtimeGOGC(), restGCPercent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // the tuner has stopped

	debug.SetGCPercent(100)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	if n, from := startGC(ctx, func(k string) string { return map[string]string{"GOGC": "100"}[k] }, 20*time.Millisecond, logr.Discard()); n != 100 || from != "GOGC" {
		t.Fatalf("with GOGC=100: %d from %s", n, from)
	}
	time.Sleep(200 * time.Millisecond)
	if got := runtimeGOGC(); got != 100 {
		t.Errorf("with GOGC set the target became %d", got)
	}
}
