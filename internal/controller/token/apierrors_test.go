package token

import (
	"context"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// flakyStatus fails the next status patches with the given error, as an
// API server under contention or throttling does.
type flakyStatus struct {
	client.Client
	fail atomic.Int32
	err  error
}

func (f *flakyStatus) Status() client.SubResourceWriter {
	return &flakyStatusWriter{SubResourceWriter: f.Client.Status(), f: f}
}

type flakyStatusWriter struct {
	client.SubResourceWriter
	f *flakyStatus
}

func (w *flakyStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if w.f.fail.Add(-1) >= 0 {
		return w.f.err
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func TestStatusWriteFailuresAreRetriedWithoutANewToken(t *testing.T) {
	gr := schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "oauthclienttokens"}
	for name, apiErr := range map[string]error{
		"conflict":    apierrors.NewConflict(gr, "tok", nil),
		"throttled":   apierrors.NewTooManyRequests("slow down", 1),
		"unavailable": apierrors.NewServiceUnavailable("etcd leader change"),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "flaky-"+name, "flaky-secret")
			h.createToken("tok", "creds", nil)
			flaky := &flakyStatus{Client: h.r.Client, err: apiErr}
			flaky.fail.Store(1)
			h.r.Client = flaky

			_, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: keyIn(h.ns, "tok")})
			if err == nil {
				t.Fatal("the failed status write was not returned for a retry")
			}
			h.syncCache(h.get("tok"))
			// controller-runtime retries: the token written before the
			// failure is found, not requested again, and status lands.
			h.reconcile("tok")
			if n := len(h.issued("flaky-" + name)); n != 1 {
				t.Fatalf("%d tokens issued, want 1", n)
			}
			o := wantReady(h, "tok")
			if o.Status.ObservedGeneration != o.Generation || o.Status.ExpiresAt == nil {
				t.Fatal("status was not recorded on retry")
			}
			// And once recorded, nothing is written again.
			h.writes.n.Store(0)
			h.reconcile("tok")
			if h.writes.n.Load() != 0 {
				t.Fatal("a reconcile with nothing to change wrote")
			}
		})
	}
}
