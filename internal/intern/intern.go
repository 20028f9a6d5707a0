// Package intern shares one copy of the strings that repeat across the
// objects a cache holds: label and annotation keys, namespace names,
// condition types and reasons, token URLs. Decoding gives every object
// its own copy of each; thousands of cached objects then hold thousands of
// copies of "oauth.tokensync.io/config-hash". A cache transform passes
// its object's strings through a Table, which returns the first copy it
// saw.
//
// A Table is bounded: it holds at most a fixed number of strings, each at
// most MaxLen bytes, and returns any other string as it is. What tenants
// write (keys, names) cannot make it grow past that bound; at worst it
// fills with their strings and stops sharing new ones.
package intern

import "sync"

// MaxLen is the longest string a Table shares.
const MaxLen = 128

// Table is a bounded set of shared strings, safe for concurrent use.
type Table struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

// New returns a Table of at most max strings.
func New(max int) *Table { return &Table{m: make(map[string]string), max: max} }

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
	if len(t.m) < t.max {
		t.m[s] = s
	}
	return s
}

// Len returns how many strings the Table holds.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
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

// ByteMap returns m with shared keys (a Secret's data: the values are not
// shared).
func (t *Table) ByteMap(m map[string][]byte) map[string][]byte {
	if len(m) == 0 {
		return m
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[t.String(k)] = v
	}
	return out
}

// Shared is the Table the manager's cache transforms share: room for the
// repeated strings of many namespaces and keys, about 1 MiB at most.
var Shared = New(8192)
