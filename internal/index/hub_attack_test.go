package index

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tokensync/tokensync/internal/shard"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// scriptLW serves a settable list and a new FakeWatcher per Watch call.
type scriptLW struct {
	mu      sync.Mutex
	items   []metav1.PartialObjectMetadata
	rv      string
	lists   int
	watches chan *watch.FakeWatcher
}

func newScriptLW(items []metav1.PartialObjectMetadata) *scriptLW {
	return &scriptLW{items: items, rv: "1", watches: make(chan *watch.FakeWatcher, 16)}
}

func (l *scriptLW) set(items []metav1.PartialObjectMetadata, rv string) {
	l.mu.Lock()
	l.items, l.rv = items, rv
	l.mu.Unlock()
}

func (l *scriptLW) List(metav1.ListOptions) (runtime.Object, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lists++
	items := append([]metav1.PartialObjectMetadata(nil), l.items...)
	return &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: l.rv}, Items: items}, nil
}

func (l *scriptLW) Watch(metav1.ListOptions) (watch.Interface, error) {
	w := watch.NewFakeWithChanSize(1000, false)
	l.watches <- w
	return w, nil
}
func (l *scriptLW) IsWatchListSemanticsUnSupported() bool { return true }

// view is a subscriber that keeps, per key, what its events say.
type view struct {
	mu      sync.Mutex
	present map[string]string // key -> rv
	log     []string
	// gate, when set, is called on every replayed (initial) create.
	gate func(key string)
}

func newView() *view { return &view{present: map[string]string{}} }

func (v *view) handler() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			k := client.ObjectKeyFromObject(e.Object).String()
			if e.IsInInitialList && v.gate != nil {
				v.gate(k)
			}
			v.mu.Lock()
			v.present[k] = e.Object.GetResourceVersion()
			v.log = append(v.log, fmt.Sprintf("create %s@%s initial=%v", k, e.Object.GetResourceVersion(), e.IsInInitialList))
			v.mu.Unlock()
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			k := client.ObjectKeyFromObject(e.ObjectNew).String()
			v.mu.Lock()
			v.present[k] = e.ObjectNew.GetResourceVersion()
			v.log = append(v.log, fmt.Sprintf("update %s@%s", k, e.ObjectNew.GetResourceVersion()))
			v.mu.Unlock()
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			k := client.ObjectKeyFromObject(e.Object).String()
			v.mu.Lock()
			delete(v.present, k)
			v.log = append(v.log, fmt.Sprintf("delete %s unknown=%v", k, e.DeleteStateUnknown))
			v.mu.Unlock()
		},
	}
}

func (v *view) has(k string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.present[k]
	return ok
}

func newQueue(t *testing.T) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	return q
}

// slimInformer is the index's informer of the Secrets lw serves.
func slimInformer(t *testing.T, lw toolscache.ListerWatcher) *compact {
	t.Helper()
	return newCompact(lw, "Secret", t.Name())
}

