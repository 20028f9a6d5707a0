package index

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// fakeLW lists items and then serves w; it makes the reflector list
// rather than stream.
type fakeLW struct {
	items []metav1.PartialObjectMetadata
	w     *watch.FakeWatcher
}

func (l *fakeLW) List(metav1.ListOptions) (runtime.Object, error) {
	return &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: l.items}, nil
}
func (l *fakeLW) Watch(metav1.ListOptions) (watch.Interface, error) { return l.w, nil }
func (l *fakeLW) IsWatchListSemanticsUnSupported() bool             { return true }

// countingInformer counts the handlers added to it.
type countingInformer struct {
	toolscache.SharedIndexInformer
	mu       sync.Mutex
	handlers int
}

func (c *countingInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	c.mu.Lock()
	c.handlers++
	c.mu.Unlock()
	return c.SharedIndexInformer.AddEventHandler(h)
}

func (c *countingInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	c.mu.Lock()
	c.handlers++
	c.mu.Unlock()
	return c.SharedIndexInformer.AddEventHandlerWithOptions(h, o)
}

func secretMeta(ns, name, rv string) metav1.PartialObjectMetadata {
	return metav1.PartialObjectMetadata{TypeMeta: secretType, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv}}
}

// newTestIndex is an index of Secrets over a fake API server holding
// items, and its informer.
func newTestIndex(t *testing.T, items []metav1.PartialObjectMetadata) (*Index, *countingInformer, *watch.FakeWatcher) {
	t.Helper()
	w := watch.NewFake()
	inf := &countingInformer{SharedIndexInformer: toolscache.NewSharedIndexInformer(&fakeLW{items: items, w: w}, &metav1.PartialObjectMetadata{}, 0, toolscache.Indexers{})}
	if err := inf.SetTransform(slim); err != nil {
		t.Fatal(err)
	}
	hubs := map[string]*hub{}
	for _, k := range kinds {
		infs := []informer{}
		if k.Kind == "Secret" {
			infs = append(infs, inf)
		}
		h, err := newHub(infs)
		if err != nil {
			t.Fatal(err)
		}
		hubs[k.Kind] = h
	}
	x := newIndex(func(string, types.NamespacedName) (string, bool) { return "", true }, hubs)
	return x, inf, w
}

// recorder maps every Secret event to a request named after the Secret,
// and counts them.
type recorder struct {
	mu     sync.Mutex
	events map[string]int
}

func (r *recorder) mapper(_ context.Context, kind string, key types.NamespacedName) []reconcile.Request {
	if kind != "Secret" {
		return nil
	}
	r.mu.Lock()
	r.events[key.Name]++
	r.mu.Unlock()
	return []reconcile.Request{{NamespacedName: key}}
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[name]
}

func startSources(ctx context.Context, t *testing.T, srcs []source.Source) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	t.Helper()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	for _, s := range srcs {
		if err := s.Start(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range srcs {
		if err := s.(source.SyncingSource).WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestOneInformerHandlerForEverySource: three controllers' sources (the
// token controller's and the two provider controllers') add one handler
// to the Secret informer, not three, and each source is handed every
// object listed, whether it started before the informer or after it had
// listed, and every create, update and delete after.
func TestOneInformerHandlerForEverySource(t *testing.T) {
	var items []metav1.PartialObjectMetadata
	for i := range 500 {
		items = append(items, secretMeta("team-a", fmt.Sprintf("s%d", i), "1"))
	}
	x, inf, w := newTestIndex(t, items)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The token controller's sources start before the informer.
	early := &recorder{events: map[string]int{}}
	earlySources := x.Sources(early.mapper)
	qEarly := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer qEarly.ShutDown()
	for _, s := range earlySources {
		if err := s.Start(ctx, qEarly); err != nil {
			t.Fatal(err)
		}
	}
	go inf.Run(ctx.Done())
	for _, s := range earlySources {
		if err := s.(source.SyncingSource).WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	lateA, lateB := &recorder{events: map[string]int{}}, &recorder{events: map[string]int{}}
	eventually(t, "the informer to list", inf.HasSynced)
	qA := startSources(ctx, t, x.WatcherSources(lateA.mapper))
	qB := startSources(ctx, t, x.WatcherSources(lateB.mapper))
	if inf.handlers != 1 {
		t.Fatalf("the informer has %d handlers, want 1 for three controllers' sources", inf.handlers)
	}
	for _, r := range []*recorder{early, lateA, lateB} {
		eventually(t, "every listed Secret to reach every source", func() bool {
			for i := range 500 {
				if r.count(fmt.Sprintf("s%d", i)) == 0 {
					return false
				}
			}
			return true
		})
	}
	if qA.Len() != 500 || qB.Len() != 500 || qEarly.Len() != 500 {
		t.Fatalf("queued %d, %d and %d requests, want 500 each", qEarly.Len(), qA.Len(), qB.Len())
	}

	// After: a create, an update and a delete reach all three.
	created := secretMeta("team-a", "new", "2")
	w.Add(&created)
	updated := secretMeta("team-a", "s1", "3")
	w.Modify(&updated)
	gone := secretMeta("team-a", "s2", "4")
	w.Delete(&gone)
	for _, r := range []*recorder{early, lateA, lateB} {
		eventually(t, "the create, update and delete to reach every source", func() bool {
			return r.count("new") >= 1 && r.count("s1") >= 2 && r.count("s2") >= 2
		})
	}
}

// TestHubSourceLeavesWithItsController: a source whose controller
// stopped is handed nothing more.
func TestHubSourceLeavesWithItsController(t *testing.T) {
	x, inf, w := newTestIndex(t, []metav1.PartialObjectMetadata{secretMeta("team-a", "s0", "1")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx.Done())
	r := &recorder{events: map[string]int{}}
	sctx, stop := context.WithCancel(ctx)
	startSources(sctx, t, x.WatcherSources(r.mapper))
	eventually(t, "the listed Secret", func() bool { return r.count("s0") == 1 })
	stop()
	h := x.hubs["Secret"]
	eventually(t, "the source to leave", func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return len(h.subs) == 0
	})
	after := secretMeta("team-a", "after", "2")
	w.Add(&after)
	keep := &recorder{events: map[string]int{}}
	startSources(ctx, t, x.WatcherSources(keep.mapper))
	eventually(t, "a running source to see the create", func() bool { return keep.count("after") >= 1 })
	if r.count("after") != 0 {
		t.Fatal("a stopped controller's source was handed an event")
	}
}
