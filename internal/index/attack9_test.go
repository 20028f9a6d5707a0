package index

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// TestAttack9_ASourceWaitsForEveryNamespacesInformer: with one informer
// per watched namespace, a source is synced only once every namespace's
// informer has listed, and is then handed what each of them holds.
func TestAttack9_ASourceWaitsForEveryNamespacesInformer(t *testing.T) {
	lwA := newScriptLW([]metav1.PartialObjectMetadata{secretMeta("team-a", "a", "1")})
	lwB := newScriptLW([]metav1.PartialObjectMetadata{secretMeta("team-b", "b", "1")})
	infA, infB := slimInformer(t, lwA), slimInformer(t, lwB)
	h, err := newHub([]informer{infA, infB})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go infA.Run(ctx.Done())
	eventually(t, "team-a to list", infA.HasSynced)
	v := newView()
	src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = src.WaitForSync(wctx)
	wcancel()
	if err == nil {
		t.Fatal("the source synced while team-b's informer had not listed")
	}
	// The (still) running join hands out nothing meanwhile.
	if v.has("team-a/a") {
		t.Fatal("the source was handed team-a's objects before team-b's informer listed")
	}
	go infB.Run(ctx.Done())
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"team-a/a", "team-b/b"} {
		if !v.has(k) {
			t.Fatalf("%s not handed on when the source synced", k)
		}
	}
	// Events of both namespaces reach it after.
	wA, wB := <-lwA.watches, <-lwB.watches
	a2, b2 := secretMeta("team-a", "a2", "2"), secretMeta("team-b", "b2", "2")
	wA.Add(&a2)
	wB.Add(&b2)
	eventually(t, "both namespaces' creates", func() bool { return v.has("team-a/a2") && v.has("team-b/b2") })
}

// TestAttack9_ControllerStopsBeforeTheList: a source whose controller
// stops before the informers list does not join: WaitForSync says so,
// and the hub keeps no subscriber for it (nor hands it the list later).
func TestAttack9_ControllerStopsBeforeTheList(t *testing.T) {
	lw := newScriptLW([]metav1.PartialObjectMetadata{secretMeta("team-a", "a", "1")})
	inf := slimInformer(t, lw)
	h, err := newHub([]informer{inf})
	if err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithCancel(context.Background())
	defer icancel()
	sctx, stop := context.WithCancel(ictx)
	v := newView()
	src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(sctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	stop()
	if err := src.WaitForSync(ictx); err == nil {
		t.Fatal("WaitForSync succeeded for a source whose controller stopped before the list")
	}
	go inf.Run(ictx.Done())
	eventually(t, "the list", h.synced)
	time.Sleep(50 * time.Millisecond)
	h.mu.RLock()
	n := len(h.subs)
	h.mu.RUnlock()
	if n != 0 || v.has("team-a/a") {
		t.Fatalf("a stopped source: %d subscribers, handed the list: %v", n, v.has("team-a/a"))
	}
}

// TestAttack9_RelistTombstoneReachesSourcesAndForgetsOwnWrite: an object
// deleted while the watch was down comes back from the relist as a
// DeletedFinalStateUnknown; every source gets a delete (state unknown),
// and the token controller's forgets what it wrote of that Secret.
func TestAttack9_RelistTombstoneReachesSourcesAndForgetsOwnWrite(t *testing.T) {
	lw := newScriptLW([]metav1.PartialObjectMetadata{secretMeta("team-a", "gone", "1"), secretMeta("team-a", "kept", "1")})
	h, w, ctx := runningHub(t, lw)
	x := newIndex(func(string, types.NamespacedName) (string, bool) { return "", true }, map[string]*hub{"Secret": h})
	v := newView()
	src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	r := &recorder{events: map[string]int{}}
	var tokenSrc *hubSource
	for _, s := range x.Sources(r.mapper) {
		if hs := s.(*hubSource); hs.kind == "Secret" {
			tokenSrc = hs
		}
	}
	if err := tokenSrc.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := tokenSrc.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "team-a", Name: "gone"}
	x.mu.Lock()
	x.own[key], x.written[key] = "9", "9" // a write whose event never came
	x.mu.Unlock()
	before := r.count("gone")
	lw.set([]metav1.PartialObjectMetadata{secretMeta("team-a", "kept", "1")}, "5")
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
	eventually(t, "the tombstone delete", func() bool { return !v.has("team-a/gone") && r.count("gone") > before })
	v.mu.Lock()
	found := false
	for _, l := range v.log {
		found = found || l == "delete team-a/gone unknown=true"
	}
	v.mu.Unlock()
	if !found {
		t.Fatal("the relist's delete did not say the final state is unknown")
	}
	eventually(t, "the own write to be forgotten", func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		_, o := x.own[key]
		_, wr := x.written[key]
		return !o && !wr
	})
	if !v.has("team-a/kept") {
		t.Fatal("an object still there was deleted")
	}
}

