// Package intern shares one copy of the strings that repeat across the
// objects a cache holds: label and annotation keys, namespace names,
// condition types and reasons, token URLs. Decoding gives every object
// its own copy of each; thousands of cached objects then hold thousands of
// copies of "oauth.tokensync.io/config-hash". A cache transform passes
// its object's strings through a Table, which returns the first copy it
// saw.
//
// A Table is bounded: it holds at most a fixed number of strings, each at
// most MaxLen bytes, and a sixteenth as many small maps. When either is
// full it starts again empty, so that the strings of deleted objects or of
// a tenant who writes many distinct keys do not keep the ones that come
// later from being shared; the copies objects already hold stay valid.
// What tenants write cannot make it grow past that bound; at worst they
// make it share less.
package intern

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// MaxLen is the longest string a Table shares.
const MaxLen = 128

// Table is a bounded set of shared strings, safe for concurrent use.
type Table struct {
	mu   sync.Mutex
	m    map[string]string
	maps map[string]map[string]string
	max  int
}

// New returns a Table of at most max strings and max/16 small maps.
func New(max int) *Table {
	return &Table{m: make(map[string]string), maps: make(map[string]map[string]string), max: max}
}

func (t *Table) maxMaps() int { return max(1, t.max/16) }

// String returns the Table's copy of s, adding s when there is room.
func (t *Table) String(s string) string {
	if s == "" || len(s) > MaxLen {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[s]; ok {
		return c
	}
	if len(t.m) >= t.max {
		clear(t.m)
	}
	t.m[s] = s
	return s
}

// Len returns how many strings and maps the Table holds.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m) + len(t.maps)
}

// Map returns m with shared keys and, when values is set, shared values:
// a new map when m has entries, m itself (nil or empty) otherwise.
func (t *Table) Map(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = t.String(v)
		}
		out[t.String(k)] = v
	}
	return out
}

// maxSharedMap is the most entries a map SharedMap shares may have.
const maxSharedMap = 4

// SharedMap returns one map for all equal small maps (at most maxSharedMap
// entries of at most MaxLen bytes in all): the labels of the Secrets
// tokensync writes, {oauth.tokensync.io/managed: "true"}, are one map
// instead of one per Secret (an 8-slot map costs about 300 bytes for its
// one entry). Any other map comes back with shared keys and values (Map).
//
// Whoever holds a shared map must never write to it: the caches that use
// it hand out deep copies.
func (t *Table) SharedMap(m map[string]string) map[string]string {
	if len(m) == 0 || len(m) > maxSharedMap {
		return t.Map(m, true)
	}
	keys := make([]string, 0, len(m))
	size := 0
	for k, v := range m {
		keys = append(keys, k)
		size += len(k) + len(v) + 2
	}
	if size > MaxLen {
		return t.Map(m, true)
	}
	slices.Sort(keys)
	// Each key and value with its length in front: no two different maps
	// spell the same id, whatever bytes they hold.
	var b strings.Builder
	b.Grow(size + 8*len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
	}
	id := b.String()
	t.mu.Lock()
	if c, ok := t.maps[id]; ok {
		t.mu.Unlock()
		return c
	}
	t.mu.Unlock()
	c := t.Map(m, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.maps[id]; ok {
		return prev
	}
	if len(t.maps) >= t.maxMaps() {
		clear(t.maps)
	}
	t.maps[id] = c
	return c
}

// SharedSize is the number of strings Shared holds: room for the repeated
// strings of a few thousand namespaces and keys, under 1 MiB in all
// (TestAttack3_SharedTableBound).
const SharedSize = 4096

// Shared is the Table the manager's cache transforms share.
var Shared = New(SharedSize)
