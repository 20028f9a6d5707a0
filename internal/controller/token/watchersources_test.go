package token

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestWatcherSourcesLeaveOwnWritesSuppressed: the provider controller
// watches Secrets through the same metadata index as the token controller.
// Its event sources see every write, and must not use up the record by
// which the token controller's sources drop the events of its own writes.
func TestWatcherSourcesLeaveOwnWritesSuppressed(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	seen := map[string]int{}
	mapper := func(who string) func(context.Context, string, types.NamespacedName) []reconcile.Request {
		return func(_ context.Context, kind string, key types.NamespacedName) []reconcile.Request {
			if kind == "Secret" && key.Namespace == h.ns {
				mu.Lock()
				seen[who+"/"+key.Name]++
				mu.Unlock()
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	// Several watchers, so that one of them sees an event before the token
	// controller's source does.
	for _, src := range append(append(idx.WatcherSources(mapper("watcher")), idx.Sources(mapper("token"))...), idx.WatcherSources(mapper("watcher"))...) {
		if err := src.Start(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	count := func(k string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[k]
	}
	for i, name := range []string{"own-1", "own-2", "own-3", "own-4", "own-5"} {
		key := types.NamespacedName{Namespace: h.ns, Name: name}
		idx.Begin(key)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Data: map[string][]byte{"k": []byte("v")}}
		err := k8sClient.Create(h.ctx, s)
		rv := ""
		if err == nil {
			rv = s.ResourceVersion
		}
		idx.Wrote(key, rv)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return count("watcher/"+name) == 2, nil
		}); err != nil {
			t.Fatalf("write %d: the watchers saw %d events of it, want 2", i, count("watcher/"+name))
		}
		time.Sleep(50 * time.Millisecond)
		if n := count("token/" + name); n != 0 {
			t.Fatalf("write %d: the token controller's source saw its own write (%d events)", i, n)
		}
	}
	// Someone else's write reaches every source.
	s := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "own-1"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["k"] = []byte("edited")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(h.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return count("token/own-1") == 1, nil
	}); err != nil {
		t.Fatal("the token controller's source did not see an edit by someone else")
	}
}
