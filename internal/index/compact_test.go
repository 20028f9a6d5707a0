package index

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// events records what a compact informer hands its handler.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.log
	e.log = nil
	slices.Sort(out)
	return out
}

func (e *events) OnAdd(obj any, initial bool) {
	o := obj.(client.Object)
	e.add(fmt.Sprintf("add %s/%s@%s initial=%v", o.GetNamespace(), o.GetName(), o.GetResourceVersion(), initial))
}

func (e *events) OnUpdate(oldObj, newObj any) {
	o, n := oldObj.(client.Object), newObj.(client.Object)
	e.add(fmt.Sprintf("update %s/%s@%s->%s", n.GetNamespace(), n.GetName(), o.GetResourceVersion(), n.GetResourceVersion()))
}

func (e *events) OnDelete(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		o := d.Obj.(client.Object)
		e.add(fmt.Sprintf("delete %s@%s unknown key=%s", o.GetName(), o.GetResourceVersion(), d.Key))
		return
	}
	o := obj.(client.Object)
	e.add(fmt.Sprintf("delete %s/%s@%s", o.GetNamespace(), o.GetName(), o.GetResourceVersion()))
}

func metas(ms ...metav1.PartialObjectMetadata) []any {
	out := make([]any, len(ms))
	for i := range ms {
		out[i] = &ms[i]
	}
	return out
}

func wantEvents(t *testing.T, e *events, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := e.take(); !slices.Equal(got, want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
}

// TestCompactHandsOnWhatAnInformerWould: the compact store hands its
// handler what a SharedIndexInformer hands its own: creates of the first
// list (initial), creates, updates with the old version, deletes, and on a
// re-list the creates, the updates of what changed and a delete with an
// unknown final state for what went away; an unchanged object makes no
// event on a re-list.
func TestCompactHandsOnWhatAnInformerWould(t *testing.T) {
	c := newCompact(nil, "Secret", "test")
	e := &events{}
	if _, err := c.AddEventHandler(e); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddEventHandler(e); err == nil {
		t.Fatal("a second handler was taken")
	}
	if c.HasSynced() {
		t.Fatal("synced before the first list")
	}
	_ = c.Replace(metas(secretMeta("a", "s1", "5"), secretMeta("a", "s2", "6"), secretMeta("b", "s1", "7")), "7")
	if !c.HasSynced() {
		t.Fatal("not synced after the first list")
	}
	wantEvents(t, e, "add a/s1@5 initial=true", "add a/s2@6 initial=true", "add b/s1@7 initial=true")

	m := secretMeta("a", "s3", "8")
	_ = c.Add(&m)
	m.ResourceVersion = "9"
	_ = c.Update(&m)
	_ = c.Delete(&m)
	_ = c.Delete(&m) // gone already: no event
	wantEvents(t, e, "add a/s3@8 initial=false", "update a/s3@8->9", "delete a/s3@9")

	// A re-list: a/s1 unchanged, a/s2 changed, b/s1 gone, b/s2 new.
	_ = c.Replace(metas(secretMeta("a", "s1", "5"), secretMeta("a", "s2", "10"), secretMeta("b", "s2", "11")), "11")
	wantEvents(t, e, "update a/s2@6->10", "delete s1@7 unknown key=b/s1", "add b/s2@11 initial=false")

	for _, tc := range []struct{ key, rv string }{{"a/s1", "5"}, {"a/s2", "10"}, {"b/s2", "11"}} {
		obj, ok, err := c.GetByKey(tc.key)
		if err != nil || !ok || obj.(client.Object).GetResourceVersion() != tc.rv {
			t.Fatalf("%s: %v %v %v, want version %s", tc.key, obj, ok, err, tc.rv)
		}
	}
	if _, ok, _ := c.GetByKey("b/s1"); ok {
		t.Fatal("b/s1 is held after a re-list without it")
	}
	keys := c.ListKeys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a/s1", "a/s2", "b/s2"}) {
		t.Fatalf("keys %q", keys)
	}
	if len(c.List()) != 3 {
		t.Fatalf("List: %d objects, want 3", len(c.List()))
	}
	if c.LastStoreSyncResourceVersion() != "11" {
		t.Fatalf("last version %q, want 11", c.LastStoreSyncResourceVersion())
	}
}

// TestCompactKeepsEveryVersionAsItCame: versions that are not plain
// decimal numbers (another storage than etcd, or none) come back exactly
// as they came, and a number does not read as one of them.
func TestCompactKeepsEveryVersionAsItCame(t *testing.T) {
	c := newCompact(nil, "Secret", "test")
	rvs := []string{"007", "0", "", "abc", "18446744073709551616", "12a", "42", "18446744073709551615"}
	var list []metav1.PartialObjectMetadata
	for i, rv := range rvs {
		list = append(list, secretMeta("a", fmt.Sprint("s", i), rv))
	}
	_ = c.Replace(metas(list...), "1")
	for i, rv := range rvs {
		obj, ok, _ := c.GetByKey(fmt.Sprint("a/s", i))
		if !ok || obj.(client.Object).GetResourceVersion() != rv {
			t.Fatalf("version %q came back as %v %v", rv, obj, ok)
		}
	}
	// An odd version replaced by a number, and back.
	m := secretMeta("a", "s0", "43")
	_ = c.Update(&m)
	if obj, _, _ := c.GetByKey("a/s0"); obj.(client.Object).GetResourceVersion() != "43" {
		t.Fatalf("after 007 -> 43: %v", obj)
	}
	m.ResourceVersion = "x1"
	_ = c.Update(&m)
	if obj, _, _ := c.GetByKey("a/s0"); obj.(client.Object).GetResourceVersion() != "x1" {
		t.Fatalf("after 43 -> x1: %v", obj)
	}
	_ = c.Delete(&m)
	m.ResourceVersion = "44"
	_ = c.Add(&m)
	if obj, _, _ := c.GetByKey("a/s0"); obj.(client.Object).GetResourceVersion() != "44" {
		t.Fatalf("after delete and 44: %v", obj)
	}
	if len(c.odd) != len(rvs)-3 {
		t.Fatalf("%d odd versions held, want %d", len(c.odd), len(rvs)-3)
	}
}
