// Package shard splits the namespaces of a cluster among several managers,
// the way Kubernetes' sharded list and watch (KEP-5866, feature gate
// ShardedListAndWatch) does: a namespace belongs to the shard whose range
// of the 64-bit FNV-1a hash space holds the hash of its name. Shard i of k
// owns [floor(i·2^64/k), floor((i+1)·2^64/k)).
//
// Every object tokensync reads or writes for an OAuthClientToken (its
// credentials, TLS material, ServiceAccount and target Secrets) is in the
// object's namespace, so a shard caches and watches only its namespaces.
//
// The informers of a sharded cache send the shard selector to the API
// server (ListOptions.shardSelector). When a list response does not echo
// it back (ListMeta.shardInfo: the gate is off, or the server predates it),
// the shard computes the same hash itself and drops what is not its own.
// Either way, an object of another shard never reaches the cache.
package shard

import (
	"fmt"
	"hash/fnv"
	"math/bits"
)

// Field is the field the selector hashes.
const Field = "object.metadata.namespace"

// Shard is one shard of a sharded deployment: Index in [0, Count).
// The zero value and Count 1 own everything.
type Shard struct {
	Index int
	Count int
}

// New returns shard index of count, or an error when they do not describe one.
func New(index, count int) (Shard, error) {
	if count < 1 {
		return Shard{}, fmt.Errorf("the shard count must be at least 1, got %d", count)
	}
	if index < 0 || index >= count {
		return Shard{}, fmt.Errorf("the shard index must be in [0, %d), got %d", count, index)
	}
	return Shard{Index: index, Count: count}, nil
}

// Sharded reports whether s owns only part of the namespaces.
func (s Shard) Sharded() bool { return s.Count > 1 }

// Hash is the 64-bit FNV-1a hash of namespace, as the API server computes it.
func Hash(namespace string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(namespace))
	return h.Sum64()
}

// bound is floor(i·2^64/k) for i < k; i == k is 2^64, reported by max.
func bound(i, k int) (b uint64, max bool) {
	if i >= k {
		return 0, true
	}
	q, _ := bits.Div64(uint64(i), 0, uint64(k))
	return q, false
}

// Range returns the start (inclusive) and end (exclusive) of s's range;
// endMax reports an end of 2^64, which a uint64 cannot hold.
func (s Shard) Range() (start, end uint64, endMax bool) {
	if !s.Sharded() {
		return 0, 0, true
	}
	start, _ = bound(s.Index, s.Count)
	end, endMax = bound(s.Index+1, s.Count)
	return start, end, endMax
}

// Owns reports whether namespace belongs to s. Cluster-scoped objects
// (namespace "") belong to every shard.
func (s Shard) Owns(namespace string) bool {
	if !s.Sharded() || namespace == "" {
		return true
	}
	h := Hash(namespace)
	start, end, endMax := s.Range()
	return h >= start && (endMax || h < end)
}

// Selector is s's shard selector, in the form the API server parses:
// shardRange(object.metadata.namespace, '0x<16 hex digits>', '0x<16 hex
// digits>' or '0x10000000000000000'). Empty when s owns everything.
func (s Shard) Selector() string {
	if !s.Sharded() {
		return ""
	}
	start, end, endMax := s.Range()
	e := fmt.Sprintf("0x%016x", end)
	if endMax {
		e = "0x10000000000000000"
	}
	return fmt.Sprintf("shardRange(%s, '0x%016x', '%s')", Field, start, e)
}

func (s Shard) String() string {
	if !s.Sharded() {
		return "all"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}