// TestAttack9_AWriteInOneNamespaceLeavesTheSameNameInAnother: the
// reconciler writes team-a/t; the events of team-b/t, the same name in
// another namespace, are neither held while the write is under way nor
// dropped as its own when they carry the version written; what Secret
// answers for team-b/t is team-b's store, not the write.
func TestAttack9_AWriteInOneNamespaceLeavesTheSameNameInAnother(t *testing.T) {
	a := types.NamespacedName{Namespace: "team-a", Name: "t"}
	b := types.NamespacedName{Namespace: "team-b", Name: "t"}
	var mu sync.Mutex
	store := map[types.NamespacedName]string{a: "6", b: "3"}
	x := newIndex(func(_ string, k types.NamespacedName) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		rv, ok := store[k]
		return rv, ok
	}, nil)
	handledB, handledA := 0, 0
	x.Begin(a)
	x.route("Secret", b, "7", true, func() { handledB++ })
	if handledB != 1 {
		t.Fatal("team-b/t's event was held while team-a/t was being written")
	}
	x.route("Secret", a, "7", true, func() { handledA++ }) // held
	x.Wrote(a, "7")
	if handledA != 0 {
		t.Fatal("the own write's held event was handled")
	}
	x.Begin(a)
	x.Wrote(a, "8")
	if rv, ok := x.Secret(a); rv != "8" || !ok {
		t.Fatalf("Secret(team-a/t) = %q, %v, want the written 8", rv, ok)
	}
	if rv, ok := x.Secret(b); rv != "3" || !ok {
		t.Fatalf("Secret(team-b/t) = %q, %v after a write of team-a/t, want team-b's 3", rv, ok)
	}
	x.route("Secret", b, "8", true, func() { handledB++ })
	if handledB != 2 {
		t.Fatal("team-b/t's event at the version written to team-a/t was dropped as the reconciler's own")
	}
	x.route("Secret", a, "8", true, func() { handledA++ })
	if handledA != 0 {
		t.Fatal("team-a/t's own write event was handled")
	}
}

