package index

import (
	"context"
	"fmt"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// hub hands the events of one kind's informers to every source made of
// them, through one handler on each informer instead of one per
// controller. An informer keeps, per handler, the events the handler has
// not taken yet in a buffer that grows to the largest backlog and never
// shrinks; at a start, every object of the kind is such a backlog (16
// bytes each, per handler): a Secret index with three controllers kept
// about 1.5 MiB for 20,000 Secrets it has nothing to do with.
type hub struct {
	infs []toolscache.SharedIndexInformer
	// regs are the hub's handler registrations, one per informer.
	regs []toolscache.ResourceEventHandlerRegistration

	mu   sync.RWMutex
	subs map[*subscriber]struct{}
}

// subscriber is a source's handler and queue.
type subscriber struct {
	ctx context.Context
	h   handler.TypedEventHandler[client.Object, reconcile.Request]
	q   workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func newHub(infs []toolscache.SharedIndexInformer) (*hub, error) {
	h := &hub{infs: infs, subs: map[*subscriber]struct{}{}}
	for _, inf := range infs {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return nil, err
		}
		h.regs = append(h.regs, reg)
	}
	return h, nil
}

func (h *hub) each(f func(*subscriber)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		f(s)
	}
}

func (h *hub) OnAdd(obj any, initial bool) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	h.each(func(s *subscriber) {
		s.h.Create(s.ctx, event.TypedCreateEvent[client.Object]{Object: o, IsInInitialList: initial}, s.q)
	})
}

func (h *hub) OnUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 {
		return
	}
	h.each(func(s *subscriber) {
		s.h.Update(s.ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: o, ObjectNew: n}, s.q)
	})
}

func (h *hub) OnDelete(obj any) {
	e := event.TypedDeleteEvent[client.Object]{}
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		e.DeleteStateUnknown = true
		obj = t.Obj
	}
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	e.Object = o
	h.each(func(s *subscriber) { s.h.Delete(s.ctx, e, s.q) })
}

// join adds s, then hands it, as creates, what the informers hold: every
// event after it joined reaches it through the hub, and every one before
// is in the stores (an informer updates its store before it hands an event
// on). Some objects may so reach it twice, which queues one reconcile. It
// leaves when ctx ends.
func (h *hub) join(s *subscriber) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-s.ctx.Done()
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}()
	for _, inf := range h.infs {
		for _, obj := range inf.GetStore().List() {
			if o, ok := obj.(client.Object); ok {
				s.h.Create(s.ctx, event.TypedCreateEvent[client.Object]{Object: o, IsInInitialList: true}, s.q)
			}
		}
	}
}

// synced reports whether every informer has listed and the hub has been
// handed all it listed.
func (h *hub) synced() bool {
	for _, r := range h.regs {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// hubSource is a source of a hub's events for one controller.
type hubSource struct {
	hub    *hub
	kind   string
	h      handler.TypedEventHandler[client.Object, reconcile.Request]
	joined chan struct{}
}

var _ source.SyncingSource = &hubSource{}

func (s *hubSource) String() string { return fmt.Sprintf("index source: %s", s.kind) }

// Start joins the hub; it returns at once, and WaitForSync waits for the
// hub's objects to have been handed on.
func (s *hubSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	go func() {
		s.hub.join(&subscriber{ctx: ctx, h: s.h, q: q})
		close(s.joined)
	}()
	return nil
}

// WaitForSync waits until the informers have listed, the hub has handed on
// what they listed and this source has been handed what they hold.
func (s *hubSource) WaitForSync(ctx context.Context) error {
	select {
	case <-s.joined:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the %s index: %w", s.kind, ctx.Err())
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), s.hub.synced) {
		return fmt.Errorf("waiting for the %s index: %w", s.kind, ctx.Err())
	}
	return nil
}
