package main

import (
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the manager's garbage collection target when GOGC
// is not set: the heap may grow by half of what is live between two
// collections instead of Go's default of all of it (GOGC=100). The
// manager's live heap is its caches, and at rest it allocates little, so a
// collection costs little and comes seldom; what the lower target saves
// is resident memory, about a quarter of it at a few thousand tokens
// (docs/performance.md). Prometheus makes the same trade (GOGC=75).
const defaultGCPercent = 50

// gcPercent applies defaultGCPercent unless GOGC is set, and returns the
// garbage collection target in effect and where it came from.
func gcPercent(getenv func(string) string) (int, string) {
	if v := getenv("GOGC"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n, "GOGC"
		}
		return -1, "GOGC" // "off"
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, "default"
}