// runningHub is a hub over one running informer of lw, synced, and the
// informer's watch; the informer stops with the test.
func runningHub(t *testing.T, lw *scriptLW) (*hub, *watch.FakeWatcher, context.Context) {
	t.Helper()
	inf := slimInformer(t, lw)
	h, err := newHub([]informer{inf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go inf.Run(ctx.Done())
	eventually(t, "sync", func() bool { return inf.HasSynced() && h.synced() })
	return h, <-lw.watches, ctx
}

// storeKeys returns the keys of the informers' stores.
func storeKeys(infs []informer) map[string]bool {
	out := map[string]bool{}
	for _, inf := range infs {
		for _, k := range inf.GetStore().ListKeys() {
			out[k] = true
		}
	}
	return out
}

// TestAttackHub_ADeleteDuringTheReplayComesAfterIt: a source joins a
// running hub; while its replay of the store's snapshot is under way, the
// objects of that snapshot are deleted. Their deletes must reach the
// source after the replayed creates (they wait in its mailbox), so that
// its last event of each says it is gone, as the store does. (Before the
// mailboxes, the deletes came first.)
func TestAttackHub_ADeleteDuringTheReplayComesAfterIt(t *testing.T) {
	var items []metav1.PartialObjectMetadata
	for i := range 20 {
		items = append(items, secretMeta("team-a", fmt.Sprintf("s%d", i), "1"))
	}
	lw := newScriptLW(items)
	h, w, ctx := runningHub(t, lw)

	v := newView()
	release := make(chan struct{})
	var once sync.Once
	first := ""
	v.gate = func(k string) {
		once.Do(func() {
			first = k
			// The replay has listed the store; delete every other object
			// meanwhile.
			for i := range 20 {
				o := secretMeta("team-a", fmt.Sprintf("s%d", i), "2")
				if "team-a/"+o.Name != k {
					w.Delete(&o)
				}
			}
			// Wait for the deletes to reach the source through the hub.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if len(storeKeys(h.infs)) == 1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			close(release)
		})
		<-release
	}
	src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	want := storeKeys(h.infs)
	var stale []string
	v.mu.Lock()
	for k := range v.present {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	log := append([]string(nil), v.log...)
	v.mu.Unlock()
	if len(stale) > 0 {
		for _, l := range log {
			if l == "delete team-a/s3 unknown=false" || l == "create team-a/s3@1 initial=true" {
				t.Log(l)
			}
		}
		t.Fatalf("after the join (first replayed %s), the source's last event of %d deleted objects is a create: %v", first, len(stale), stale)
	}
}

// TestAttackHub_OneStuckControllerStallsNoOther: a mapper that blocks
// (the provider controllers' mappers List from the manager's cache, which
// blocks until that informer syncs) must not stop another controller's
// events of the kind, nor keep a source that joins meanwhile from
// syncing. (Before the mailboxes, the hub called every handler in turn
// under its lock, and both happened.)
func TestAttackHub_OneStuckControllerStallsNoOther(t *testing.T) {
	lw := newScriptLW(nil)
	h, w, ctx := runningHub(t, lw)

	stuck := make(chan struct{})
	defer close(stuck)
	slow := handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(context.Context, event.TypedCreateEvent[client.Object], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			<-stuck
		},
	}
	fast := newView()
	for _, hh := range []handler.TypedEventHandler[client.Object, reconcile.Request]{slow, fast.handler()} {
		s := &hubSource{hub: h, kind: "Secret", h: hh, joined: make(chan struct{})}
		if err := s.Start(ctx, newQueue(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := secretMeta("team-a", "a", "2"), secretMeta("team-a", "b", "3")
	w.Add(&a)
	w.Add(&b)
	var errs []string
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !(fast.has("team-a/a") && fast.has("team-a/b")) {
		time.Sleep(5 * time.Millisecond)
	}
	if !fast.has("team-a/a") || !fast.has("team-a/b") {
		errs = append(errs, "a healthy controller's source got no event for 2s because another controller's handler is blocked")
	}
	late := &hubSource{hub: h, kind: "Secret", h: newView().handler(), joined: make(chan struct{})}
	_ = late.Start(ctx, newQueue(t))
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	if err := late.WaitForSync(wctx); err != nil {
		errs = append(errs, "a controller starting meanwhile cannot sync: "+err.Error())
	}
	if len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestAttackHub_StartTwiceIsRefused: a second Start (the same source
// passed to two controllers, or started again) is refused, where it once
// closed joined twice and the process panicked in Start's goroutine.
func TestAttackHub_StartTwiceIsRefused(t *testing.T) {
	h, _ := newHub(nil)
	s := &hubSource{hub: h, kind: "Secret", h: newView().handler(), joined: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, newQueue(t)); err == nil {
		t.Fatal("a second Start was accepted")
	}
	if err := s.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a second close would panic meanwhile
}

// TestAttackHub_RelistWhileJoiningThroughShardFilter: the index informer
// of a shard (Filter.NewInformer, client mode, without indexers); one
// source joined before, one joins while the informer relists after a 410,
// during which objects are deleted, updated and created (some of another
// shard). Every source ends with exactly what the store holds (checked on
// keys the replay-ordering bug above cannot touch: it only adds stale
// keys), gets a delete of every object it saw that went away, and never
// sees another shard's object.
func TestAttackHub_RelistWhileJoiningThroughShardFilter(t *testing.T) {
	sh, _ := shard.New(0, 2)
	f := shard.NewFilter(sh, func(runtime.Object) (bool, error) { return true, nil }, logr.Discard())
	var nss []string
	for i := 0; len(nss) < 40; i++ {
		nss = append(nss, fmt.Sprintf("ns-%d", i))
	}
	var items []metav1.PartialObjectMetadata
	for _, ns := range nss {
		for j := range 50 {
			items = append(items, secretMeta(ns, fmt.Sprintf("s%d", j), "1"))
		}
	}
	for iter := range 10 {
		lw := newScriptLW(items)
		inf := slimInformer(t, f.ListWatch(lw, &metav1.PartialObjectMetadata{TypeMeta: secretType}))
		h, err := newHub([]informer{inf})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		early := newView()
		es := &hubSource{hub: h, kind: "Secret", h: early.handler(), joined: make(chan struct{})}
		_ = es.Start(ctx, newQueue(t))
		go inf.Run(ctx.Done())
		if err := es.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
		w := <-lw.watches
		// The new state: s0..s24 deleted, s25..s49 updated, n0..n9 new.
		var next []metav1.PartialObjectMetadata
		for _, ns := range nss {
			for j := 25; j < 50; j++ {
				next = append(next, secretMeta(ns, fmt.Sprintf("s%d", j), "5"))
			}
			for j := range 10 {
				next = append(next, secretMeta(ns, fmt.Sprintf("n%d", j), "5"))
			}
		}
		lw.set(next, "5")
		w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
		late := newView()
		initial := len(inf.GetStore().ListKeys())
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			lw.mu.Lock()
			relisted := lw.lists >= 2
			lw.mu.Unlock()
			if iter%2 == 0 && relisted {
				break // the relist's List returned, or is under way
			}
			if iter%2 == 1 && len(inf.GetStore().ListKeys()) != initial {
				break // the store is part way through the Replace
			}
			yieldBriefly()
		}
		ls := &hubSource{hub: h, kind: "Secret", h: late.handler(), joined: make(chan struct{})}
		_ = ls.Start(ctx, newQueue(t))
		if err := ls.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the relist", func() bool {
			return len(storeKeys(h.infs)) == countOwned(sh, next)
		})
		want := storeKeys(h.infs)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			ok := true
			for _, v := range []*view{early, late} {
				v.mu.Lock()
				for k := range want {
					if _, in := v.present[k]; !in {
						ok = false
					}
				}
				v.mu.Unlock()
			}
			early.mu.Lock()
			ok = ok && len(early.present) == len(want)
			early.mu.Unlock()
			if ok {
				break
			}
		}
		for name, v := range map[string]*view{"early": early, "late": late} {
			v.mu.Lock()
			for k := range want {
				if _, ok := v.present[k]; !ok {
					t.Errorf("iter %d: %s source misses %s", iter, name, k)
				}
			}
			for k := range v.present {
				if ns, _, _ := strings.Cut(k, "/"); !sh.Owns(ns) {
					t.Errorf("iter %d: %s source saw another shard's %s", iter, name, k)
				}
				if !want[k] && name == "early" {
					t.Errorf("iter %d: %s source was not told %s went away", iter, name, k)
				}
			}
			v.mu.Unlock()
		}
		cancel()
		if t.Failed() {
			return
		}
	}
}

func countOwned(sh shard.Shard, items []metav1.PartialObjectMetadata) int {
	n := 0
	for _, it := range items {
		if sh.Owns(it.Namespace) {
			n++
		}
	}
	return n
}

func yieldBriefly() { time.Sleep(20 * time.Microsecond) }

// TestAttackHub_StopStartUnderLoad: controllers' sources join and leave
// (ctx cancelled) while events flow; no panic or race, every subscriber
// leaves, and no goroutine is left behind.
func TestAttackHub_StopStartUnderLoad(t *testing.T) {
	var items []metav1.PartialObjectMetadata
	for i := range 2000 {
		items = append(items, secretMeta(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("s%d", i), "1"))
	}
	x, inf, w := newTestIndex(t, items)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx.Done())
	eventually(t, "sync", inf.HasSynced)
	stopProducing := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; ; i++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			o := secretMeta(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("s%d", i%2000), fmt.Sprint(i+2))
			w.Modify(&o)
		}
	}()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, stop := context.WithCancel(ctx)
			r := &recorder{events: map[string]int{}}
			q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
			srcs := x.Sources(r.mapper)
			if i%2 == 0 {
				srcs = x.WatcherSources(r.mapper)
			}
			for _, s := range srcs {
				_ = s.Start(sctx, q)
			}
			time.Sleep(time.Duration(i%5) * time.Millisecond)
			stop()
			q.ShutDown() // what the controller does when its ctx ends
		}()
	}
	wg.Wait()
	close(stopProducing)
	<-produced
	for _, k := range kinds {
		h := x.hubs[k.Kind]
		eventually(t, "every subscriber to leave", func() bool {
			h.mu.RLock()
			defer h.mu.RUnlock()
			return len(h.subs) == 0
		})
	}
}

