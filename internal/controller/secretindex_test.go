package controller

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// applyStub answers Apply with resourceVersion rv (or err), calling during
// first, as a watch event that overtakes the response would.
type applyStub struct {
	client.Client
	rv     string
	err    error
	during func()
}

func (s *applyStub) Apply(_ context.Context, obj runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
	if s.during != nil {
		s.during()
	}
	if s.err != nil {
		return s.err
	}
	if ac, ok := obj.(*corev1ac.SecretApplyConfiguration); ok {
		ac.WithResourceVersion(s.rv)
	}
	return nil
}

func TestSecretVersionsDropOnlyTheVersionWritten(t *testing.T) {
	ctx := context.Background()
	v := &secretVersions{}
	handled := 0
	event := func(name, rv string) {
		v.event(types.NamespacedName{Namespace: "ns", Name: name}, rv, func(used func()) { handled++; used() })
	}
	stub := &applyStub{}
	c := versionsClient{Client: stub, versions: v}
	apply := func(name, rv string, during func()) error {
		stub.rv, stub.during = rv, during
		return c.Apply(ctx, corev1ac.Secret(name, "ns"))
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

	// The event of the write arrives before Apply returns: held, then
	// dropped. Another version seen meanwhile is handled once Apply
	// returns, not before.
	if err := apply("a", "10", func() {
		event("a", "10")
		event("a", "9")
		if handled != 0 {
			t.Errorf("an event was handled while its Secret was being applied")
		}
		if !v.busy(key("a")) {
			t.Errorf("a Secret being applied is not busy")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if handled != 1 {
		t.Fatalf("%d events handled after the apply, want 1 (the other version)", handled)
	}

	// The event of the write arrives after Apply returned: dropped. A later
	// edit has another version: handled at once, and makes a cached copy
	// of the written version stale.
	handled = 0
	if err := apply("b", "20", nil); err != nil {
		t.Fatal(err)
	}
	event("b", "20")
	if handled != 0 || v.stale(key("b"), "20") {
		t.Fatalf("the reconciler's own write was handled (%d) or seen as stale", handled)
	}
	event("b", "21")
	if handled != 1 || !v.stale(key("b"), "20") || v.stale(key("b"), "21") {
		t.Fatalf("an edit after the write: handled %d, stale %v/%v", handled, v.stale(key("b"), "20"), v.stale(key("b"), "21"))
	}
	if v.stale(key("never-seen"), "1") {
		t.Fatal("a Secret never seen is stale")
	}

	// A failed apply writes nothing: what was held is handled.
	handled = 0
	stub.err = errors.New("conflict")
	if err := apply("d", "", func() { event("d", "30") }); err == nil {
		t.Fatal("the apply error was lost")
	}
	stub.err = nil
	if handled != 1 || v.busy(key("d")) {
		t.Fatalf("after a failed apply: %d events handled, busy %v", handled, v.busy(key("d")))
	}

	// A deletion of a Secret no OAuthClientToken uses forgets it.
	v.deleted(key("b"), false)
	if v.stale(key("b"), "20") || v.busy(key("b")) {
		t.Fatal("a deleted Secret is still known")
	}
	// A deletion of a used Secret makes every cached copy stale, until the
	// cache has none.
	if err := apply("c", "40", nil); err != nil {
		t.Fatal(err)
	}
	v.deleted(key("c"), true)
	if !v.stale(key("c"), "40") || v.busy(key("c")) {
		t.Fatalf("a deleted Secret: cached copy stale %v, busy %v", v.stale(key("c"), "40"), v.busy(key("c")))
	}
	v.gone(key("c"))
	if v.stale(key("c"), "40") {
		t.Fatal("the deletion is still recorded after the cache lost the Secret")
	}
	// The reconciler writing it again makes it the latest.
	v.deleted(key("c"), true)
	if err := apply("c", "41", nil); err != nil {
		t.Fatal(err)
	}
	if v.stale(key("c"), "41") || !v.stale(key("c"), "40") {
		t.Fatal("a Secret written again after its deletion")
	}
}

// countingReader counts the reads that reach it.
type countingReader struct {
	client.Reader
	n      atomic.Int32
	mu     sync.Mutex
	byName map[string]int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.n.Add(1)
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]int{}
	}
	c.byName[key.Name]++
	c.mu.Unlock()
	return c.Reader.Get(ctx, key, obj, opts...)
}

// of returns how many reads of objects named name were made.
func (c *countingReader) of(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byName[name]
}

func TestSecretMetadataReaderAsksTheAPIServerOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	managed := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "managed", ResourceVersion: "5",
		Labels: map[string]string{"oauth.tokensync.io/managed": "true"}}}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other", ResourceVersion: "6"}}
	cached := fake.NewClientBuilder().WithObjects(managed.DeepCopy()).Build()
	api := &countingReader{Reader: fake.NewClientBuilder().WithObjects(managed.DeepCopy(), other.DeepCopy()).Build()}
	versions := &secretVersions{}
	r := &secretMetadataReader{cache: cached, api: api, versions: versions}
	get := func(name string) (*metav1.PartialObjectMetadata, error) {
		m := &metav1.PartialObjectMetadata{TypeMeta: secretTypeMeta}
		return m, r.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, m)
	}

	// A managed Secret comes from the cache.
	if m, err := get("managed"); err != nil || m.ResourceVersion != managed.ResourceVersion || api.n.Load() != 0 {
		t.Fatalf("managed: %v, %v, %d API reads", m, err, api.n.Load())
	}
	// Without an index, every miss asks the API server.
	if m, err := get("other"); err != nil || m.Name != "other" || api.n.Load() != 1 {
		t.Fatalf("other: %v, %v, %d API reads", m, err, api.n.Load())
	}
	if _, err := get("missing"); !apierrors.IsNotFound(err) || api.n.Load() != 2 {
		t.Fatalf("missing: %v, %d API reads", err, api.n.Load())
	}

	// With an index, a name it does not know is not found at once.
	r.index = &secretIndex{names: map[string]map[string]string{"ns": {"managed": "5", "other": "6"}}}
	api.n.Store(0)
	if _, err := get("missing"); !apierrors.IsNotFound(err) || api.n.Load() != 0 {
		t.Fatalf("missing, indexed: %v, %d API reads", err, api.n.Load())
	}
	if _, err := get("other"); err != nil || api.n.Load() != 1 {
		t.Fatalf("other, indexed: %v, %d API reads", err, api.n.Load())
	}
	// Unless the reconciler is writing it.
	versions.begin(types.NamespacedName{Namespace: "ns", Name: "missing"})
	if _, err := get("missing"); !apierrors.IsNotFound(err) || api.n.Load() != 2 {
		t.Fatalf("missing, being written: %v, %d API reads", err, api.n.Load())
	}
	versions.end(types.NamespacedName{Namespace: "ns", Name: "missing"}, "")

	// A cached copy older than a version seen is read from the API server.
	versions.event(types.NamespacedName{Namespace: "ns", Name: "managed"}, "7", func(used func()) { used() })
	api.n.Store(0)
	if _, err := get("managed"); err != nil || api.n.Load() != 1 {
		t.Fatalf("stale managed: %v, %d API reads", err, api.n.Load())
	}

	// A managed Secret deleted while the cache still holds it: not found,
	// as the API server says, not the cached copy.
	if err := api.Reader.(client.Client).Delete(ctx, managed.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	versions.deleted(types.NamespacedName{Namespace: "ns", Name: "managed"}, true)
	if _, err := get("managed"); !apierrors.IsNotFound(err) {
		t.Fatalf("deleted managed Secret still in the cache: %v", err)
	}
}