// TestAttack9_ManySourcesJoinDuringEventsAcrossNamespaces: many sources
// join, some before and some while events of several namespaces' informers
// flow; each ends with exactly what the stores hold.
func TestAttack9_ManySourcesJoinDuringEventsAcrossNamespaces(t *testing.T) {
	var lws []*scriptLW
	var infs []informer
	for n := range 4 {
		var items []metav1.PartialObjectMetadata
		for i := range 50 {
			items = append(items, secretMeta(fmt.Sprintf("ns-%d", n), fmt.Sprintf("s%d", i), "1"))
		}
		lw := newScriptLW(items)
		lws = append(lws, lw)
		infs = append(infs, slimInformer(t, lw))
	}
	h, err := newHub(infs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var views []*view
	join := func() {
		v := newView()
		views = append(views, v)
		s := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
		if err := s.Start(ctx, newQueue(t)); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		join()
	}
	for _, inf := range infs {
		go inf.Run(ctx.Done())
	}
	eventually(t, "sync", h.synced)
	var wg sync.WaitGroup
	for n, lw := range lws {
		w := <-lw.watches
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				o := secretMeta(fmt.Sprintf("ns-%d", n), fmt.Sprintf("s%d", i%60), fmt.Sprint(i+2))
				switch {
				case i%60 >= 50 && i/60%2 == 0:
					w.Add(&o)
				case i%60 >= 50:
					w.Delete(&o)
				default:
					w.Modify(&o)
				}
			}
		}()
	}
	for range 10 {
		join()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	eventually(t, "every source to match the stores", func() bool {
		want := map[string]string{}
		for _, inf := range infs {
			for _, o := range inf.GetStore().List() {
				e := o.(*entry)
				want[e.namespace+"/"+e.name] = e.rv
			}
		}
		for _, v := range views {
			v.mu.Lock()
			same := len(v.present) == len(want)
			for k, rv := range want {
				same = same && v.present[k] == rv
			}
			v.mu.Unlock()
			if !same {
				return false
			}
		}
		return true
	})
}

