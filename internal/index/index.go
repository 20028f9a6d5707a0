// Package index knows which Secrets, ConfigMaps and ServiceAccounts exist,
// and at which resourceVersion, in the namespaces the manager watches, while keeping
// nothing else of them: client-go reflectors list and watch their metadata
// into compact stores (compact.go) that keep a name and a version per
// object, about 70 bytes, where an informer of metadata keeps about 180
// (cert-manager's memory-management design also keeps only the metadata of
// the Secrets it does not manage). It is what tells the reconciler whether a
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
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	informers []*compact
	started   atomic.Bool
	// stored returns the version of object key of kind that the
	// informer's store holds, and whether it exists (exists with an empty
	// version: it cannot tell).
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
	// Namespaces restricts the index to these namespaces; all when empty
	// or when it names "". Each is watched once, however often named.
	Namespaces []string
	// ListWatch, when set, wraps the list and watch of each kind (a
	// shard's, internal/shard), for objects like obj.
	ListWatch func(lw toolscache.ListerWatcher, obj runtime.Object) toolscache.ListerWatcher
}

// resources are the API resources of kinds.
var resources = map[string]string{"Secret": "secrets", "ConfigMap": "configmaps", "ServiceAccount": "serviceaccounts"}

// New creates the index: a compact informer per kind and watched namespace.
func New(cfg *rest.Config, o Options) (*Index, error) {
	// The informers by kind and namespace ("" for all namespaces): their
	// hubs hand their events on, and lookups read the store of the key's
	// namespace only.
	informers := map[string]map[string]informer{}
	for _, t := range kinds {
		informers[t.Kind] = map[string]informer{}
	}
	namespaces := slices.Compact(slices.Sorted(slices.Values(o.Namespaces)))
	if len(namespaces) == 0 || namespaces[0] == "" {
		namespaces = []string{""}
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the metadata index: %w", err)
	}
	mcfg := rest.CopyConfig(cfg)
	mcfg.NegotiatedSerializer = nil
	mc, err := metadata.NewForConfigAndClient(mcfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the metadata index: %w", err)
	}
	x := newIndex(func(kind string, key types.NamespacedName) (string, bool) {
		return storedIn(informers[kind], key)
	}, map[string]*hub{})
	for _, t := range kinds {
		var infs []informer
		for _, ns := range namespaces {
			res := mc.Resource(schema.GroupVersionResource{Version: "v1", Resource: resources[t.Kind]}).Namespace(ns)
			var lw toolscache.ListerWatcher = &toolscache.ListWatch{
				ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
					return res.List(ctx, opts)
				},
				WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
					opts.Watch = true
					return res.Watch(ctx, opts)
				},
			}
			if o.ListWatch != nil {
				lw = o.ListWatch(lw, &metav1.PartialObjectMetadata{TypeMeta: t})
			}
			desc := t.Kind + " in all namespaces"
			if ns != "" {
				desc = t.Kind + " in namespace " + ns
			}
			inf := newCompact(lw, t.Kind, desc)
			informers[t.Kind][ns] = inf
			infs = append(infs, inf)
			x.informers = append(x.informers, inf)
		}
		h, err := newHub(infs)
		if err != nil {
			return nil, fmt.Errorf("watching the %s index: %w", t.Kind, err)
		}
		x.hubs[t.Kind] = h
	}
	return x, nil
}

// newIndex returns an Index that reads stored and hands on the events of
// hubs, with nothing written yet.
func newIndex(stored func(kind string, key types.NamespacedName) (string, bool), hubs map[string]*hub) *Index {
	return &Index{stored: stored, hubs: hubs, written: map[types.NamespacedName]string{}, inflight: map[types.NamespacedName][]heldEvent{},
		own: map[types.NamespacedName]string{}, before: map[types.NamespacedName]string{}}
}

// slim keeps only what the index needs of an object (an entry).
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &entry{name: m.Name, namespace: intern.Shared.String(m.Namespace), rv: m.ResourceVersion}, nil
}

// Start starts the informers and blocks until ctx ends. An index starts
// once: a second Start is refused.
func (x *Index) Start(ctx context.Context) error {
	if !x.started.CompareAndSwap(false, true) {
		return fmt.Errorf("the metadata index was started already")
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range x.informers {
		g.Go(func() error { c.Run(ctx.Done()); return nil })
	}
	return g.Wait()
}

// WaitForCacheSync waits until the informers have listed.
func (x *Index) WaitForCacheSync(ctx context.Context) bool {
	for _, c := range x.informers {
		select {
		case <-c.listed:
		case <-ctx.Done():
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
func storedIn(infs map[string]informer, key types.NamespacedName) (string, bool) {
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
	obj, exists, err := inf.GetStore().GetByKey(keyOf(key.Namespace, key.Name))
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