// fakeSecrets serves pages of Secret metadata and hands out fake watches.
type fakeSecrets struct {
	metadata.ResourceInterface
	mu      sync.Mutex
	ns      string // the namespace of the Secrets listed; "ns" when empty
	names   []string
	rv      string
	lists   int
	limits  []int64
	watches chan *watch.FakeWatcher
	from    chan string
}

func (f *fakeSecrets) List(_ context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if opts.Continue == "" {
		f.lists++
	}
	f.limits = append(f.limits, opts.Limit)
	start := 0
	if opts.Continue != "" {
		start = len(opts.Continue)
	}
	end := min(start+int(opts.Limit), len(f.names))
	list := &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: f.rv}}
	ns := cmp.Or(f.ns, "ns")
	for _, n := range f.names[start:end] {
		list.Items = append(list.Items, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n, ResourceVersion: "v-" + n}})
	}
	if end < len(f.names) {
		list.Continue = string(make([]byte, end))
	}
	return list, nil
}

func (f *fakeSecrets) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w := watch.NewFake()
	f.from <- opts.ResourceVersion
	f.watches <- w
	return w, nil
}

func secretEvent(name, rv string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: secretTypeMeta, ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

func TestSecretIndexListsWatchesAndResyncs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeSecrets{names: []string{"a", "b", "c", "creds", "e"}, rv: "100", watches: make(chan *watch.FakeWatcher, 1), from: make(chan string, 1)}
	resynced := atomic.Int32{}
	x := &secretIndex{
		secrets:  f,
		versions: &secretVersions{},
		pageSize: 2,
		mapper: func(_ context.Context, m *metav1.PartialObjectMetadata) []reconcile.Request {
			if m.Name == "creds" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "tok"}}}
			}
			return nil
		},
		all: func(context.Context) ([]reconcile.Request, error) {
			resynced.Add(1)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "everything"}}}, nil
		},
	}
	// Before its list, the index cannot tell: a Secret may exist, and its
	// version is unknown.
	if a := (client.ObjectKey{Namespace: "ns", Name: "a"}); !x.has(a) || x.version(a) != "" {
		t.Fatal("an index that has not listed yet claims to know")
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if err := x.Start(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	key := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: "ns", Name: name} }
	for _, n := range f.names {
		if !x.has(key(n)) || x.version(key(n)) != "v-"+n {
			t.Fatalf("%s was listed but is in the index as %v, version %q", n, x.has(key(n)), x.version(key(n)))
		}
	}
	if x.has(key("z")) || len(f.limits) != 3 || f.limits[0] != 2 {
		t.Fatalf("index after the list: z %v, pages %v", x.has(key("z")), f.limits)
	}
	if rv := <-f.from; rv != "100" {
		t.Fatalf("watch from %q, want the list's 100", rv)
	}
	w := <-f.watches

	next := func() reconcile.Request {
		t.Helper()
		done := make(chan reconcile.Request)
		go func() { r, _ := q.Get(); q.Done(r); done <- r }()
		select {
		case r := <-done:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("nothing queued")
		}
		return reconcile.Request{}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// An unrelated Secret is indexed, queues nothing; a credentials change
	// queues its OAuthClientToken; a deletion leaves the index.
	w.Add(secretEvent("unrelated", "101"))
	w.Modify(secretEvent("creds", "102"))
	if r := next(); r.Name != "tok" {
		t.Fatalf("queued %v, want tok", r)
	}
	if !x.has(key("unrelated")) || q.Len() != 0 {
		t.Fatalf("unrelated: indexed %v, queue %d", x.has(key("unrelated")), q.Len())
	}
	if v := x.version(key("creds")); v != "102" {
		t.Fatalf("creds at version %q after its update, want 102", v)
	}
	w.Delete(secretEvent("a", "103"))
	waitFor("a to leave the index", func() bool { return !x.has(key("a")) && x.version(key("a")) == "" })

	// The server ends the watch: it resumes from the last version seen.
	w.Action(watch.Bookmark, secretEvent("", "110"))
	w.Stop()
	if rv := <-f.from; rv != "110" {
		t.Fatalf("resumed from %q, want the bookmark's 110", rv)
	}
	w = <-f.watches

	// The version expired: list again, queue every OAuthClientToken.
	f.mu.Lock()
	f.names, f.rv = []string{"x"}, "200"
	f.mu.Unlock()
	w.Error(&apierrors.NewResourceExpired("too old").ErrStatus)
	if r := next(); r.Name != "everything" || resynced.Load() != 1 {
		t.Fatalf("after expiry: queued %v, %d resyncs", r, resynced.Load())
	}
	if rv := <-f.from; rv != "200" {
		t.Fatalf("watch after the relist from %q, want 200", rv)
	}
	<-f.watches
	if x.has(key("creds")) || !x.has(key("x")) {
		t.Fatal("the relist did not replace the index")
	}
}