// startEnv starts an API server (envtest), or skips without one.
func startEnv(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

// TestAttack9_EnvtestOnlyTheWatchedNamespaces: an index of team-a and
// team-b over a real API server. A Secret of team-c (not watched) reads as
// absent, and a create of it with the writer's precondition (no such
// version) is refused instead of taking it over; the watched namespaces'
// objects read at their versions; sources get the events of team-a and
// team-b only.
func TestAttack9_EnvtestOnlyTheWatchedNamespaces(t *testing.T) {
	cfg, c := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := map[string]*corev1.Secret{}
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, StringData: map[string]string{"k": "theirs"}}
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		live[ns] = s
		if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}); err != nil {
			t.Fatal(err)
		}
	}
	x, err := New(cfg, Options{Namespaces: []string{"team-a", "team-b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.informers) != 2*len(kinds) {
		t.Fatalf("%d informers, want one per watched namespace and kind", len(x.informers))
	}
	r := &recorder{events: map[string]int{}}
	srcs := x.Sources(r.mapper)
	q := newQueue(t)
	for _, s := range srcs {
		if err := s.Start(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = x.Start(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if !x.WaitForCacheSync(wctx) {
		t.Fatal("not synced")
	}
	for _, s := range srcs {
		if err := s.(source.SyncingSource).WaitForSync(wctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		if rv, ok := x.Secret(types.NamespacedName{Namespace: ns, Name: "s"}); !ok || rv != live[ns].ResourceVersion {
			t.Fatalf("%s/s: %q, %v; want %s", ns, rv, ok, live[ns].ResourceVersion)
		}
		if rv, ok := x.ConfigMap(types.NamespacedName{Namespace: ns, Name: "cm"}); !ok || rv == "" {
			t.Fatalf("%s/cm: %q, %v", ns, rv, ok)
		}
		if _, ok := x.Secret(types.NamespacedName{Namespace: ns, Name: "absent"}); ok {
			t.Fatalf("%s/absent exists", ns)
		}
	}
	foreign := types.NamespacedName{Namespace: "team-c", Name: "s"}
	if _, ok := x.Secret(foreign); ok {
		t.Fatal("team-c/s, in a namespace not watched, reads as existing")
	}
	// What the writer does with a name the index says is free: a create
	// with a version no object has. The API server refuses it.
	ac := corev1ac.Secret("s", "team-c").WithStringData(map[string]string{"k": "tokensync"}).WithResourceVersion("18446744073709551615")
	err = c.Apply(ctx, ac, client.FieldOwner("tokensync"), client.ForceOwnership)
	if !apierrors.IsConflict(err) {
		t.Fatalf("a create of an existing foreign Secret: %v, want a Conflict", err)
	}
	got := &corev1.Secret{}
	if err := c.Get(ctx, foreign, got); err != nil || string(got.Data["k"]) != "theirs" {
		t.Fatalf("the foreign Secret changed: %v %q", err, got.Data["k"])
	}
	// Events: team-b's reach the sources, team-c's never.
	for _, ns := range []string{"team-c", "team-b"} {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "new-" + ns}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "team-b's create", func() bool { return r.count("new-team-b") == 1 })
	if n := r.count("new-team-c"); n != 0 {
		t.Fatalf("%d events of a Secret in a namespace not watched", n)
	}
	if rv, ok := x.Secret(types.NamespacedName{Namespace: "team-b", Name: "new-team-b"}); !ok || rv == "" {
		t.Fatalf("team-b/new-team-b: %q, %v", rv, ok)
	}
}

// TestAttack9_EnvtestRepeatedOrAllNamespaces: Options.Namespaces naming a
// namespace twice, or "" (all) beside a named one: each create still
// reaches a source once. (cmd's flag sorts, compacts and drops empty
// names, so only a caller of the package can pass these.)
func TestAttack9_EnvtestRepeatedOrAllNamespaces(t *testing.T) {
	cfg, c := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	for i, nss := range [][]string{{"team-a", "team-a"}, {"", "team-a"}} {
		x, err := New(cfg, Options{Namespaces: nss})
		if err != nil {
			t.Fatal(err)
		}
		xctx, xcancel := context.WithCancel(ctx)
		r := &recorder{events: map[string]int{}}
		go func() { _ = x.Start(xctx) }()
		startSources(xctx, t, x.Sources(r.mapper))
		name := fmt.Sprintf("new-%d", i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the create", func() bool { return r.count(name) >= 1 })
		time.Sleep(300 * time.Millisecond)
		if n := r.count(name); n != 1 {
			t.Errorf("Namespaces %q: a create reached the source %d times", nss, n)
		}
		xcancel()
	}
}

// TestAttack9_ASlowSubscriberGetsEveryKeysEventsInOrder: a handler that
// takes its time has a backlog in its mailbox; it is handed each key's
// events in the order the informer saw them, and ends where the store is.
func TestAttack9_ASlowSubscriberGetsEveryKeysEventsInOrder(t *testing.T) {
	lw := newScriptLW(nil)
	h, w, ctx := runningHub(t, lw)
	v := newView()
	inner := v.handler()
	slow := handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			time.Sleep(100 * time.Microsecond)
			inner.Create(ctx, e, q)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			time.Sleep(100 * time.Microsecond)
			inner.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			time.Sleep(100 * time.Microsecond)
			inner.Delete(ctx, e, q)
		},
	}
	src := &hubSource{hub: h, kind: "Secret", h: slow, joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	rv := 2
	for round := range 5 {
		for i := range 20 {
			ns, name := fmt.Sprintf("ns-%d", i%3), fmt.Sprintf("s%d", i)
			o := secretMeta(ns, name, fmt.Sprint(rv))
			w.Add(&o)
			m := secretMeta(ns, name, fmt.Sprint(rv+1))
			w.Modify(&m)
			rv += 2
			if (i+round)%2 == 0 {
				d := secretMeta(ns, name, fmt.Sprint(rv))
				w.Delete(&d)
				rv++
			}
		}
	}
	eventually(t, "the backlog", func() bool {
		want := storeKeys(h.infs)
		v.mu.Lock()
		defer v.mu.Unlock()
		if len(v.log) < 5*20*2+50 || len(v.present) != len(want) {
			return false
		}
		for k := range want {
			if _, ok := v.present[k]; !ok {
				return false
			}
		}
		return true
	})
	// Per key, the versions handed on never go back.
	v.mu.Lock()
	defer v.mu.Unlock()
	last := map[string]int{}
	for _, l := range v.log {
		var op, k string
		var n int
		if _, err := fmt.Sscanf(strings.Replace(l, "@", " ", 1), "%s %s %d", &op, &k, &n); err != nil {
			continue // deletes carry no version here
		}
		if n < last[k] {
			t.Fatalf("%s handed on after version %d", l, last[k])
		}
		last[k] = n
	}
}
