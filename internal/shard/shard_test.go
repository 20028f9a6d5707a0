package shard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apisharding "k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

func namespaces(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := []string{"default", "kube-system", "shop", "team-a", "team-b"}
	for len(out) < n {
		out = append(out, fmt.Sprintf("ns-%d-%x", len(out), r.Uint32()))
	}
	return out
}

func TestNewRefusesBadShards(t *testing.T) {
	for _, c := range [][2]int{{0, 0}, {-1, 2}, {2, 2}, {5, 3}} {
		if _, err := New(c[0], c[1]); err == nil {
			t.Errorf("New(%d, %d) succeeded", c[0], c[1])
		}
	}
	if _, err := New(3, 4); err != nil {
		t.Error(err)
	}
}

// TestHashIsTheServersHash checks Hash against apimachinery's sharding
// package, which the API server's selector uses, and against FNV-1a test
// vectors.
func TestHashIsTheServersHash(t *testing.T) {
	if got := Hash(""); got != 0xcbf29ce484222325 {
		t.Errorf("Hash(\"\") = %#x, want the FNV-1a 64 offset basis", got)
	}
	if got := Hash("a"); got != 0xaf63dc4c8601ec8c {
		t.Errorf("Hash(\"a\") = %#x", got)
	}
	for _, ns := range namespaces(200) {
		if got, want := fmt.Sprintf("%016x", Hash(ns)), apisharding.HashField(ns); got != want {
			t.Errorf("Hash(%q) = %s, the API server's %s", ns, got, want)
		}
	}
}

var selectorRE = regexp.MustCompile(`^shardRange\(object\.metadata\.namespace, '(0x[0-9a-f]{16}|0x10000000000000000)', '(0x[0-9a-f]{16}|0x10000000000000000)'\)$`)

// TestEveryNamespaceHasExactlyOneShard checks, for 1 to 7 shards, that the
// ranges tile [0, 2^64) evenly, that each namespace is owned by exactly
// one shard, and that Owns agrees with the API server's matching of the
// selector string.
func TestEveryNamespaceHasExactlyOneShard(t *testing.T) {
	nss := namespaces(2000)
	for k := 1; k <= 7; k++ {
		counts := make([]int, k)
		var prevEnd uint64
		for i := range k {
			s, _ := New(i, k)
			start, end, endMax := s.Range()
			if k > 1 {
				if start != prevEnd {
					t.Errorf("shard %s starts at %#x, the previous ended at %#x", s, start, prevEnd)
				}
				if endMax != (i == k-1) {
					t.Errorf("shard %s: end is 2^64 %v", s, endMax)
				}
				prevEnd = end
			}
			if k == 1 {
				if s.Selector() != "" {
					t.Errorf("one shard has selector %q", s.Selector())
				}
				continue
			}
			m := selectorRE.FindStringSubmatch(s.Selector())
			if m == nil {
				t.Fatalf("shard %s: selector %q is not in the server's format", s, s.Selector())
			}
			sel := apisharding.NewSelector(apisharding.ShardRangeRequirement{Key: Field, Start: m[1], End: m[2]})
			for _, ns := range nss {
				owns := s.Owns(ns)
				match, err := sel.Matches(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}})
				if err != nil {
					t.Fatal(err)
				}
				if owns != match {
					t.Fatalf("shard %s: Owns(%q) = %v, the server's selector matches %v", s, ns, owns, match)
				}
			}
		}
		for _, ns := range nss {
			n := 0
			for i := range k {
				s, _ := New(i, k)
				if s.Owns(ns) {
					counts[i]++
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d shards: namespace %q owned by %d shards", k, ns, n)
			}
		}
		for i, c := range counts {
			if want := len(nss) / k; c < want*8/10 || c > want*12/10 {
				t.Errorf("%d shards: shard %d owns %d of %d namespaces, want about %d", k, i, c, len(nss), want)
			}
		}
	}
	s, _ := New(1, 2)
	if !s.Owns("") {
		t.Error("a cluster-scoped object is not every shard's")
	}
	if got, want := s.Selector(), "shardRange(object.metadata.namespace, '0x8000000000000000', '0x10000000000000000')"; got != want {
		t.Errorf("selector %q, want %q", got, want)
	}
}

// fakeLW serves a fixed list and watch, recording the options it got.
type fakeLW struct {
	items     []corev1.Secret
	shardInfo bool
	opts      []metav1.ListOptions
	w         *watch.FakeWatcher
}

