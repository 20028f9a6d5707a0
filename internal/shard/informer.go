package shard

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// The modes a shard's informers run in.
const (
	// ModeServer: the API server applied the shard selector (its list
	// responses echo it in shardInfo) and sends only the shard's objects.
	ModeServer = "server"
	// ModeClient: it did not; the shard drops the others' objects itself.
	ModeClient = "client"
)

// Filter makes the informers of a cache shard-local. Its NewInformer is a
// controller-runtime cache.Options.NewInformer.
type Filter struct {
	shard Shard
	// namespaced tells whether an informer's objects are namespaced: only
	// those are sharded.
	namespaced func(obj runtime.Object) (bool, error)
	log        logr.Logger

	mu sync.Mutex
	// kinds records, per kind, whether its last list echoed the selector.
	kinds map[string]bool
	// probed is the mode Probe found ("" before, or when it failed).
	probed string
	// logged is the mode last logged and exported.
	logged string

	mode    *prometheus.GaugeVec
	dropped *prometheus.CounterVec
}

// NewFilter returns the filter of shard s. namespaced tells whether an
// informer's example object is namespaced (controller-runtime's
// apiutil.IsObjectNamespaced); an object it cannot tell about is filtered
// on the client only.
func NewFilter(s Shard, namespaced func(obj runtime.Object) (bool, error), log logr.Logger) *Filter {
	return &Filter{
		shard:      s,
		namespaced: namespaced,
		log:        log,
		kinds:      map[string]bool{},
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokensync_shard_mode",
			Help: "1 for the mode the shard's informers run in: server (the API server applies the shard selector) or client (the API server ignored it; the shard drops other shards' objects itself). Both 0 when not sharded.",
		}, []string{"mode"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensync_shard_dropped_objects_total",
			Help: "Objects of other shards the API server sent and the shard dropped (client mode), by kind.",
		}, []string{"kind"}),
	}
}

// Shard returns the filter's shard.
func (f *Filter) Shard() Shard { return f.shard }

// Register registers the shard metrics.
func (f *Filter) Register(reg prometheus.Registerer) error {
	f.mode.WithLabelValues(ModeServer).Set(0)
	f.mode.WithLabelValues(ModeClient).Set(0)
	for _, c := range []prometheus.Collector{f.mode, f.dropped} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Mode returns the mode the shard runs in: what Probe found; without a
// probe, ModeServer once a list echoed the selector, ModeClient when lists
// were served and none did; "" before. The API server applies the
// selector to every kind or to none (it is one feature gate), but it echoes
// it only in the lists of built-in kinds: in Kubernetes 1.37 a custom
// resource's list (unstructured) and a metadata-only list have no
// shardInfo although the server filtered them. Whatever the mode, every list and watch is also filtered in
// the manager.
func (f *Filter) Mode() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.modeLocked()
}

func (f *Filter) modeLocked() string {
	if f.probed != "" {
		return f.probed
	}
	if len(f.kinds) == 0 {
		return ""
	}
	for _, echoed := range f.kinds {
		if echoed {
			return ModeServer
		}
	}
	return ModeClient
}

// observe records whether a list of kind echoed the selector.
func (f *Filter) observe(kind string, echoed bool) {
	f.mu.Lock()
	prev, seen := f.kinds[kind]
	f.kinds[kind] = echoed
	f.mu.Unlock()
	if !seen || prev != echoed {
		f.log.V(1).Info("list served", "kind", kind, "shardInfo", echoed)
	}
	f.publish()
}

// publish logs and exports the mode when it changed.
func (f *Filter) publish() {
	f.mu.Lock()
	mode := f.modeLocked()
	changed := mode != f.logged
	f.logged = mode
	f.mu.Unlock()
	if !changed || mode == "" {
		return
	}
	if mode == ModeServer {
		f.log.Info("the API server applies the shard selector (sharded list and watch)", "shard", f.shard.String(), "mode", mode)
	} else {
		f.log.Info("the API server does not apply the shard selector (no shardInfo in its list responses: feature gate ShardedListAndWatch off, or an older server); the manager drops other shards' objects itself", "shard", f.shard.String(), "mode", mode)
	}
	f.mode.WithLabelValues(ModeServer).Set(b2f(mode == ModeServer))
	f.mode.WithLabelValues(ModeClient).Set(b2f(mode == ModeClient))
}

