// Package index knows which Secrets, ConfigMaps and ServiceAccounts exist,
// and at which resourceVersion, in the namespaces the manager watches, while keeping
// nothing else of them: controller-runtime caches (one per watched
// namespace) of metadata-only informers whose transform drops everything but the name, namespace and
// resourceVersion (cert-manager's memory-management design does the same
// with client-go's pieces). It is what tells the reconciler whether a
// target name is free and whether the inputs of a token changed since it
// was issued, without an API request and without caching any Secret's
// data. Its watches are the controller's Secret and ConfigMap event
// sources.
//
// It also remembers the version of each Secret the reconciler itself
// wrote, until its watch shows that version: so that a reconcile right
// after a write does not take the cache's older copy for the Secret, and
// so that the write's own event queues no reconcile.
package index

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tokensync/tokensync/internal/intern"
)

var (
	secretType         = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	configMapType      = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	serviceAccountType = metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}
	// kinds are the kinds indexed.
	kinds = []metav1.TypeMeta{secretType, configMapType, serviceAccountType}
)

// Index is the metadata index. Start it (it is a manager.Runnable) before
// reading from it; its sources wait for it to sync.
type Index struct {
	caches []cache.Cache
	// stored returns the version of object key of kind that the
	// informer's store holds, and whether it exists (exists with an empty
	// version: it cannot tell). It reads the informers' stores directly:
	// the cache's own Get would copy each entry into a PartialObjectMetadata.
	stored func(kind string, key types.NamespacedName) (rv string, exists bool)
	// hubs hand each kind's events to the sources, by kind.
	hubs map[string]*hub

	mu sync.Mutex
	// written holds, per Secret, the version the reconciler last wrote
	// until the cache shows it: what Secret answers meanwhile. (Which
	// events to drop is own's.)
	written map[types.NamespacedName]string
	// inflight holds the events of Secrets being written: their watch
	// event often arrives before the write returns with its version. They
	// are dropped if of that version, handled otherwise.
	inflight map[types.NamespacedName][]heldEvent
	// own holds, per Secret, the version the reconciler wrote until that
	// version's event arrives and is dropped. Unlike written it is not
	// cleared when the cache shows the version: an informer updates its
	// cache before it hands the event to the handlers, so the cache can
	// show the version while its event is still on its way.
	own map[types.NamespacedName]string
	// before holds, per Secret being written, the version the cache showed
	// when the write began: a write that returns it changed nothing, and
	// makes no event of its own.
	before map[types.NamespacedName]string
}

type heldEvent struct {
	rv     string
	handle func()
}

// Options configure the index.
type Options struct {
	Scheme *runtime.Scheme
	// Namespaces restricts the index to these namespaces; all when empty
	// or when it names "". Each is watched once, however often named.
	Namespaces []string
	// NewInformer, when set, creates the index's informers (a shard's,
	// internal/shard).
	NewInformer func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer
}

// New creates the index.
func New(cfg *rest.Config, o Options) (*Index, error) {
	newInformer := o.NewInformer
	if newInformer == nil {
		newInformer = toolscache.NewSharedIndexInformer
	}
	newInformer = withoutIndexers(newInformer)
	// The informers the caches create, by kind and namespace ("" for all
	// namespaces), all of them in this function: their hubs hand their
	// events on, and lookups read the store of the key's namespace only.
	informers := map[string]map[string]toolscache.SharedIndexInformer{}
	for _, t := range kinds {
		informers[t.Kind] = map[string]toolscache.SharedIndexInformer{}
	}
	// One cache per namespace (what controller-runtime's multi-namespace
	// cache makes too), so that each informer is known by its namespace;
	// they share one HTTP client and one REST mapper.
	namespaces := slices.Compact(slices.Sorted(slices.Values(o.Namespaces)))
	if len(namespaces) == 0 || namespaces[0] == "" {
		namespaces = []string{""}
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the metadata index: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the metadata index: %w", err)
	}
	var caches []cache.Cache
	for _, ns := range namespaces {
		opts := cache.Options{Scheme: o.Scheme, HTTPClient: httpClient, Mapper: mapper, DefaultTransform: slim,
			NewInformer: func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
				inf := newInformer(lw, obj, resync, idx)
				// Called from GetInformer below, one kind at a time.
				informers[obj.GetObjectKind().GroupVersionKind().Kind][ns] = inf
				return inf
			}}
		if ns != "" {
			opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
		}
		c, err := cache.New(cfg, opts)
		if err != nil {
			return nil, fmt.Errorf("creating the metadata index: %w", err)
		}
		for _, t := range kinds {
			// Before the cache starts, this creates the informer and returns.
			if _, err := c.GetInformer(context.Background(), &metav1.PartialObjectMetadata{TypeMeta: t}); err != nil {
				return nil, fmt.Errorf("creating the %s index: %w", t.Kind, err)
			}
		}
		caches = append(caches, c)
	}
	hubs := map[string]*hub{}
	for _, t := range kinds {
		var infs []toolscache.SharedIndexInformer
		for _, ns := range namespaces {
			infs = append(infs, informers[t.Kind][ns])
		}
		h, err := newHub(infs)
		if err != nil {
			return nil, fmt.Errorf("watching the %s index: %w", t.Kind, err)
		}
		hubs[t.Kind] = h
	}
	stored := func(kind string, key types.NamespacedName) (string, bool) {
		return storedIn(informers[kind], key)
	}
	x := newIndex(stored, hubs)
	x.caches = caches
	return x, nil
}