// addHook is a queue that calls hook on each Add.
type addHook struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	hook func(reconcile.Request)
}

func (q addHook) Add(r reconcile.Request) { q.hook(r) }

// TestSecretIndexRecordsTheVersionBeforeQueueing checks that the reconcile
// an edit of a target Secret queues finds the cached copy of the version
// the reconciler wrote stale, however soon it starts: else it could take
// that copy for the Secret and never repair the edit.
func TestSecretIndexRecordsTheVersionBeforeQueueing(t *testing.T) {
	ctx := context.Background()
	v := &secretVersions{}
	key := types.NamespacedName{Namespace: "ns", Name: "tok"}
	if err := (versionsClient{Client: &applyStub{rv: "1"}, versions: v}).Apply(ctx, corev1ac.Secret("tok", "ns")); err != nil {
		t.Fatal(err)
	}
	x := &secretIndex{versions: v, mapper: func(context.Context, *metav1.PartialObjectMetadata) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: key}}
	}}
	queued, staleWhenQueued := 0, false
	q := addHook{hook: func(reconcile.Request) { queued++; staleWhenQueued = v.stale(key, "1") }}
	x.handle(ctx, watch.Modified, secretEvent("tok", "2"), q)
	if queued != 1 || !staleWhenQueued {
		t.Fatalf("queued %d, cached copy of the written version stale when queued: %v", queued, staleWhenQueued)
	}
}

