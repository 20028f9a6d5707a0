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
// about 1.5 MiB for 20,000 Secrets it has nothing to do with. Each
// subscriber has a mailbox of its own instead, dropped whenever it is
// empty, and its own goroutine to empty it: one controller's slow handler
// delays no other's events.
type hub struct {
	infs []informer
	// regs are the hub's handler registrations, one per informer.
	regs []toolscache.ResourceEventHandlerRegistration

	mu   sync.RWMutex
	subs map[*subscriber]struct{}
}

// subscriber is a source's handler and queue, and the events the hub has
// given it that it has not handed on yet.
type subscriber struct {
	ctx context.Context
	h   handler.TypedEventHandler[client.Object, reconcile.Request]
	q   workqueue.TypedRateLimitingInterface[reconcile.Request]

	mu sync.Mutex
	// pending are the events not handed on yet, in order.
	pending []func()
	// busy: a goroutine is handing pending on, or the replay of join is
	// under way (which hands them on when it ends).
	busy bool
}

// give queues f and, unless they are being handed on already, starts a
// goroutine that hands the pending events on.
func (s *subscriber) give(f func()) {
	s.mu.Lock()
	s.pending = append(s.pending, f)
	start := !s.busy
	s.busy = true
	s.mu.Unlock()
	if start {
		go s.drain()
	}
}

// drain hands the pending events on until there are none, then lets the
// buffer go.
func (s *subscriber) drain() {
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		if len(batch) == 0 {
			s.busy = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, f := range batch {
			if s.ctx.Err() == nil {
				f()
			}
		}
	}
}

func newHub(infs []informer) (*hub, error) {
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

// idle reports whether the hub has no subscriber: an event now would
// reach nobody (one who joins later is handed the stores).
func (h *hub) idle() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs) == 0
}

// each gives every subscriber the event f makes for it; no lock is held
// while a handler runs.
func (h *hub) each(f func(*subscriber) func()) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		s.give(f(s))
	}
}

func (h *hub) OnAdd(obj any, initial bool) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	h.each(func(s *subscriber) func() {
		return func() {
			s.h.Create(s.ctx, event.TypedCreateEvent[client.Object]{Object: o, IsInInitialList: initial}, s.q)
		}
	})
}

func (h *hub) OnUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 {
		return
	}
	h.each(func(s *subscriber) func() {
		return func() {
			s.h.Update(s.ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: o, ObjectNew: n}, s.q)
		}
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
	h.each(func(s *subscriber) func() {
		return func() { s.h.Delete(s.ctx, e, s.q) }
	})
}

// join adds s, then hands it, as creates, what the informers hold: every
// event after it joined reaches it through the hub, and every one before
// is in the stores (an informer updates its store before it hands an event
// on). The events the hub gives it during the replay wait in its mailbox
// until the replay ends, so a delete that comes while the replay runs
// reaches it after the replayed create, never before. Some objects may so
// reach it twice, which queues one reconcile. When join returns, s has
// handed on the replay and what came during it. It leaves when ctx ends,
// and does not join (join reports false) if ctx ends before the informers
// have listed.
func (h *hub) join(s *subscriber) bool {
	// Joined only once the informers have listed, a subscriber is handed
	// their first list from the stores, not through its mailbox, which so
	// never holds a whole kind at a start.
	if !toolscache.WaitForCacheSync(s.ctx.Done(), h.synced) {
		return false
	}
	s.mu.Lock()
	s.busy = true
	s.mu.Unlock()
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
			if s.ctx.Err() != nil {
				break
			}
			if o, ok := obj.(client.Object); ok {
				s.h.Create(s.ctx, event.TypedCreateEvent[client.Object]{Object: o, IsInInitialList: true}, s.q)
			}
		}
	}
	s.drain()
	return true
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

	once sync.Once
	// ok: the source joined the hub (read once joined is closed).
	ok bool
}

var _ source.SyncingSource = &hubSource{}

func (s *hubSource) String() string { return fmt.Sprintf("index source: %s", s.kind) }

// Start joins the hub; it returns at once, and WaitForSync waits for the
// hub's objects to have been handed on. A source starts once.
func (s *hubSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	started := false
	s.once.Do(func() {
		started = true
		go func() {
			s.ok = s.hub.join(&subscriber{ctx: ctx, h: s.h, q: q})
			close(s.joined)
		}()
	})
	if !started {
		return fmt.Errorf("%s: started already", s)
	}
	return nil
}

// WaitForSync waits until this source has joined the hub: the informers
// have listed, and it has handed on what they hold and what came while it
// was handed that.
func (s *hubSource) WaitForSync(ctx context.Context) error {
	select {
	case <-s.joined:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the %s index: %w", s.kind, ctx.Err())
	}
	if !s.ok {
		return fmt.Errorf("waiting for the %s index: its controller stopped before the informers listed", s.kind)
	}
	return nil
}