// Probe asks the API server, with one list of at most one ConfigMap in
// namespace ("" for all), whether it applies the shard
// selector: whether the list echoes it in shardInfo. It sets the mode
// before the informers start, so that it does not depend on which kind
// lists first. A failed probe leaves the mode to the informers' lists.
func (f *Filter) Probe(ctx context.Context, c kubernetes.Interface, namespace string) error {
	if !f.shard.Sharded() {
		return nil
	}
	// A typed list of a built-in kind: metadata-only lists and custom
	// resources' lists carry no shardInfo in Kubernetes 1.37.
	list, err := c.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{Limit: 1, ShardSelector: f.shard.Selector()})
	if err != nil {
		return fmt.Errorf("probing the API server for sharded list and watch: %w", err)
	}
	mode := ModeClient
	if list.ShardInfo != nil && list.ShardInfo.Selector == f.shard.Selector() {
		mode = ModeServer
	}
	f.mu.Lock()
	f.probed = mode
	f.mu.Unlock()
	f.publish()
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewInformer is a cache.Options.NewInformer: the informer lists and
// watches only the shard's objects.
func (f *Filter) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(f.ListWatch(lw, obj), obj, resync, indexers)
}

// ListWatch returns lw restricted to the shard, for objects like obj, when
// there are shards; lw itself otherwise.
func (f *Filter) ListWatch(lw toolscache.ListerWatcher, obj runtime.Object) toolscache.ListerWatcher {
	if !f.shard.Sharded() {
		return lw
	}
	return f.Wrap(lw, obj)
}

// Wrap returns lw restricted to the shard, for objects like obj.
func (f *Filter) Wrap(lw toolscache.ListerWatcher, obj runtime.Object) toolscache.ListerWatcher {
	w := &listWatch{f: f, lw: toolscache.ToListerWatcherWithContext(lw), kind: kindOf(obj)}
	namespaced, err := f.namespaced(obj)
	switch {
	case err != nil:
		f.log.Info("cannot tell whether a kind is namespaced; its objects are filtered by the manager only", "kind", w.kind, "error", err.Error())
		w.clientOnly = true
	case !namespaced:
		// Cluster-scoped: every shard sees all of them.
		return lw
	}
	w.selector = f.shard.Selector()
	return w
}

func kindOf(obj runtime.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
			// Distinct from the typed informer of the same kind.
			return k + " metadata"
		}
		return k
	}
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

type listWatch struct {
	f          *Filter
	lw         toolscache.ListerWatcherWithContext
	kind       string
	selector   string
	clientOnly bool
}

var (
	_ toolscache.ListerWatcher            = &listWatch{}
	_ toolscache.ListerWatcherWithContext = &listWatch{}
)

// IsWatchListSemanticsUnSupported makes the reflector list, rather than
// stream its initial state through a watch: the list response's shardInfo
// is how the shard learns whether the API server applied the selector.
func (w *listWatch) IsWatchListSemanticsUnSupported() bool { return true }

func (w *listWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	return w.ListWithContext(context.Background(), opts)
}

func (w *listWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return w.WatchWithContext(context.Background(), opts)
}

func (w *listWatch) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	if !w.clientOnly {
		opts.ShardSelector = w.selector
	}
	list, err := w.lw.ListWithContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	echoed := false
	if la, ok := list.(interface{ GetShardInfo() *metav1.ShardInfo }); ok && !w.clientOnly {
		si := la.GetShardInfo()
		echoed = si != nil && si.Selector == w.selector
	}
	w.f.observe(w.kind, echoed)
	// Filtered in both modes: in server mode nothing is dropped.
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("reading a %s list: %w", w.kind, err)
	}
	kept := items[:0:0]
	for _, it := range items {
		if w.owns(it) {
			kept = append(kept, it)
		}
	}
	if len(kept) != len(items) {
		w.f.dropped.WithLabelValues(w.kind).Add(float64(len(items) - len(kept)))
		if err := meta.SetList(list, kept); err != nil {
			return nil, fmt.Errorf("filtering a %s list: %w", w.kind, err)
		}
	}
	return list, nil
}

func (w *listWatch) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if !w.clientOnly {
		opts.ShardSelector = w.selector
	}
	wi, err := w.lw.WatchWithContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(wi, func(e watch.Event) (watch.Event, bool) {
		if e.Type == watch.Bookmark || e.Type == watch.Error {
			return e, true
		}
		if w.owns(e.Object) {
			return e, true
		}
		w.f.dropped.WithLabelValues(w.kind).Inc()
		return e, false
	}), nil
}

// owns reports whether o is the shard's. An object without metadata is
// kept: the informer reports it.
func (w *listWatch) owns(o runtime.Object) bool {
	a, err := meta.Accessor(o)
	if err != nil {
		return true
	}
	return w.f.shard.Owns(a.GetNamespace())
}
