package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// TestAttack3_PlainQueueRetriesAreGloballyThrottled: with
// UsePriorityQueue: false (which cmd/main.go used for a while) and no
// RateLimiter in controllerOptions, controller-runtime falls back to
// workqueue.DefaultTypedControllerRateLimiter, which adds an overall
// 10/s, burst 100 bucket to the per-item backoff (the priority queue's
// default has only the per-item 5ms..1000s backoff). A burst of API
// server errors over many objects (an API server or etcd blip, an
// admission webhook outage) then spreads their first retry over N/10
// seconds instead of 5ms: with 5000 objects the last one retries after
// more than 8 minutes, while its token may be expiring.
func TestAttack3_PlainQueueRetriesAreGloballyThrottled(t *testing.T) {
	const n = 300
	var mu sync.Mutex
	failed := map[string]bool{}
	retried := 0
	done := make(chan struct{})
	opts := controllerOptions(options{concurrentReconciles: 4})
	opts.UsePriorityQueue = ptr.To(false) // the plain queue, whose default limiter has the shared bucket
	opts.SkipNameValidation = ptr.To(true)
	opts.Reconciler = reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if !failed[req.Name] {
			failed[req.Name] = true
			return reconcile.Result{}, errors.New("etcdserver: request timed out")
		}
		retried++
		if retried == n {
			close(done)
		}
		return reconcile.Result{}, nil
	})
	c, err := crcontroller.NewUnmanaged("attack3", opts)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan event.GenericEvent, n)
	for i := range n {
		ch <- event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint("o", i)}}}
	}
	if err := c.Watch(source.Channel(ch, &handler.EnqueueRequestForObject{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	start := time.Now()
	select {
	case <-done:
		t.Logf("all %d objects retried after %v", n, time.Since(start))
	case <-time.After(5 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("after one API error each, only %d of %d objects were retried within 5s (per-item backoff: 5ms)", retried, n)
	}
}
