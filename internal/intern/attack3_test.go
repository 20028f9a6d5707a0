package intern

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestAttack3_SharedMapKeyCollision: two different maps whose k\0v\0
// encodings are equal come back as one map: the second caller gets the
// first caller's labels. (Not reachable through the API server today,
// which refuses NUL in label keys and values, but SharedMap is a general
// function and its doc promises "one map for all equal small maps".)
func TestAttack3_SharedMapKeyCollision(t *testing.T) {
	tb := New(10)
	first := tb.SharedMap(map[string]string{"a\x00b": "c"})
	second := tb.SharedMap(map[string]string{"a": "b\x00c"})
	if _, ok := second["a"]; !ok || len(second) != 1 || second["a"] != "b\x00c" {
		t.Fatalf("SharedMap(%q) returned %q (the first map: %q)", map[string]string{"a": "b\x00c"}, second, first)
	}
}

// TestAttack3_SharedTableBound: the package doc says Shared holds "about
// 1 MiB at most" and that tenants "cannot make it grow past that bound".
// Fill a table of Shared's size with the worst a tenant can send (label
// sets of 4 distinct short entries, then long distinct strings) and
// measure what it keeps alive.
func TestAttack3_SharedTableBound(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := New(SharedSize)
	// Long distinct strings fill the string table first (the cheapest way
	// to pin MaxLen bytes per entry)...
	for i := range SharedSize {
		tb.String(fmt.Sprintf("%0128d", i))
	}
	// ...then the map table, whose entries are never bounded by the string
	// table: their strings (up to MaxLen in all) stay alive as decoded.
	for i := range SharedSize {
		k := fmt.Sprintf("k%d", i)
		tb.SharedMap(map[string]string{
			k + "a": strings.Repeat("v", 20), k + "b": strings.Repeat("w", 20),
			k + "c": strings.Repeat("x", 20), k + "d": fmt.Sprintf("%010d", i),
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(tb)
	t.Logf("table len %d, heap kept %.1f MiB", tb.Len(), float64(kept)/(1<<20))
	if kept > 1<<20 {
		t.Errorf("a full Shared-sized table keeps %.1f MiB alive, documented as under 1 MiB", float64(kept)/(1<<20))
	}
}

// TestAttack3_TableNeverForgets: the table is first-come and never
// evicts. Once strings of deleted objects (or of a hostile tenant) fill it,
// the strings of every namespace created later are never shared again, for
// the life of the process.
func TestAttack3_TableNeverForgets(t *testing.T) {
	tb := New(SharedSize)
	for i := range SharedSize {
		tb.String(fmt.Sprintf("tenant-junk-%d", i)) // e.g. label values of since-deleted objects
	}
	ns := strings.Clone("team-new")
	a, b := tb.String(ns), tb.String(strings.Clone(ns))
	if !same(a, b) {
		t.Error("a full table shares nothing new: junk from deleted objects is kept forever, new namespaces and keys are never shared")
	}
}

// TestAttack3_Race: String, Map and SharedMap from many goroutines (run
// with -race).
func TestAttack3_Race(t *testing.T) {
	tb := New(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				m := tb.SharedMap(map[string]string{"app": fmt.Sprint(i % 100), "g": fmt.Sprint(g % 2)})
				if m["app"] != fmt.Sprint(i%100) || m["g"] != fmt.Sprint(g%2) {
					t.Errorf("wrong map %v", m)
					return
				}
				tb.Map(map[string]string{fmt.Sprint(i): "x"}, true)
				tb.String(fmt.Sprint(i))
			}
		}()
	}
	wg.Wait()
}