// newIndex returns an Index that reads stored and hands on the events of
// hubs, with nothing written yet.
func newIndex(stored func(kind string, key types.NamespacedName) (string, bool), hubs map[string]*hub) *Index {
	return &Index{stored: stored, hubs: hubs, written: map[types.NamespacedName]string{}, inflight: map[types.NamespacedName][]heldEvent{},
		own: map[types.NamespacedName]string{}, before: map[types.NamespacedName]string{}}
}

// withoutIndexers creates informers with newInformer, without the indexes
// asked for (controller-runtime's namespace index): the index only looks
// objects up by key, and the namespace index holds each key once more,
// about 75 bytes per object.
func withoutIndexers(newInformer func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	return func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, _ toolscache.Indexers) toolscache.SharedIndexInformer {
		return newInformer(lw, obj, resync, toolscache.Indexers{})
	}
}

// slim keeps only what the index needs of an object (an entry).
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &entry{name: m.Name, namespace: intern.Shared.String(m.Namespace), rv: m.ResourceVersion}, nil
}

// Start starts the informers and blocks until ctx ends.
func (x *Index) Start(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range x.caches {
		g.Go(func() error { return c.Start(ctx) })
	}
	return g.Wait()
}

// WaitForCacheSync waits until the informers have listed.
func (x *Index) WaitForCacheSync(ctx context.Context) bool {
	for _, c := range x.caches {
		if !c.WaitForCacheSync(ctx) {
			return false
		}
	}
	return true
}

func (x *Index) lookup(t metav1.TypeMeta, key types.NamespacedName) (string, bool) {
	return x.stored(t.Kind, key)
}

// storedIn returns the version of key in the store of the informer of its
// namespace (or of all namespaces) in infs, and whether it exists. A
// namespace infs has no informer for holds nothing.
func storedIn(infs map[string]toolscache.SharedIndexInformer, key types.NamespacedName) (string, bool) {
	inf, ok := infs[key.Namespace]
	if !ok {
		if inf, ok = infs[""]; !ok {
			return "", false
		}
	}
	if !inf.HasSynced() {
		// Not started or not synced: it cannot tell; say it exists, so
		// that callers read it.
		return "", true
	}
	obj, exists, err := inf.GetIndexer().GetByKey(key.Namespace + "/" + key.Name)
	if err != nil {
		return "", true
	}
	if !exists {
		return "", false
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return "", true
	}
	return m.GetResourceVersion(), true
}

// Secret returns the resourceVersion of Secret key, and whether it exists:
// the version the reconciler wrote when the watch has not shown it yet,
// else the watch's. An empty version with exists means it cannot tell.
func (x *Index) Secret(key types.NamespacedName) (string, bool) {
	rv, exists := x.lookup(secretType, key)
	x.mu.Lock()
	defer x.mu.Unlock()
	if w, ok := x.written[key]; ok {
		if w == rv {
			delete(x.written, key)
		}
		return w, true
	}
	return rv, exists
}

// ConfigMap returns the resourceVersion of ConfigMap key, and whether it
// exists.
func (x *Index) ConfigMap(key types.NamespacedName) (string, bool) {
	return x.lookup(configMapType, key)
}

// ServiceAccount returns the resourceVersion of ServiceAccount key, and
// whether it exists.
func (x *Index) ServiceAccount(key types.NamespacedName) (string, bool) {
	return x.lookup(serviceAccountType, key)
}

