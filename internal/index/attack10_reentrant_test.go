package index

import (
	"testing"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type reentrant struct {
	c    *compact
	seen []string
}

func (r *reentrant) check(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	e := o.(client.Object)
	_, ok, _ := r.c.GetByKey(e.GetNamespace() + "/" + e.GetName())
	r.c.List()
	r.c.ListKeys()
	r.seen = append(r.seen, e.GetName())
	_ = ok
}
func (r *reentrant) OnAdd(o any, _ bool) { r.check(o) }
func (r *reentrant) OnUpdate(_, n any)   { r.check(n) }
func (r *reentrant) OnDelete(o any)      { r.check(o) }

// TestAttack10_HandlerReadsTheStore: a handler that reads the store from
// its callbacks does not deadlock (Add, Update, Delete, Replace).
func TestAttack10_HandlerReadsTheStore(t *testing.T) {
	c := newCompact(nil, "Secret", "test")
	r := &reentrant{c: c}
	if _, err := c.AddEventHandler(r); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Replace(metas(secretMeta("a", "s1", "1"), secretMeta("a", "s2", "2")), "2")
		m := secretMeta("a", "s3", "3")
		_ = c.Add(&m)
		m.ResourceVersion = "4"
		_ = c.Update(&m)
		_ = c.Delete(&m)
		_ = c.Replace(metas(secretMeta("a", "s1", "5")), "5")
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("deadlock: a handler reading the store from its callback")
	}
	t.Logf("seen %v", r.seen)
}
