package index

import (
	"context"
	"fmt"
	"net/http"
	"sync"
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

// gapLW passes watches through until cut: then the open watch ends with
// 410 Expired and new watches wait until resumed.
type gapLW struct {
	lw      toolscache.ListerWatcherWithContext
	mu      sync.Mutex
	open    []*proxyWatch
	resumed chan struct{}
}

type proxyWatch struct {
	ch   chan watch.Event
	stop chan struct{}
	once sync.Once
	in   watch.Interface
}

func (p *proxyWatch) Stop()                          { p.once.Do(func() { close(p.stop); p.in.Stop() }) }
func (p *proxyWatch) ResultChan() <-chan watch.Event { return p.ch }

func (g *gapLW) List(o metav1.ListOptions) (runtime.Object, error) {
	return g.lw.ListWithContext(context.Background(), o)
}
func (g *gapLW) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return g.WatchWithContext(context.Background(), o)
}
func (g *gapLW) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	return g.lw.ListWithContext(ctx, o)
}
func (g *gapLW) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	g.mu.Lock()
	r := g.resumed
	g.mu.Unlock()
	select {
	case <-r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	in, err := g.lw.WatchWithContext(ctx, o)
	if err != nil {
		return nil, err
	}
	p := &proxyWatch{ch: make(chan watch.Event), stop: make(chan struct{}), in: in}
	g.mu.Lock()
	g.open = append(g.open, p)
	g.mu.Unlock()
	go func() {
		defer close(p.ch)
		for {
			select {
			case <-p.stop:
				return
			case e, ok := <-in.ResultChan():
				if !ok {
					return
				}
				select {
				case p.ch <- e:
				case <-p.stop:
					return
				}
			}
		}
	}()
	return p, nil
}

func (g *gapLW) cut() {
	g.mu.Lock()
	g.resumed = make(chan struct{})
	open := g.open
	g.open = nil
	g.mu.Unlock()
	for _, p := range open {
		select {
		case p.ch <- watch.Event{Type: watch.Error, Object: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "gap"}}:
		case <-time.After(2 * time.Second):
		}
		p.Stop()
	}
}

func (g *gapLW) resume() {
	g.mu.Lock()
	close(g.resumed)
	g.mu.Unlock()
}

// TestAttack10_EnvtestRelistAfterAGap: the watch of a running index ends
// with 410 Expired, Secrets are deleted, updated and created meanwhile;
// the re-list (watch-list) must hand the subscribed source a delete of
// each deleted one and the index must stop showing them.
func TestAttack10_EnvtestRelistAfterAGap(t *testing.T) {
	cfg, c := startEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprint("s", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var g *gapLW
	x, err := New(cfg, Options{Namespaces: []string{"team-a"}, ListWatch: func(lw toolscache.ListerWatcher, obj runtime.Object) toolscache.ListerWatcher {
		if obj.GetObjectKind().GroupVersionKind().Kind != "Secret" {
			return lw
		}
		r := make(chan struct{})
		close(r)
		g = &gapLW{lw: toolscache.ToListerWatcherWithContext(lw), resumed: r}
		return g
	}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = x.Start(ctx) }()
	v := newView()
	src := &hubSource{hub: x.hubs["Secret"], kind: "Secret", h: v.handler(), joined: make(chan struct{})}
	if err := src.Start(ctx, newQueue(t)); err != nil {
		t.Fatal(err)
	}
	if err := src.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	g.cut()
	for i := range 3 {
		if err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: fmt.Sprint("s", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	s := &corev1.Secret{}
	_ = c.Get(ctx, types.NamespacedName{Namespace: "team-a", Name: "s5"}, s)
	s.StringData = map[string]string{"k": "v"}
	if err := c.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "new"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := x.Secret(types.NamespacedName{Namespace: "team-a", Name: "s0"}); !ok {
		t.Log("s0 already gone before the re-list (no gap made)")
	}
	g.resume()
	eventually(t, "the view to match the API server", func() bool {
		l := &corev1.SecretList{}
		if err := c.List(ctx, l, client.InNamespace("team-a")); err != nil {
			return false
		}
		want := map[string]string{}
		for _, s := range l.Items {
			want["team-a/"+s.Name] = s.ResourceVersion
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		return fmt.Sprint(v.present) == fmt.Sprint(want)
	})
	for i := range 3 {
		if _, ok := x.Secret(types.NamespacedName{Namespace: "team-a", Name: fmt.Sprint("s", i)}); ok {
			t.Fatalf("s%d still shown after the re-list", i)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, l := range v.log {
		if len(l) > 6 && l[:6] == "delete" {
			t.Log(l)
		}
	}
}
