package token

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/randfill"

	"github.com/tokensync/tokensync/internal/intern"
	"github.com/tokensync/tokensync/internal/secrets"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// TestAttack3_WakeupsWithWatchNamespacesAndPlainQueue runs the whole
// controller as cmd/main.go does with --watch-namespaces=a,b (a
// multi-namespace cache, the namespaced-only target and inputs indexes)
// and the plain delaying queue (UsePriorityQueue: false), and checks that
// the wake-ups those indexes drive still happen without any manual
// reconcile: credential rotation, the older claimant keeping a shared
// target, the younger taking over after the older is retargeted, and a
// third taking over after the second is deleted.
func TestAttack3_WakeupsWithWatchNamespacesAndPlainQueue(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	run := startControllerWith(t, []string{a.ns, b.ns}, func(_ *Reconciler, o *crcontroller.Options) {
		o.UsePriorityQueue = ptr.To(false)
	})
	run.ns = b.ns // the barrier Secret of quiesce goes into b
	h := b
	h.createCreds("creds", "attack3-"+h.ns, "s3cret-1")
	get := func(name string) func() *v1alpha1.OAuthClientToken {
		return func() *v1alpha1.OAuthClientToken { return h.get(name) }
	}
	owner := func() string {
		s := &corev1.Secret{}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "shared"}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return ""
			}
			t.Fatal(err)
		}
		return s.Annotations[v1alpha1.OwnerAnnotation]
	}
	conflict := func(name string) func() bool {
		return func() bool {
			c := apimeta.FindStatusCondition(h.get(name).Status.Conditions, v1alpha1.ConditionStalled)
			return c != nil && c.Status == metav1.ConditionTrue && c.Reason == v1alpha1.ReasonSecretConflict
		}
	}
	target := func(name string) func(*v1alpha1.OAuthClientToken) {
		return func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: name} }
	}

	// Same names in a: the namespaced keys must keep them apart.
	a.createCreds("creds", "attack3-"+a.ns, "s3cret-a")
	a.createToken("first", "creds", target("shared"))

	h.createToken("first", "creds", target("shared"))
	run.waitReady(get("first"))
	if o := owner(); o != "first" {
		t.Fatalf("shared Secret owner %q, want first", o)
	}
	h.createToken("second", "creds", target("shared"))
	run.poll("second to be SecretConflict", conflict("second"))

	// Credential rotation reaches first through the inputs index.
	issued := h.get("first").Status.IssuedAt
	tokenSrv.RegisterClient("attack3-"+h.ns, "s3cret-2")
	creds := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "creds"}, creds); err != nil {
		t.Fatal(err)
	}
	creds.Data["client_secret"] = []byte("s3cret-2")
	if err := k8sClient.Update(h.ctx, creds); err != nil {
		t.Fatal(err)
	}
	run.poll("a new token after the credentials rotated", func() bool {
		o := h.get("first")
		return !o.Status.IssuedAt.Equal(issued) && apimeta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReady)
	})

	// first moves away: second takes shared over (peer wake-up by the
	// target index, old name).
	h.createToken("third", "creds", target("shared"))
	run.poll("third to be SecretConflict", conflict("third"))
	patch := func(name, secret string) {
		o := h.get(name)
		o.Spec.Target.Name = secret
		if err := k8sClient.Update(h.ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	patch("first", "elsewhere")
	run.poll("second to take shared over after first was retargeted", func() bool {
		return owner() == "second" && apimeta.IsStatusConditionTrue(h.get("second").Status.Conditions, v1alpha1.ConditionReady)
	})
	if !conflict("third")() {
		t.Fatal("third is not SecretConflict while second holds shared")
	}

	// second is deleted: third takes over.
	if err := k8sClient.Delete(h.ctx, h.get("second")); err != nil {
		t.Fatal(err)
	}
	run.poll("third to take shared over after second was deleted", func() bool {
		return owner() == "third" && apimeta.IsStatusConditionTrue(h.get("third").Status.Conditions, v1alpha1.ConditionReady)
	})
	// A forced refresh is handled through the plain queue.
	before := string(h.secret("shared").Data[v1alpha1.AccessTokenKey])
	run.refresh(get("third"), "attack3-1")
	if string(h.secret("shared").Data[v1alpha1.AccessTokenKey]) == before {
		t.Fatal("the forced refresh wrote no new token")
	}
	// a's objects were never involved.
	if c := apimeta.FindStatusCondition(a.get("first").Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("first in %s is not Ready: %+v", a.ns, c)
	}
}

// TestAttack3_SlimLosesNothing: the transform keeps every field of
// randomly filled Secrets and OAuthClientTokens (nil and empty maps
// apart), except managed fields, kubectl's last-applied annotation and an
// OAuthClientToken's annotations that are not tokensync's own.
func TestAttack3_SlimLosesNothing(t *testing.T) {
	f := randfill.NewWithSeed(3).NilChance(0.2).NumElements(0, 6).Funcs(
		func(q *resource.Quantity, c randfill.Continue) { *q = resource.MustParse("1") },
	)
	tb := intern.New(50) // small: both the shared and the unshared paths
	for i := range 300 {
		var in client.Object
		if i%2 == 0 {
			s := &corev1.Secret{}
			f.Fill(s)
			in = s
		} else {
			o := &v1alpha1.OAuthClientToken{}
			f.Fill(o)
			in = o
		}
		if i%3 == 0 {
			a := in.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			a[lastApplied] = "{}"
			in.SetAnnotations(a)
		}
		want := in.DeepCopyObject().(client.Object)
		want.SetManagedFields(nil)
		if a := want.GetAnnotations(); a != nil {
			delete(a, lastApplied)
		}
		if _, ok := want.(*v1alpha1.OAuthClientToken); ok && want.GetAnnotations() != nil {
			// Only tokensync's own annotations are cached.
			var own map[string]string
			for k, v := range want.GetAnnotations() {
				if strings.HasPrefix(k, ownAnnotations) {
					if own == nil {
						own = map[string]string{}
					}
					own[k] = v
				}
			}
			if own == nil && len(want.GetAnnotations()) == 0 {
				own = want.GetAnnotations()
			}
			want.SetAnnotations(own)
		}
		got := slimWith(tb, in).(client.Object)
		if s, ok := got.(*corev1.Secret); ok {
			// Folded in the cache; read unfolds it. An empty map of a
			// Secret with data comes back nil, which reads the same.
			if err := secrets.Unfold(s); err != nil {
				t.Fatalf("object %d: %v", i, err)
			}
			w := want.(*corev1.Secret)
			if s.Annotations == nil && len(w.Annotations) == 0 {
				s.Annotations = w.Annotations
			}
			if s.Data == nil && len(w.Data) == 0 {
				s.Data = w.Data
			}
			if s.OwnerReferences == nil && len(w.OwnerReferences) == 0 {
				s.OwnerReferences = w.OwnerReferences
			}
			for k, v := range w.Data {
				if len(v) == 0 && len(s.Data[k]) == 0 {
					if _, ok := s.Data[k]; ok {
						s.Data[k] = v // nil and empty read the same
					}
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("object %d changed by the transform:\n got %+v\nwant %+v", i, got, want)
		}
	}
}
