package index

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestWatcherSourcesLeaveOwnWritesSuppressed: the provider controller sees
// Secret events through WatcherSources of the index the token controller's
// Sources use. Whichever source sees an event first, the token
// controller's drops the event of its own write, and handles the next.
func TestWatcherSourcesLeaveOwnWritesSuppressed(t *testing.T) {
	key := types.NamespacedName{Namespace: "team-a", Name: "api-token"}
	x := &Index{written: map[types.NamespacedName]string{}, inflight: map[types.NamespacedName][]heldEvent{}}
	// What Wrote records of the reconciler's own write that the watch has
	// not shown yet.
	x.written[key] = "7"
	watcher, token := 0, 0
	x.route("Secret", key, "7", false, func() { watcher++ })
	x.route("Secret", key, "7", true, func() { token++ })
	x.route("Secret", key, "7", false, func() { watcher++ })
	if watcher != 2 || token != 0 {
		t.Fatalf("own write: the watchers handled %d events (want 2), the token controller %d (want 0)", watcher, token)
	}
	// Someone else's write reaches both.
	x.route("Secret", key, "8", false, func() { watcher++ })
	x.route("Secret", key, "8", true, func() { token++ })
	if watcher != 3 || token != 1 {
		t.Fatalf("another's write: the watchers handled %d events (want 3), the token controller %d (want 1)", watcher, token)
	}
	// ConfigMaps are never suppressed.
	x.route("ConfigMap", key, "9", true, func() { token++ })
	if token != 2 {
		t.Fatalf("a ConfigMap event was dropped")
	}
}
