package index

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestAttack10_JoinRacesIdleSkip: a compact store fed directly (as its
// reflector does) with updates, deletes and re-lists while its hub has no
// subscriber, and a subscriber joins at a random moment. Once all is
// handed on, the subscriber's view (last event per key) must equal the
// store: no delete or update lost by the idle skip, no stale create.
func TestAttack10_JoinRacesIdleSkip(t *testing.T) {
	for iter := range 300 {
		c := newCompact(nil, "Secret", "test")
		h, err := newHub([]informer{c})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewSource(int64(iter)))
		const keys = 12
		rv := 1
		var list []metav1.PartialObjectMetadata
		for i := range keys {
			list = append(list, secretMeta("team-a", fmt.Sprint("s", i), fmt.Sprint(rv)))
		}
		_ = c.Replace(metas(list...), "1")
		ctx, cancel := context.WithCancel(context.Background())
		v := newView()
		src := &hubSource{hub: h, kind: "Secret", h: v.handler(), joined: make(chan struct{})}
		var wg sync.WaitGroup
		wg.Add(1)
		delay := time.Duration(rng.Intn(300)) * time.Microsecond
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			_ = src.Start(ctx, newQueue(t))
		}()
		for range 400 {
			rv++
			k := fmt.Sprint("s", rng.Intn(keys))
			m := secretMeta("team-a", k, fmt.Sprint(rv))
			switch rng.Intn(10) {
			case 0, 1, 2:
				_ = c.Delete(&m)
			case 3:
				var l []metav1.PartialObjectMetadata
				for i := range keys {
					if rng.Intn(2) == 0 {
						rv++
						l = append(l, secretMeta("team-a", fmt.Sprint("s", i), fmt.Sprint(rv-rng.Intn(2)*0)))
					}
				}
				_ = c.Replace(metas(l...), fmt.Sprint(rv))
			default:
				_ = c.Update(&m)
			}
			if rng.Intn(20) == 0 {
				time.Sleep(time.Microsecond)
			}
		}
		wg.Wait()
		if err := src.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
		// Let the mailbox drain.
		var want map[string]string
		ok := false
		for range 200 {
			want = map[string]string{}
			for _, o := range c.List() {
				e := o.(client.Object)
				want[client.ObjectKeyFromObject(e).String()] = e.GetResourceVersion()
			}
			v.mu.Lock()
			ok = fmt.Sprint(v.present) == fmt.Sprint(want)
			v.mu.Unlock()
			if ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !ok {
			v.mu.Lock()
			t.Fatalf("iter %d: view %v, store %v", iter, v.present, want)
		}
		cancel()
	}
}