// TestSecretIndexPerNamespace: with watched namespaces (--watch-namespaces)
// the index lists and watches each one through its own client, is synced
// only once all are listed, and a gap in one namespace's watch relists that
// namespace alone.
func TestSecretIndexPerNamespace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	newFake := func(ns string, names ...string) *fakeSecrets {
		return &fakeSecrets{ns: ns, names: names, rv: "100", watches: make(chan *watch.FakeWatcher, 1), from: make(chan string, 1)}
	}
	a, b := newFake("a", "creds", "x"), newFake("b", "y")
	x := &secretIndex{
		secrets:    nil, // a cluster-wide list or watch would panic
		namespaces: map[string]metadata.ResourceInterface{"a": a, "b": b},
		versions:   &secretVersions{},
		mapper: func(_ context.Context, m *metav1.PartialObjectMetadata) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: "tok-" + m.Name}}}
		},
		all: func(context.Context) ([]reconcile.Request, error) { return nil, nil },
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if err := x.Start(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	key := func(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
	for _, k := range []client.ObjectKey{key("a", "creds"), key("a", "x"), key("b", "y")} {
		if !x.has(k) {
			t.Fatalf("%v was listed but is not in the index", k)
		}
	}
	if x.has(key("a", "y")) || x.has(key("c", "z")) {
		t.Fatal("the index has Secrets no namespace listed")
	}
	wa, wb := <-a.watches, <-b.watches
	<-a.from
	<-b.from

	// An event in b is handled; a gap in b's watch relists b only.
	wb.Add(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "new", ResourceVersion: "101"}})
	r, _ := q.Get()
	q.Done(r)
	if r.Namespace != "b" || r.Name != "tok-new" || !x.has(key("b", "new")) {
		t.Fatalf("event in b: queued %v, indexed %v", r, x.has(key("b", "new")))
	}
	b.mu.Lock()
	b.names = []string{"z"}
	b.mu.Unlock()
	wb.Error(&apierrors.NewResourceExpired("too old").ErrStatus)
	<-b.watches
	<-b.from
	if !x.has(key("b", "z")) || x.has(key("b", "y")) || !x.has(key("a", "creds")) {
		t.Fatalf("after b relisted: b/z %v, b/y %v, a/creds %v", x.has(key("b", "z")), x.has(key("b", "y")), x.has(key("a", "creds")))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lists != 1 {
		t.Fatalf("namespace a was listed %d times, want once", a.lists)
	}
	_ = wa
}
