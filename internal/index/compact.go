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
// about 180 bytes, and a DeltaFIFO that holds every object once more while
// the first list is handed on; this keeps, per namespace, a map from name
// to version, about 55 bytes per object, and needs no queue: the hub's
// handler only queues the event for each subscriber.
//
// The objects its store hands out (List, Get, and the events) are entries
// made on the spot.
type compact struct {
	kind      string
	reflector *toolscache.Reflector

	mu sync.RWMutex
	// versions holds, per namespace (interned) and name, the version of
	// each object, when it is a decimal number without leading zeros, as
	// every version of an API server on etcd is; 0 when it is not, in odd.
	versions map[string]map[string]uint64
	odd      map[string]string // by "namespace/name"
	handler  toolscache.ResourceEventHandler
	// listed is closed once the first list has been stored and handed on.
	listed   chan struct{}
	isListed bool
	started  bool
	// lastRV is the last version the reflector handed in.
	lastRV string
}

var (
	_ toolscache.Store             = &compact{}
	_ toolscache.TransformingStore = &compact{}
	_ informer                     = &compact{}
)

// newCompact returns a compact informer of the objects lw lists, of kind.
func newCompact(lw toolscache.ListerWatcher, kind, description string) *compact {
	c := &compact{kind: kind, versions: map[string]map[string]uint64{}, odd: map[string]string{}, listed: make(chan struct{})}
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

// getLocked returns the version of namespace/name and whether it is held.
func (c *compact) getLocked(namespace, name string) (string, bool) {
	n, ok := c.versions[namespace][name]
	if !ok {
		return "", false
	}
	if n == 0 {
		return c.odd[namespace+"/"+name], true
	}
	return strconv.FormatUint(n, 10), true
}

// setLocked stores e; it returns the version held before, if any.
func (c *compact) setLocked(e *entry) (old string, existed bool) {
	old, existed = c.getLocked(e.namespace, e.name)
	names := c.versions[e.namespace]
	if names == nil {
		names = map[string]uint64{}
		c.versions[e.namespace] = names
	}
	name := e.name
	if !existed {
		// Keep no decoding buffer alive through the name.
		name = strings.Clone(name)
	}
	n, ok := canonical(e.rv)
	if ok {
		delete(c.odd, e.namespace+"/"+e.name)
	} else {
		c.odd[e.namespace+"/"+e.name] = e.rv
	}
	names[name] = n
	return old, existed
}

// deleteLocked removes namespace/name; it returns the version it held.
func (c *compact) deleteLocked(namespace, name string) (string, bool) {
	old, existed := c.getLocked(namespace, name)
	if !existed {
		return "", false
	}
	names := c.versions[namespace]
	delete(names, name)
	if len(names) == 0 {
		delete(c.versions, namespace)
	}
	delete(c.odd, namespace+"/"+name)
	return old, true
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
// or a hub without subscribers. Called after the store holds the change.
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
	_, existed := c.deleteLocked(e.namespace, e.name)
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
// final state is unknown, as a SharedIndexInformer does.
func (c *compact) Replace(list []any, rv string) error {
	c.mu.Lock()
	c.lastRV = rv
	before := c.versions
	beforeOdd := c.odd
	c.versions, c.odd = map[string]map[string]uint64{}, map[string]string{}
	initial := !c.isListed
	// With nobody to hand events to (a start: the hub's subscribers join
	// once the first list is in), none are made. One who joins meanwhile
	// is handed the store, which it reads after this Replace.
	quiet := c.idleLocked()
	type change struct {
		e   *entry
		old string
		was bool
	}
	var changes []change
	for _, obj := range list {
		e := entryOf(obj)
		if e == nil {
			continue
		}
		if _, dup := c.getLocked(e.namespace, e.name); dup {
			c.setLocked(e)
			continue
		}
		old, was := "", false
		if n, ok := before[e.namespace][e.name]; ok {
			was = true
			old = strconv.FormatUint(n, 10)
			if n == 0 {
				old = beforeOdd[e.namespace+"/"+e.name]
			}
			delete(before[e.namespace], e.name)
		}
		c.setLocked(e)
		if !quiet && (!was || old != e.rv) {
			changes = append(changes, change{e: e, old: old, was: was})
		}
	}
	c.mu.Unlock()
	for _, ch := range changes {
		if ch.was {
			c.emit(func(h toolscache.ResourceEventHandler) {
				h.OnUpdate(&entry{name: ch.e.name, namespace: ch.e.namespace, rv: ch.old}, ch.e)
			})
			continue
		}
		c.emit(func(h toolscache.ResourceEventHandler) { h.OnAdd(ch.e, initial) })
	}
	for ns, names := range before {
		if quiet {
			break
		}
		for name, n := range names {
			rv := strconv.FormatUint(n, 10)
			if n == 0 {
				rv = beforeOdd[ns+"/"+name]
			}
			gone := &entry{name: name, namespace: ns, rv: rv}
			c.emit(func(h toolscache.ResourceEventHandler) {
				h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: ns + "/" + name, Obj: gone})
			})
		}
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
	var out []any
	for ns, names := range c.versions {
		for name := range names {
			rv, _ := c.getLocked(ns, name)
			out = append(out, &entry{name: name, namespace: ns, rv: rv})
		}
	}
	return out
}

// ListKeys returns the "namespace/name" key of each object held.
func (c *compact) ListKeys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for ns, names := range c.versions {
		for name := range names {
			out = append(out, keyOf(ns, name))
		}
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
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, false, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	rv, ok := c.getLocked(ns, name)
	if !ok {
		return nil, false, nil
	}
	return &entry{name: name, namespace: intern.Shared.String(ns), rv: rv}, true, nil
}