// Begin marks Secret key as being written by the reconciler.
func (x *Index) Begin(key types.NamespacedName) {
	before, _ := x.lookup(secretType, key)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, busy := x.inflight[key]; !busy {
		x.inflight[key] = nil
		x.before[key] = before
	}
}

// Wrote records that the reconciler's write of Secret key, begun with
// Begin, ended with version rv ("" when it failed). The events held
// meanwhile are dropped if of that version, handled otherwise.
func (x *Index) Wrote(key types.NamespacedName, rv string) {
	x.mu.Lock()
	held := x.inflight[key]
	before, hadBefore := x.before[key]
	delete(x.inflight, key)
	delete(x.before, key)
	seenAlready := false
	for _, ev := range held {
		seenAlready = seenAlready || (rv != "" && ev.rv == rv)
	}
	if rv != "" && !seenAlready {
		x.written[key] = rv
		if !hadBefore || rv != before {
			// A new version: its event is the reconciler's own. (A write
			// that returned the version the cache already showed changed
			// nothing; the event of that version, if still on its way, is
			// someone else's.)
			x.own[key] = rv
		}
	}
	x.mu.Unlock()
	if rv != "" && !seenAlready {
		if seen, _ := x.lookup(secretType, key); seen == rv {
			// The cache shows it already: reads need not prefer it (own
			// still drops its event, which may be on its way).
			x.mu.Lock()
			if x.written[key] == rv {
				delete(x.written, key)
			}
			x.mu.Unlock()
		}
	}
	for _, ev := range held {
		if rv == "" || ev.rv != rv {
			ev.handle()
		}
	}
}

// event routes an event of Secret key at version rv: dropped when it is the
// reconciler's own write, held while the Secret is being written, handled
// otherwise.
func (x *Index) event(key types.NamespacedName, rv string, handle func()) {
	x.mu.Lock()
	if w, ok := x.own[key]; ok && w == rv {
		delete(x.own, key)
		if x.written[key] == rv {
			delete(x.written, key)
		}
		x.mu.Unlock()
		return
	}
	if held, busy := x.inflight[key]; busy {
		x.inflight[key] = append(held, heldEvent{rv: rv, handle: handle})
		x.mu.Unlock()
		return
	}
	x.mu.Unlock()
	handle()
}

// route handles a create or update event of a source: through event, which
// drops the reconciler's own Secret writes, for the sources of Sources;
// at once for WatcherSources, which must not use up the record of those
// writes.
func (x *Index) route(kind string, key types.NamespacedName, rv string, ownWrites bool, handle func()) {
	if kind != "Secret" || !ownWrites {
		handle()
		return
	}
	x.event(key, rv, handle)
}

func (x *Index) forget(key types.NamespacedName) {
	x.mu.Lock()
	delete(x.written, key)
	delete(x.own, key)
	x.mu.Unlock()
}

// Mapper maps an object event to the reconcile requests it affects.
type Mapper func(ctx context.Context, kind string, key types.NamespacedName) []reconcile.Request

// Sources returns the event sources of Secrets, ConfigMaps and
// ServiceAccounts for a controller: each event is mapped by m, except the
// events of the reconciler's own Secret writes.
func (x *Index) Sources(m Mapper) []source.Source { return x.sources(m, true) }

// WatcherSources returns event sources like Sources, for another
// controller than the one that writes Secrets: every event is mapped by m,
// the reconciler's own writes included, and the record of those writes
// that Sources drops them by is left alone.
func (x *Index) WatcherSources(m Mapper) []source.Source { return x.sources(m, false) }

func (x *Index) sources(m Mapper, ownWrites bool) []source.Source {
	var out []source.Source
	for _, t := range kinds {
		kind := t.Kind
		enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
			for _, r := range m(ctx, kind, client.ObjectKeyFromObject(o)) {
				q.Add(r)
			}
		}
		changed := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
			x.route(kind, client.ObjectKeyFromObject(o), o.GetResourceVersion(), ownWrites, func() { enqueue(ctx, q, o) })
		}
		h := handler.TypedFuncs[client.Object, reconcile.Request]{
			CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				changed(ctx, q, e.Object)
			},
			UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				changed(ctx, q, e.ObjectNew)
			},
			DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if kind == "Secret" && ownWrites {
					x.forget(client.ObjectKeyFromObject(e.Object))
				}
				enqueue(ctx, q, e.Object)
			},
		}
		out = append(out, &hubSource{hub: x.hubs[kind], kind: kind, h: h, joined: make(chan struct{})})
	}
	return out
}
