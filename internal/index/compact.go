package index

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/tokensync/tokensync/internal/intern"
)

// informer is what the index and its hubs use of an informer: a
// SharedIndexInformer, or a compact one.
type informer interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
	GetStore() toolscache.Store
	HasSynced() bool
	Run(stop <-chan struct{})
}

// compact is an informer of one kind's objects, in one namespace or in all,
// that keeps of each object its name and resourceVersion and nothing else:
// client-go's Reflector lists and watches into it, and it hands the events
// to one handler (the kind's hub). A SharedIndexInformer keeps, per
// object, its key, a map slot in its store and the object (an entry),
// about 140 to 180 bytes, and a DeltaFIFO that holds every object once
// more while the first list is handed on; this keeps one map from
// "namespace/name" to version, about 70 bytes per object however few
// objects a namespace has, and needs no queue: the hub's handler only
// queues the event for each subscriber. It does not resync.
//
// The objects its store hands out (List, Get, and the events) are entries
// made on the spot.
type compact struct {
	kind      string
	reflector *toolscache.Reflector

	mu sync.RWMutex
	// versions holds, by "namespace/name", the version of each object, when it is a decimal number without leading zeros, as
	// every version of an API server on etcd is; 0 when it is not, in odd.
	// One map for all namespaces: a map per namespace
	// would cost more than its objects in the many namespaces that hold
	// one or two (their default ServiceAccount, their kube-root-ca.crt
	// ConfigMap), and a key of two strings takes a larger map slot.
	versions map[string]uint64
	odd      map[string]string
	handler  toolscache.ResourceEventHandler
	// listed is closed once the first list has been stored and handed on.
	listed   chan struct{}
	isListed bool
	started  bool
	// lastRV is the last version the reflector handed in (cache.Store's
	// LastStoreSyncResourceVersion; the index does not use it).
	lastRV string
}

var (
	_ toolscache.Store             = &compact{}
	_ toolscache.TransformingStore = &compact{}
	_ informer                     = &compact{}
)

// newCompact returns a compact informer of the objects lw lists, of kind.
func newCompact(lw toolscache.ListerWatcher, kind, description string) *compact {
	c := &compact{kind: kind, versions: map[string]uint64{}, odd: map[string]string{}, listed: make(chan struct{})}
	c.reflector = toolscache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, c, toolscache.ReflectorOptions{
		Name: "index " + description, TypeDescription: kind + " metadata",
	})
	return c
}

// Run lists and watches until stop is closed. A second Run returns at
// once: one reflector fills the store.
func (c *compact) Run(stop <-chan struct{}) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return
	}
	c.started = true
	c.mu.Unlock()
	c.reflector.Run(stop)
}

// AddEventHandler sets the one handler, before Run.
func (c *compact) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.handler != nil {
		return nil, fmt.Errorf("the %s index takes one handler, before it starts", c.kind)
	}
	c.handler = h
	return registration{c}, nil
}

func (c *compact) GetStore() toolscache.Store { return c }

// HasSynced reports whether the first list has been stored and handed on.
func (c *compact) HasSynced() bool {
	select {
	case <-c.listed:
		return true
	default:
		return false
	}
}

type registration struct{ c *compact }

func (r registration) HasSynced() bool                          { return r.c.HasSynced() }
func (r registration) HasSyncedChecker() toolscache.DoneChecker { return r }
func (r registration) Name() string                             { return "index of " + r.c.kind }
func (r registration) Done() <-chan struct{}                    { return r.c.listed }

// Transformer makes the reflector keep entries, not the decoded objects,
// in the store of its own that a watch-list fills before Replace.
func (c *compact) Transformer() toolscache.TransformFunc { return slim }