func (f *fakeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	f.opts = append(f.opts, opts)
	l := &corev1.SecretList{Items: append([]corev1.Secret(nil), f.items...)}
	if f.shardInfo && opts.ShardSelector != "" {
		l.ShardInfo = &metav1.ShardInfo{Selector: opts.ShardSelector}
	}
	return l, nil
}

func (f *fakeLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	f.opts = append(f.opts, opts)
	return f.w, nil
}

func secretIn(ns string) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}}
}

func namespaced(bool) func(runtime.Object) (bool, error) {
	return func(runtime.Object) (bool, error) { return true, nil }
}

// TestFilterInBothModes lists and watches through a shard's wrapper: the
// selector is always sent; a response with shardInfo is server mode, one
// without is client mode, and in both only the shard's objects pass, with
// the dropped ones counted.
func TestFilterInBothModes(t *testing.T) {
	s, _ := New(0, 2)
	var mine, theirs []string
	for _, ns := range namespaces(100) {
		if s.Owns(ns) {
			mine = append(mine, ns)
		} else {
			theirs = append(theirs, ns)
		}
	}
	for _, server := range []bool{true, false} {
		t.Run(fmt.Sprintf("shardInfo=%v", server), func(t *testing.T) {
			lw := &fakeLW{shardInfo: server, w: watch.NewFakeWithChanSize(10, false)}
			for _, ns := range mine {
				lw.items = append(lw.items, secretIn(ns))
			}
			if !server {
				for _, ns := range theirs {
					lw.items = append(lw.items, secretIn(ns))
				}
			}
			var logs strings.Builder
			f := NewFilter(s, namespaced(true), logr.New(&sinkTo{&logs}))
			reg := prometheus.NewRegistry()
			if err := f.Register(reg); err != nil {
				t.Fatal(err)
			}
			if f.Mode() != "" {
				t.Errorf("mode %q before any list", f.Mode())
			}
			w := f.Wrap(lw, &corev1.Secret{}).(toolscache.ListerWatcherWithContext)
			obj, err := w.ListWithContext(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if lw.opts[0].ShardSelector != s.Selector() {
				t.Errorf("list sent shardSelector %q, want %q", lw.opts[0].ShardSelector, s.Selector())
			}
			got := obj.(*corev1.SecretList).Items
			if len(got) != len(mine) {
				t.Errorf("list kept %d objects, the shard owns %d", len(got), len(mine))
			}
			for _, it := range got {
				if !s.Owns(it.Namespace) {
					t.Errorf("list kept a Secret of namespace %q, another shard's", it.Namespace)
				}
			}
			want, other := ModeServer, ModeClient
			if !server {
				want, other = ModeClient, ModeServer
			}
			if f.Mode() != want {
				t.Errorf("mode %q, want %q", f.Mode(), want)
			}
			if v := testutil.ToFloat64(f.mode.WithLabelValues(want)); v != 1 {
				t.Errorf("tokensync_shard_mode{mode=%q} = %v, want 1", want, v)
			}
			if v := testutil.ToFloat64(f.mode.WithLabelValues(other)); v != 0 {
				t.Errorf("tokensync_shard_mode{mode=%q} = %v, want 0", other, v)
			}
			if !strings.Contains(logs.String(), "mode="+want) {
				t.Errorf("no log line names mode %s: %q", want, logs.String())
			}
			dropped := testutil.ToFloat64(f.dropped.WithLabelValues("Secret"))
			if wantDropped := float64(len(lw.items) - len(mine)); dropped != wantDropped {
				t.Errorf("dropped %v, want %v", dropped, wantDropped)
			}

			wi, err := w.WatchWithContext(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if lw.opts[1].ShardSelector != s.Selector() {
				t.Errorf("watch sent shardSelector %q", lw.opts[1].ShardSelector)
			}
			a, b := secretIn(theirs[0]), secretIn(mine[0])
			lw.w.Add(&a)
			lw.w.Add(&b)
			lw.w.Action(watch.Bookmark, &corev1.Secret{})
			if e := <-wi.ResultChan(); e.Object.(*corev1.Secret).Namespace != mine[0] {
				t.Errorf("the watch passed an event of namespace %q", e.Object.(*corev1.Secret).Namespace)
			}
			if e := <-wi.ResultChan(); e.Type != watch.Bookmark {
				t.Errorf("the watch did not pass the bookmark: %v", e.Type)
			}
			wi.Stop()
		})
	}
}

// TestClusterScopedKindsAreNotSharded: no selector, nothing dropped.
func TestClusterScopedKindsAreNotSharded(t *testing.T) {
	s, _ := New(1, 3)
	lw := &fakeLW{items: []corev1.Secret{secretIn("")}, w: watch.NewFake()}
	f := NewFilter(s, func(runtime.Object) (bool, error) { return false, nil }, logr.Discard())
	w := toolscache.ToListerWatcherWithContext(f.Wrap(lw, &corev1.Namespace{}))
	obj, err := w.ListWithContext(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lw.opts[0].ShardSelector != "" || len(obj.(*corev1.SecretList).Items) != 1 {
		t.Errorf("a cluster-scoped kind was sharded: selector %q", lw.opts[0].ShardSelector)
	}
}

// TestUnknownScopeIsFilteredOnTheClient: when the scope cannot be told, no
// selector is sent (it would hide a cluster-scoped kind) but other shards'
// namespaced objects are still dropped.
func TestUnknownScopeIsFilteredOnTheClient(t *testing.T) {
	s, _ := New(0, 2)
	var lw fakeLW
	lw.shardInfo = true
	for _, ns := range namespaces(50) {
		lw.items = append(lw.items, secretIn(ns))
	}
	f := NewFilter(s, func(runtime.Object) (bool, error) { return false, fmt.Errorf("no mapping") }, logr.Discard())
	w := toolscache.ToListerWatcherWithContext(f.Wrap(&lw, &corev1.Secret{}))
	obj, err := w.ListWithContext(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lw.opts[0].ShardSelector != "" {
		t.Errorf("selector %q sent for a kind of unknown scope", lw.opts[0].ShardSelector)
	}
	for _, it := range obj.(*corev1.SecretList).Items {
		if !s.Owns(it.Namespace) {
			t.Errorf("kept namespace %q", it.Namespace)
		}
	}
	if f.Mode() != ModeClient {
		t.Errorf("mode %q", f.Mode())
	}
}

// TestNotShardedInformerIsUntouched: one shard wraps nothing.
func TestNotShardedInformerIsUntouched(t *testing.T) {
	f := NewFilter(Shard{}, namespaced(true), logr.Discard())
	lw := &fakeLW{items: []corev1.Secret{secretIn("a"), secretIn("b")}, w: watch.NewFake()}
	inf := f.NewInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
	if inf == nil {
		t.Fatal("no informer")
	}
	if f.shard.Sharded() || (Shard{Count: 1}).Sharded() {
		t.Error("one shard is sharded")
	}
}

type sinkTo struct{ b *strings.Builder }

func (s *sinkTo) Init(logr.RuntimeInfo)          {}
func (s *sinkTo) Enabled(int) bool               { return true }
func (s *sinkTo) WithValues(...any) logr.LogSink { return s }
func (s *sinkTo) WithName(string) logr.LogSink   { return s }
func (s *sinkTo) Error(err error, msg string, kv ...any) {
	s.Info(0, msg, kv...)
}
func (s *sinkTo) Info(_ int, msg string, kv ...any) {
	s.b.WriteString(msg)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(s.b, " %v=%v", kv[i], kv[i+1])
	}
	s.b.WriteString("\n")
}

// TestProbedModeHoldsForKindsWithoutShardInfo: once the probe found the
// API server applying the selector, a kind whose lists carry no shardInfo
// (custom resources in Kubernetes 1.37) does not turn the mode to client;
// its objects are still filtered.
func TestProbedModeHoldsForKindsWithoutShardInfo(t *testing.T) {
	s, _ := New(0, 2)
	f := NewFilter(s, namespaced(true), logr.Discard())
	f.probed = ModeServer
	var lw fakeLW
	for _, ns := range namespaces(40) {
		lw.items = append(lw.items, secretIn(ns))
	}
	w := f.Wrap(&lw, &corev1.Secret{}).(toolscache.ListerWatcherWithContext)
	obj, err := w.ListWithContext(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode() != ModeServer {
		t.Errorf("mode %q after a list without shardInfo, want the probed %q", f.Mode(), ModeServer)
	}
	for _, it := range obj.(*corev1.SecretList).Items {
		if !s.Owns(it.Namespace) {
			t.Errorf("kept namespace %q", it.Namespace)
		}
	}
	g := NewFilter(s, namespaced(true), logr.Discard())
	_, _ = g.Wrap(&fakeLW{shardInfo: false}, &corev1.Secret{}).(toolscache.ListerWatcherWithContext).ListWithContext(context.Background(), metav1.ListOptions{})
	_, _ = g.Wrap(&fakeLW{shardInfo: true}, &corev1.ConfigMap{}).(toolscache.ListerWatcherWithContext).ListWithContext(context.Background(), metav1.ListOptions{})
	if g.Mode() != ModeServer {
		t.Errorf("without a probe, one kind echoing the selector is server mode, got %q", g.Mode())
	}
}
