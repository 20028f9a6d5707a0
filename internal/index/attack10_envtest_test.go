package index

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type countingLW struct {
	lw               toolscache.ListerWatcherWithContext
	lists, watchList atomic.Int32
}

func (c *countingLW) List(o metav1.ListOptions) (runtime.Object, error) {
	return c.ListWithContext(context.Background(), o)
}
func (c *countingLW) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return c.WatchWithContext(context.Background(), o)
}
func (c *countingLW) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	c.lists.Add(1)
	return c.lw.ListWithContext(ctx, o)
}
func (c *countingLW) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if o.SendInitialEvents != nil && *o.SendInitialEvents {
		c.watchList.Add(1)
	}
	return c.lw.WatchWithContext(ctx, o)
}

// TestAttack10_EnvtestChurnWhileStarting: Secrets are created, updated
// and deleted while the index starts (watch-list) and while sources join;
// once quiet, the index, and every source's view, equal the API server.
func TestAttack10_EnvtestChurnWhileStarting(t *testing.T) {
	cfg, c := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint("s", i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var lws []*countingLW
	var mu sync.Mutex
	x, err := New(cfg, Options{Namespaces: []string{"team-a", "team-b"}, ListWatch: func(lw toolscache.ListerWatcher, _ runtime.Object) toolscache.ListerWatcher {
		cl := &countingLW{lw: toolscache.ToListerWatcherWithContext(lw)}
		mu.Lock()
		lws = append(lws, cl)
		mu.Unlock()
		return cl
	}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for _, ns := range []string{"team-a", "team-b"} {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprint("s", i%40)
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
				switch i % 3 {
				case 0:
					_ = c.Delete(ctx, s)
				case 1:
					_ = c.Create(ctx, s)
				default:
					if err := c.Get(ctx, client.ObjectKeyFromObject(s), s); err == nil {
						s.StringData = map[string]string{"i": fmt.Sprint(i)}
						_ = c.Update(ctx, s)
					}
				}
			}
		}()
	}
	views := []*view{}
	var srcWG sync.WaitGroup
	join := func() {
		v := newView()
		views = append(views, v)
		src := &hubSource{hub: x.hubs["Secret"], kind: "Secret", h: v.handler(), joined: make(chan struct{})}
		if err := src.Start(ctx, newQueue(t)); err != nil {
			t.Fatal(err)
		}
		srcWG.Add(1)
		go func() { defer srcWG.Done(); _ = src.WaitForSync(ctx) }()
	}
	join()
	go func() { _ = x.Start(ctx) }()
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		join()
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if !x.WaitForCacheSync(wctx) {
		t.Fatal("not synced")
	}
	time.Sleep(500 * time.Millisecond)
	join()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	churn.Wait()
	srcWG.Wait()
	eventually(t, "the index and every view to match the API server", func() bool {
		want := map[string]string{}
		for _, ns := range []string{"team-a", "team-b"} {
			l := &corev1.SecretList{}
			if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
				return false
			}
			for _, s := range l.Items {
				want[ns+"/"+s.Name] = s.ResourceVersion
			}
		}
		for k, rv := range want {
			ns, name, _ := toolscache.SplitMetaNamespaceKey(k)
			if got, ok := x.Secret(types.NamespacedName{Namespace: ns, Name: name}); !ok || got != rv {
				return false
			}
		}
		for _, v := range views {
			v.mu.Lock()
			same := fmt.Sprint(v.present) == fmt.Sprint(want)
			v.mu.Unlock()
			if !same {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lws {
		t.Logf("lists %d, watch-lists %d", l.lists.Load(), l.watchList.Load())
		if l.watchList.Load() == 0 {
			t.Errorf("no watch-list used")
		}
	}
}