// canonical returns rv as a number, when formatting the number gives rv back.
func canonical(rv string) (uint64, bool) {
	if rv == "" || rv[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// entryOf is obj as an entry; nil when it has no metadata.
func entryOf(obj any) *entry {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	t, _ := slim(obj)
	switch o := t.(type) {
	case *entry:
		return o
	case metav1.Object:
		return &entry{name: o.GetName(), namespace: intern.Shared.String(o.GetNamespace()), rv: o.GetResourceVersion()}
	}
	return nil
}

// split returns the namespace and name of key.
func split(key string) (namespace, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// versionIn returns the version of k in versions and odd (a compact
// store's maps), and whether it is held.
func versionIn(versions map[string]uint64, odd map[string]string, k string) (string, bool) {
	n, ok := versions[k]
	if !ok {
		return "", false
	}
	if n == 0 {
		return odd[k], true
	}
	return strconv.FormatUint(n, 10), true
}

// getLocked returns the version of k and whether it is held.
func (c *compact) getLocked(k string) (string, bool) { return versionIn(c.versions, c.odd, k) }

// setLocked stores e; it returns the version held before, if any.
func (c *compact) setLocked(e *entry) (old string, existed bool) {
	k := keyOf(e.namespace, e.name)
	old, existed = c.getLocked(k)
	n, ok := canonical(e.rv)
	if ok {
		delete(c.odd, k)
	} else {
		c.odd[k] = e.rv
	}
	c.versions[k] = n
	return old, existed
}

// deleteLocked removes k; it returns whether it was held.
func (c *compact) deleteLocked(k string) bool {
	if _, ok := c.versions[k]; !ok {
		return false
	}
	delete(c.versions, k)
	delete(c.odd, k)
	return true
}

// emit hands an event to the handler, unless the handler has nobody to
// hand it to (a hub with no subscriber yet): a subscriber that joins later
// is handed what the store holds, which already has the change.
func (c *compact) emit(f func(toolscache.ResourceEventHandler)) {
	c.mu.RLock()
	h := c.handler
	idle := c.idleLocked()
	c.mu.RUnlock()
	if !idle {
		f(h)
	}
}

// idleLocked reports whether an event now would reach nobody: no handler,
// or a hub without subscribers. Called after the store holds the change,
// with c.mu held: the handler's idle must not read the store.
func (c *compact) idleLocked() bool {
	if c.handler == nil {
		return true
	}
	i, ok := c.handler.(interface{ idle() bool })
	return ok && i.idle()
}

func (c *compact) Add(obj any) error { return c.Update(obj) }
func (c *compact) Update(obj any) error {
	e := entryOf(obj)
	if e == nil {
		return nil
	}
	c.mu.Lock()
	old, existed := c.setLocked(e)
	c.lastRV = e.rv
	c.mu.Unlock()
	if existed {
		c.emit(func(h toolscache.ResourceEventHandler) {
			h.OnUpdate(&entry{name: e.name, namespace: e.namespace, rv: old}, e)
		})
		return nil
	}
	c.emit(func(h toolscache.ResourceEventHandler) { h.OnAdd(e, false) })
	return nil
}

func (c *compact) Delete(obj any) error {
	e := entryOf(obj)
	if e == nil {
		return nil
	}
	c.mu.Lock()
	existed := c.deleteLocked(keyOf(e.namespace, e.name))
	c.lastRV = e.rv
	c.mu.Unlock()
	if existed {
		c.emit(func(h toolscache.ResourceEventHandler) { h.OnDelete(e) })
	}
	return nil
}

// Replace stores list in place of what is held (a list, or a re-list after
// a watch ended), and hands on what changed: creates, updates of the
// objects whose version changed, and, for the objects gone, deletes whose
// final state is unknown, as a SharedIndexInformer does. An object listed
// twice (no API server does) counts as its last listing.
func (c *compact) Replace(list []any, rv string) error {
	c.mu.Lock()
	c.lastRV = rv
	before, beforeOdd := c.versions, c.odd
	c.versions, c.odd = make(map[string]uint64, len(list)), map[string]string{}
	initial := !c.isListed
	// With nobody to hand events to (a start: the hub's subscribers join
	// once the first list is in), none are made. One who joins meanwhile
	// is handed the store, which it reads after this Replace.
	quiet := c.idleLocked()
	for _, obj := range list {
		if e := entryOf(obj); e != nil {
			c.setLocked(e)
		}
	}
	var events []func(toolscache.ResourceEventHandler)
	if !quiet {
		for k, n := range c.versions {
			m, was := before[k]
			if was && n == m && (n != 0 || c.odd[k] == beforeOdd[k]) {
				continue
			}
			now, _ := c.getLocked(k)
			ns, name := split(k)
			e := &entry{name: name, namespace: ns, rv: now}
			if !was {
				events = append(events, func(h toolscache.ResourceEventHandler) { h.OnAdd(e, initial) })
				continue
			}
			old, _ := versionIn(before, beforeOdd, k)
			prev := &entry{name: name, namespace: ns, rv: old}
			events = append(events, func(h toolscache.ResourceEventHandler) { h.OnUpdate(prev, e) })
		}
		for k := range before {
			if _, still := c.versions[k]; still {
				continue
			}
			old, _ := versionIn(before, beforeOdd, k)
			ns, name := split(k)
			gone := toolscache.DeletedFinalStateUnknown{Key: k, Obj: &entry{name: name, namespace: ns, rv: old}}
			events = append(events, func(h toolscache.ResourceEventHandler) { h.OnDelete(gone) })
		}
	}
	c.mu.Unlock()
	for _, f := range events {
		c.emit(f)
	}
	c.mu.Lock()
	if !c.isListed {
		c.isListed = true
		close(c.listed)
	}
	c.mu.Unlock()
	return nil
}

func (c *compact) Resync() error { return nil }

// Bookmark records the version of a watch bookmark.
func (c *compact) Bookmark(rv string) {
	c.mu.Lock()
	c.lastRV = rv
	c.mu.Unlock()
}

// LastStoreSyncResourceVersion is the last version the reflector handed in.
func (c *compact) LastStoreSyncResourceVersion() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lastRV
}

// List returns an entry for each object held.
func (c *compact) List() []any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]any, 0, len(c.versions))
	for k := range c.versions {
		rv, _ := c.getLocked(k)
		ns, name := split(k)
		out = append(out, &entry{name: name, namespace: ns, rv: rv})
	}
	return out
}

// ListKeys returns the "namespace/name" key of each object held.
func (c *compact) ListKeys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.versions))
	for k := range c.versions {
		out = append(out, k)
	}
	return out
}

func keyOf(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func (c *compact) Get(obj any) (any, bool, error) {
	e := entryOf(obj)
	if e == nil {
		return nil, false, fmt.Errorf("no metadata in %T", obj)
	}
	return c.GetByKey(keyOf(e.namespace, e.name))
}

// GetByKey returns the entry of key ("namespace/name", or "name" for a
// cluster-scoped object).
func (c *compact) GetByKey(key string) (any, bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rv, ok := c.getLocked(key)
	ns, name := split(key)
	if !ok {
		return nil, false, nil
	}
	return &entry{name: name, namespace: ns, rv: rv}, true, nil
}
