package index

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// TestWatcherSourcesLeaveOwnWritesSuppressed: the provider controller sees
// Secret events through WatcherSources of the index the token controller's
// Sources use. Whichever source sees an event first, the token
// controller's drops the event of its own write, and handles the next.
func TestWatcherSourcesLeaveOwnWritesSuppressed(t *testing.T) {
	key := types.NamespacedName{Namespace: "team-a", Name: "api-token"}
	x := newIndex(nil, nil)
	// What Wrote records of the reconciler's own write that the watch has
	// not shown yet.
	x.written[key], x.own[key] = "7", "7"
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

// storeAhead is an informer store that already shows version rv of every
// object: what an informer's cache shows between updating its store and
// handing the event to the handlers.
type storeAhead struct{ rv string }

func (s *storeAhead) stored(string, types.NamespacedName) (string, bool) { return s.rv, true }

// TestOwnWriteDroppedWhenTheCacheShowsItBeforeItsEvent: the informer
// updates its cache before it calls the handlers. A write whose version the
// cache shows when the write returns (or when the reconciler next looks
// the Secret up) still has its event on the way: that event is dropped, and
// the next one handled. Without this, each such write queued one more
// reconcile, which could read the object from a cache not yet showing its
// status and write the status again.
func TestOwnWriteDroppedWhenTheCacheShowsItBeforeItsEvent(t *testing.T) {
	key := types.NamespacedName{Namespace: "team-a", Name: "api-token"}
	store := &storeAhead{rv: "6"}
	x := newIndex(store.stored, nil)
	x.Begin(key)
	store.rv = "7" // the write made 7; the cache shows it before the handlers hear of it
	x.Wrote(key, "7")
	if rv, ok := x.Secret(key); rv != "7" || !ok {
		t.Fatalf("Secret() = %q, %v after the write, want 7", rv, ok)
	}
	handled := 0
	x.route("Secret", key, "7", true, func() { handled++ })
	if handled != 0 {
		t.Fatal("the event of the reconciler's own write was handled")
	}
	x.route("Secret", key, "8", true, func() { handled++ })
	if handled != 1 {
		t.Fatal("the event of someone else's write was dropped")
	}
}

// countedInformer counts what lookups ask of an informer.
type countedInformer struct {
	toolscache.SharedIndexInformer
	calls *atomic.Int64
}

func (c countedInformer) HasSynced() bool {
	c.calls.Add(1)
	return c.SharedIndexInformer.HasSynced()
}

func (c countedInformer) GetStore() toolscache.Store {
	c.calls.Add(1)
	return c.SharedIndexInformer.GetStore()
}

// TestLookupReadsOnlyTheInformerOfTheKeysNamespace: with one informer per
// watched namespace, a lookup asks the informer of the key's namespace
// and no other, and an informer of another namespace that has not listed
// yet does not make the answer unknown.
func TestLookupReadsOnlyTheInformerOfTheKeysNamespace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var others atomic.Int64
	infs := map[string]informer{}
	for i, ns := range []string{"team-a", "team-b", "team-c"} {
		lw := &fakeLW{items: []metav1.PartialObjectMetadata{secretMeta(ns, "s", fmt.Sprint(i+1))}, w: watch.NewFake()}
		inf := toolscache.NewSharedIndexInformer(lw, &metav1.PartialObjectMetadata{}, 0, toolscache.Indexers{})
		if err := inf.SetTransform(slim); err != nil {
			t.Fatal(err)
		}
		if ns == "team-c" {
			// Never started: it never syncs.
			infs[ns] = countedInformer{inf, &others}
			continue
		}
		go inf.Run(ctx.Done())
		if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("not synced")
		}
		if ns == "team-b" {
			infs[ns] = countedInformer{inf, &others}
		} else {
			infs[ns] = inf
		}
	}
	if rv, ok := storedIn(infs, types.NamespacedName{Namespace: "team-a", Name: "s"}); !ok || rv != "1" {
		t.Fatalf("team-a/s: %q, %v; want 1, true", rv, ok)
	}
	if rv, ok := storedIn(infs, types.NamespacedName{Namespace: "team-a", Name: "absent"}); ok {
		t.Fatalf("team-a/absent: %q, exists; want absent (team-c's informer has not listed, team-a's has)", rv)
	}
	if _, ok := storedIn(infs, types.NamespacedName{Namespace: "elsewhere", Name: "s"}); ok {
		t.Fatal("a Secret in an unwatched namespace exists")
	}
	if n := others.Load(); n != 0 {
		t.Fatalf("lookups in team-a asked other namespaces' informers %d times, want 0", n)
	}
	if rv, ok := storedIn(infs, types.NamespacedName{Namespace: "team-c", Name: "s"}); !ok || rv != "" {
		t.Fatalf("team-c/s before its informer listed: %q, %v; want unknown (\"\", true)", rv, ok)
	}
}