// TestAttackHub_ReplayOfOwnWriteCostsOneReconcile: a replayed create that
// carries the version of the reconciler's own write uses up the record;
// the watch's own event then queues one reconcile, and a foreign write is
// never dropped.
func TestAttackHub_ReplayOfOwnWriteCostsOneReconcile(t *testing.T) {
	x, _, _ := newTestIndex(t, nil)
	key := secretMeta("team-a", "t", "7")
	k := client.ObjectKeyFromObject(&key)
	x.own[k], x.written[k] = "7", "7"
	n := 0
	x.route("Secret", k, "7", true, func() { n++ }) // the replay
	x.route("Secret", k, "7", true, func() { n++ }) // the watch's own event
	x.route("Secret", k, "8", true, func() { n++ }) // someone else's
	if n != 2 {
		t.Fatalf("handled %d, want 2 (one extra reconcile, the foreign write)", n)
	}
}

// BenchmarkAttackHub_StoredIn: a lookup with one informer per watched
// namespace (DefaultNamespaces) reads the store of the key's namespace
// only, so it costs the same with 1, 50 or 500.
func BenchmarkAttackHub_StoredIn(b *testing.B) {
	for _, nns := range []int{1, 50, 500} {
		b.Run(fmt.Sprint(nns), func(b *testing.B) {
			infs := map[string]informer{}
			for n := range nns {
				var items []metav1.PartialObjectMetadata
				for i := range 20000 / nns {
					items = append(items, secretMeta(fmt.Sprintf("ns-%d", n), fmt.Sprintf("s%d", i), "1"))
				}
				inf := newCompact(&fakeLW{items: items, w: watch.NewFake()}, "Secret", "bench")
				stop := make(chan struct{})
				b.Cleanup(func() { close(stop) })
				go inf.Run(stop)
				infs[fmt.Sprintf("ns-%d", n)] = inf
			}
			for _, inf := range infs {
				for !inf.HasSynced() {
					time.Sleep(time.Millisecond)
				}
			}
			key := client.ObjectKeyFromObject(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", nns-1), Name: "s0"}})
			b.ResetTimer()
			for range b.N {
				if _, ok := storedIn(infs, key); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

// TestAttackHub_AnEarlySourceGetsTheFirstListFromTheStore: a source that
// starts before the informer has listed joins once it has, and is handed
// the list from the store: while its handler takes the first object, its
// mailbox holds nothing, where it would otherwise hold the rest of the
// kind, once per controller.
func TestAttackHub_AnEarlySourceGetsTheFirstListFromTheStore(t *testing.T) {
	var items []metav1.PartialObjectMetadata
	for i := range 500 {
		items = append(items, secretMeta("team-a", fmt.Sprintf("s%d", i), "1"))
	}
	lw := newScriptLW(items)
	inf := slimInformer(t, lw)
	h, err := newHub([]informer{inf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := newView()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	v.gate = func(string) {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	go inf.Run(ctx.Done())
	<-held
	eventually(t, "the list", h.synced)
	h.mu.RLock()
	var pending int
	for s := range h.subs {
		s.mu.Lock()
		pending += len(s.pending)
		s.mu.Unlock()
	}
	h.mu.RUnlock()
	close(release)
	if pending != 0 {
		t.Fatalf("%d events of the first list wait in the mailbox", pending)
	}
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if k := fmt.Sprintf("team-a/s%d", i); !v.has(k) {
			t.Fatalf("%s not handed on", k)
		}
	}
}
