package token

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// These tests edit live objects the way users do, and check the promise:
// nothing already working is lost and nothing that is not tokensync's is
// touched.

// edit changes a live object, as kubectl edit would, and waits for the
// caches.
func (h *harness) edit(name string, change func(*v1alpha1.OAuthClientToken)) {
	h.t.Helper()
	o := h.get(name)
	change(o)
	if err := k8sClient.Update(h.ctx, o); err != nil {
		h.t.Fatal(err)
	}
	h.syncCache(o)
}

// reconcileErr reconciles name and returns the error Reconcile returned.
func (h *harness) reconcileErr(name string) error {
	_, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: keyIn(h.ns, name)})
	return err
}

// secretOrNil returns Secret name, nil when it does not exist.
func (h *harness) secretOrNil(name string) *corev1.Secret {
	h.t.Helper()
	s := &corev1.Secret{}
	err := k8sClient.Get(h.ctx, keyIn(h.ns, name), s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// deleteObject deletes name and runs the reconciles of its deletion (the
// finalizer's), then checks it is gone.
func (h *harness) deleteObject(name string) {
	h.t.Helper()
	o := h.get(name)
	if err := k8sClient.Delete(h.ctx, o); err != nil {
		h.t.Fatal(err)
	}
	for range 3 {
		err := k8sClient.Get(h.ctx, keyIn(h.ns, name), &v1alpha1.OAuthClientToken{})
		if apierrors.IsNotFound(err) {
			h.syncCache(o)
			return
		}
		h.syncCache(h.get(name))
		if err := h.reconcileErr(name); err != nil {
			h.t.Fatal(err)
		}
	}
	h.t.Fatalf("%s not deleted: finalizer left", name)
}

// controlledBy reports whether s has o's controller reference, which is
// what makes the garbage collector delete s with o (envtest runs no
// garbage collector: the reference itself is checked).
func controlledBy(s *corev1.Secret, o *v1alpha1.OAuthClientToken) bool {
	for _, ref := range s.OwnerReferences {
		if ref.UID == o.UID && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

func withPolicy(p v1alpha1.CreationPolicy) func(*v1alpha1.OAuthClientToken) {
	return func(o *v1alpha1.OAuthClientToken) {
		if o.Spec.Target == nil {
			o.Spec.Target = &v1alpha1.TargetSpec{}
		}
		o.Spec.Target.CreationPolicy = p
	}
}

// userSecret creates a Secret a user owns (with their own keys and an
// ownerReference of theirs), to merge into.
func (h *harness) userSecret(name string) *corev1.Secret {
	h.t.Helper()
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-owner", Namespace: h.ns}}
	if err := k8sClient.Create(h.ctx, owner); err != nil {
		h.t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns,
			Labels:          map[string]string{"team": "shop"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}},
		Data: map[string][]byte{"db_password": []byte("hunter2"), "mode": []byte("prod")},
	}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		h.t.Fatal(err)
	}
	h.syncCache(s)
	return s
}

// wantUserSecretIntact checks that a user's Secret kept its keys and
// owners and carries no ownerReference of tokensync's.
func (h *harness) wantUserSecretIntact(name string) *corev1.Secret {
	h.t.Helper()
	s := h.secret(name)
	if string(s.Data["db_password"]) != "hunter2" || string(s.Data["mode"]) != "prod" || s.Labels["team"] != "shop" {
		h.t.Fatalf("the user's keys or labels were lost: keys %v labels %v", keys(s.Data), s.Labels)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "ConfigMap" {
		h.t.Fatalf("the user's Secret has owners %+v, want only theirs", s.OwnerReferences)
	}
	return s
}

// TestMergeToOwnerNeverTakesOverAUsersSecret: a user's Secret, merged into,
// then creationPolicy removed (default Owner). tokensync refuses with
// SecretConflict and never puts its ownerReference on it; deleting the
// object removes only tokensync's keys.
func TestMergeToOwnerNeverTakesOverAUsersSecret(t *testing.T) {
	for _, to := range []v1alpha1.CreationPolicy{"", v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan} {
		t.Run(string(to)+"default", func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "merge-owner", "s3cret")
			h.userSecret("app")
			h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Target = &v1alpha1.TargetSpec{Name: "app", CreationPolicy: v1alpha1.CreationPolicyMerge}
			})
			h.reconcile("tok")
			wantReady(h, "tok")
			token := string(h.secret("app").Data[v1alpha1.AccessTokenKey])

			h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Target.CreationPolicy = to // "" is the API server's default: Owner
			})
			h.reconcile("tok")
			o := h.get("tok")
			wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
			s := h.wantUserSecretIntact("app")
			if controlledBy(s, o) {
				t.Fatal("tokensync put its controller reference on the user's Secret")
			}
			if string(s.Data[v1alpha1.AccessTokenKey]) != token {
				t.Fatal("the token the consumers use was changed or removed")
			}
			if !controllerutil.ContainsFinalizer(o, Finalizer) {
				t.Fatal("the finalizer that removes tokensync's keys was dropped while they are still in the user's Secret")
			}

			h.deleteObject("tok")
			s = h.wantUserSecretIntact("app")
			if _, ok := s.Data[v1alpha1.AccessTokenKey]; ok {
				t.Fatal("tokensync's keys stayed in the user's Secret after the object was deleted")
			}
		})
	}
}

// TestEveryCreationPolicyTransition edits creationPolicy from each value
// to each other on a live object, then deletes the object, and checks the
// Secret after each step: the ownerReference (what garbage collection
// acts on), the user's keys, and observedGeneration, which advances only
// once the Secret matches the spec.
func TestEveryCreationPolicyTransition(t *testing.T) {
	policies := []v1alpha1.CreationPolicy{v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan, v1alpha1.CreationPolicyMerge}
	for _, from := range policies {
		for _, to := range policies {
			if from == to {
				continue
			}
			t.Run(fmt.Sprintf("%s-to-%s", from, to), func(t *testing.T) {
				h := newHarness(t)
				h.createCreds("creds", "transitions", "s3cret")
				userOwned := from == v1alpha1.CreationPolicyMerge
				if userOwned {
					h.userSecret("tok")
				}
				h.createToken("tok", "creds", withPolicy(from))
				h.reconcile("tok")
				o := wantReady(h, "tok")
				if got := controlledBy(h.secret("tok"), o); got != (from == v1alpha1.CreationPolicyOwner) {
					t.Fatalf("%s: controller reference %v", from, got)
				}
				tokens := len(h.issued("transitions"))

				h.edit("tok", withPolicy(to))
				h.reconcile("tok")
				o = h.get("tok")
				s := h.secret("tok")
				if userOwned {
					// Never taken over: refused, untouched.
					wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
					h.wantUserSecretIntact("tok")
				} else {
					wantReady(h, "tok")
					if o.Status.ObservedGeneration != o.Generation {
						t.Fatalf("observedGeneration %d, generation %d", o.Status.ObservedGeneration, o.Generation)
					}
					if got, want := controlledBy(s, o), to == v1alpha1.CreationPolicyOwner; got != want {
						t.Fatalf("after %s -> %s, controller reference %v, want %v (in the same reconcile)", from, to, got, want)
					}
				}
				if len(h.issued("transitions")) != tokens {
					t.Fatal("a policy edit requested a token")
				}
				if len(s.Data[v1alpha1.AccessTokenKey]) == 0 {
					t.Fatal("the token was removed")
				}

				h.deleteObject("tok")
				s = h.secretOrNil("tok")
				switch {
				case userOwned:
					s = h.wantUserSecretIntact("tok")
					if _, ok := s.Data[v1alpha1.AccessTokenKey]; ok {
						t.Fatal("tokensync's keys stayed in the user's Secret")
					}
				case s == nil:
					t.Fatal("the Secret was deleted without garbage collection")
				case to == v1alpha1.CreationPolicyOwner:
					if !controlledBy(s, o) {
						t.Fatal("an Owner Secret without the controller reference: garbage collection would keep it")
					}
				default:
					if controlledBy(s, o) {
						t.Fatalf("%s: the controller reference is still there: garbage collection would delete the Secret", to)
					}
					if len(s.Data[v1alpha1.AccessTokenKey]) == 0 {
						t.Fatal("the kept Secret lost its token")
					}
				}
			})
		}
	}
}

// raceClient creates a foreign Secret just before tokensync's first write
// of it: the index has not seen it yet.
type raceClient struct {
	client.Client
	h    *harness
	name string
	done bool
}

func (c *raceClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if ac, ok := obj.(interface{ GetName() *string }); ok && !c.done && ac.GetName() != nil && *ac.GetName() == c.name {
		c.done = true
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: c.h.ns}, Data: map[string][]byte{"mine": []byte("x")}}
		if err := k8sClient.Create(ctx, s); err != nil {
			c.h.t.Fatal(err)
		}
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// TestCreationRaceNeverTakesOver: a Secret that appears between the check
// and the first write is never taken over: the write fails, the object is
// SecretConflict, the Secret is untouched.
func TestCreationRaceNeverTakesOver(t *testing.T) {
	for _, p := range []v1alpha1.CreationPolicy{v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "race", "s3cret")
			h.createToken("tok", "creds", withPolicy(p))
			rc := &raceClient{Client: h.r.Client, h: h, name: "tok"}
			h.r.Writer.Client = rc
			if err := h.reconcileErr("tok"); err != nil {
				t.Fatal(err)
			}
			if !rc.done {
				t.Fatal("the race was not staged")
			}
			wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
			s := h.secret("tok")
			if len(s.Labels) != 0 || len(s.Annotations) != 0 || len(s.OwnerReferences) != 0 || len(s.Data) != 1 || string(s.Data["mine"]) != "x" {
				t.Fatalf("the Secret created in the race was changed: labels %v annotations %v owners %v keys %v", s.Labels, s.Annotations, s.OwnerReferences, keys(s.Data))
			}
			// And so it stays.
			h.syncCache(s)
			h.reconcile("tok")
			wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
			if len(h.secret("tok").Data) != 1 {
				t.Fatal("taken over at the next reconcile")
			}
		})
	}
}

// TestRetargetMovesTheTokenAndReleasesTheOldSecret: editing target.name
// writes the token into the new Secret (the same token: nothing is
// requested) and lets go of the old one as its policy says.
func TestRetargetMovesTheTokenAndReleasesTheOldSecret(t *testing.T) {
	for _, p := range []v1alpha1.CreationPolicy{v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan, v1alpha1.CreationPolicyMerge} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t)
			srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"retarget": "s3cret"}, ExpiresIn: 3600, IssueRefreshTokens: true, Now: h.clock.Now})
			h.createSecret("creds", "", map[string][]byte{"client_id": []byte("retarget"), "client_secret": []byte("s3cret")})
			if p == v1alpha1.CreationPolicyMerge {
				h.userSecret("old")
				h.userSecret("new")
			}
			h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Provider.TokenURL = base + "/token"
				o.Spec.Target = &v1alpha1.TargetSpec{Name: "old", CreationPolicy: p}
				o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: ptr.To(true)}
			})
			h.reconcile("tok")
			wantReady(h, "tok")
			token := string(h.secret("old").Data[v1alpha1.AccessTokenKey])
			h.secret(secrets.StateName("old"))

			h.edit("tok", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target.Name = "new" })
			h.reconcile("tok")
			o := wantReady(h, "tok")
			if o.Status.SecretName != "new" {
				t.Fatalf("status.secretName %q", o.Status.SecretName)
			}
			if got := string(h.secret("new").Data[v1alpha1.AccessTokenKey]); got != token {
				t.Fatal("the new Secret does not hold the token")
			}
			if n := len(srv.Issued()); n != 1 {
				t.Fatalf("%d tokens issued: moving the token requested a new one", n)
			}
			old := h.secretOrNil("old")
			switch p {
			case v1alpha1.CreationPolicyOwner:
				if old != nil {
					t.Fatal("the old Owner Secret was kept")
				}
			case v1alpha1.CreationPolicyOrphan:
				if old == nil || string(old.Data[v1alpha1.AccessTokenKey]) != token {
					t.Fatal("the old Orphan Secret was not kept as it was")
				}
			case v1alpha1.CreationPolicyMerge:
				old = h.wantUserSecretIntact("old")
				if _, ok := old.Data[v1alpha1.AccessTokenKey]; ok || old.Labels[v1alpha1.ManagedLabel] != "" || old.Annotations[v1alpha1.OwnerAnnotation] != "" {
					t.Fatalf("tokensync's keys, labels or annotations stayed in the old Secret: keys %v labels %v", keys(old.Data), old.Labels)
				}
				h.wantUserSecretIntact("new")
			}
			if h.secretOrNil(secrets.StateName("old")) != nil {
				t.Fatal("the old state Secret was kept")
			}
			// Nothing more to do.
			h.writes.n.Store(0)
			h.reconcile("tok")
			if n := h.writes.n.Load(); n != 0 {
				t.Fatalf("%d writes after the move", n)
			}
		})
	}
}

// TestConvergingObjectsNeverDeadlock: an older object retargeted onto the
// Secret a newer one writes. The writer keeps it, the other is
// SecretConflict; when the writer goes away or moves, the other takes over.
func TestConvergingObjectsNeverDeadlock(t *testing.T) {
	for _, leave := range []string{"deleted", "moved"} {
		t.Run(leave, func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "converge", "s3cret")
			h.createToken("older", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "older-secret"} })
			time.Sleep(1100 * time.Millisecond) // creation timestamps have a second's resolution
			h.createToken("newer", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "shared"} })
			h.reconcile("older")
			h.reconcile("newer")
			wantReady(h, "newer")

			h.edit("older", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target.Name = "shared" })
			for range 2 {
				h.reconcile("older")
				h.reconcile("newer")
			}
			wantReady(h, "newer")
			wantCondition(t, h.get("older"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
			if owner := h.secret("shared").Annotations[v1alpha1.OwnerAnnotation]; owner != "newer" {
				t.Fatalf("Secret shared is written by %q", owner)
			}
			// The older object keeps its own, still valid token where it was.
			if len(h.secret("older-secret").Data[v1alpha1.AccessTokenKey]) == 0 {
				t.Fatal("the older object's Secret lost its token")
			}

			if leave == "deleted" {
				h.deleteObject("newer")
				// No garbage collector here: the Secret the deleted one
				// owned stays until then; the other adopts it.
			} else {
				h.edit("newer", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target.Name = "elsewhere" })
				h.reconcile("newer")
				wantReady(h, "newer")
			}
			h.syncCache(h.secretOrNilObject("shared"))
			h.reconcile("older")
			o := wantReady(h, "older")
			s := h.secret("shared")
			if s.Annotations[v1alpha1.OwnerAnnotation] != "older" || !controlledBy(s, o) {
				t.Fatalf("the older object did not take Secret shared over: owner %q", s.Annotations[v1alpha1.OwnerAnnotation])
			}
		})
	}
}

func (h *harness) secretOrNilObject(name string) client.Object {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}}
}

// TestScheduleEditsApplyAtOnce: editing renewBefore or defaultLifetime
// recomputes renewAt at once, in status and requeue, with no token request
// unless the new time has passed.
func TestScheduleEditsApplyAtOnce(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "schedule", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	o := h.get("tok")
	issued := o.Status.IssuedAt.Time
	if got := o.Status.RenewAt.Sub(issued); got != 40*time.Minute {
		t.Fatalf("renewal %s after issue", got)
	}

	h.clock.Step(10 * time.Minute)
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Refresh = &v1alpha1.RefreshSpec{RenewBefore: &metav1.Duration{Duration: 5 * time.Minute}}
	})
	res := h.reconcile("tok")
	o = h.get("tok")
	if got := o.Status.RenewAt.Sub(issued); got != 55*time.Minute {
		t.Fatalf("renewBefore 5m: renewal %s after issue, want 55m", got)
	}
	approx(t, "requeue", res.RequeueAfter, 45*time.Minute)
	if n := len(h.issued("schedule")); n != 1 {
		t.Fatalf("%d tokens: an edit that leaves the token valid requested one", n)
	}

	// A renewBefore whose renewal time has passed: renewed now.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 55 * time.Minute}
	})
	h.reconcile("tok")
	if n := len(h.issued("schedule")); n != 2 {
		t.Fatalf("%d tokens: a renewal time in the past must renew", n)
	}
}

func TestDefaultLifetimeEditsMoveTheExpiry(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"nolife": "s3cret"}, ExpiresIn: 0, Now: h.clock.Now})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("nolife"), "client_secret": []byte("s3cret")})
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.reconcile("tok")
	o := h.get("tok")
	issued := o.Status.IssuedAt.Time
	if got := o.Status.ExpiresAt.Sub(issued); got != time.Hour {
		t.Fatalf("expiry %s after issue, want the 1h default", got)
	}
	h.clock.Step(30 * time.Minute)
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Refresh = &v1alpha1.RefreshSpec{DefaultLifetime: &metav1.Duration{Duration: 3 * time.Hour}}
	})
	res := h.reconcile("tok")
	o = h.get("tok")
	if got := o.Status.ExpiresAt.Sub(issued); got != 3*time.Hour {
		t.Fatalf("defaultLifetime 3h: expiry %s after issue", got)
	}
	if got := o.Status.RenewAt.Sub(issued); got != 2*time.Hour {
		t.Fatalf("defaultLifetime 3h: renewal %s after issue", got)
	}
	approx(t, "requeue", res.RequeueAfter, 90*time.Minute)
	if len(srv.Issued()) != 1 {
		t.Fatal("the edit requested a token")
	}
	if got := string(h.secret("tok").Data[v1alpha1.ExpiresAtKey]); got != o.Status.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Fatalf("the Secret's expires_at %s, status %s", got, o.Status.ExpiresAt)
	}
}

// TestForcedRefreshDuringStalledBackoff: a new refresh-requested-at value
// forces one attempt now, even while a stalled backoff holds retries; the
// same value does not force another.
func TestForcedRefreshDuringStalledBackoff(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "forced", "s3cret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodClientSecretBasic })
	h.reconcile("tok")
	h.clock.Step(41 * time.Minute)
	tokenSrv.FailNext(1, http.StatusBadRequest, `{"error":"invalid_client"}`, nil)
	h.reconcile("tok")
	wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidClient)
	// The stalled backoff holds (1m, doubling): events do not bypass it.
	h.reconcile("tok")
	if n := len(h.issued("forced")); n != 1 {
		t.Fatalf("%d tokens", n)
	}
	requests := tokenSrv.Requests()
	h.reconcile("tok")
	if tokenSrv.Requests() != requests {
		t.Fatal("a reconcile during the backoff sent a request")
	}

	annotate := func(v string) {
		h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
			if o.Annotations == nil {
				o.Annotations = map[string]string{}
			}
			o.Annotations[v1alpha1.RefreshRequestedAnnotation] = v
		})
	}
	annotate("fix-1")
	tokenSrv.FailNext(1, http.StatusBadRequest, `{"error":"invalid_client"}`, nil)
	h.reconcile("tok")
	if tokenSrv.Requests() != requests+1 {
		t.Fatal("a new refresh-requested-at value did not force an attempt during the backoff")
	}
	if got := h.get("tok").Status.LastHandledRefreshRequest; got != "fix-1" {
		t.Fatalf("a failed forced attempt is handled too: lastHandledRefreshRequest %q", got)
	}
	h.reconcile("tok")
	if tokenSrv.Requests() != requests+1 {
		t.Fatal("the same value forced a second attempt")
	}
	annotate("fix-2")
	h.reconcile("tok")
	wantReady(h, "tok")
	if n := len(h.issued("forced")); n != 2 {
		t.Fatalf("%d tokens after the second forced attempt", n)
	}
}

// TestRefusedRefreshTokenIsDropped: a refresh token the endpoint refuses,
// for any reason, is dropped (never sent again) and the primary grant is
// tried in the same reconcile.
func TestRefusedRefreshTokenIsDropped(t *testing.T) {
	for _, refusal := range []struct {
		name   string
		status int
		body   string
	}{
		{"invalid_grant", 400, `{"error":"invalid_grant"}`},
		{"invalid_client", 401, `{"error":"invalid_client"}`},
		{"unauthorized_client", 400, `{"error":"unauthorized_client"}`},
		{"invalid_request", 400, `{"error":"invalid_request"}`},
		{"bare 401", 401, ""},
	} {
		t.Run(refusal.name, func(t *testing.T) {
			h := newHarness(t)
			srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "s3cret"}, ExpiresIn: 3600, IssueRefreshTokens: true, Now: h.clock.Now})
			h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("s3cret")})
			h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Provider.TokenURL = base + "/token"
				o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodClientSecretBasic
				o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: ptr.To(true)}
			})
			h.reconcile("tok")
			first := lastIssued(t, srv)

			if first.RefreshToken == "" {
				t.Fatal("no refresh token issued")
			}
			h.clock.Step(41 * time.Minute)
			srv.FailNext(1, refusal.status, refusal.body, nil)
			before := srv.Requests()
			h.reconcile("tok")
			o := wantReady(h, "tok")
			if o.Status.LastGrant != "client_credentials" {
				t.Fatalf("renewed with %q, want the primary grant in the same reconcile", o.Status.LastGrant)
			}
			if n := srv.Requests() - before; n != 2 {
				t.Fatalf("%d requests, want the refused refresh then the primary grant", n)
			}
			second := lastIssued(t, srv)
			// The refused refresh token is never sent again: the next
			// renewal uses the one issued with the primary grant.
			h.clock.Step(41 * time.Minute)
			before = srv.Requests()
			h.reconcile("tok")
			if got := srv.LastRequest().Form.Get("refresh_token"); got == first.RefreshToken || got != second.RefreshToken || srv.Requests()-before != 1 {
				t.Fatal("the next renewal did not use the new refresh token alone")
			}
		})
	}
}

// TestRejectedSpecStallsWithoutRequests: a spec the API server refuses
// (the target type of an existing Secret, which is immutable) is Stalled
// with SecretRejected, and no token is requested until the spec changes.
func TestRejectedSpecStallsWithoutRequests(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rejected", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Type: "example.com/token"}
	})
	for range 3 {
		h.reconcile("tok")
		h.clock.Step(2 * time.Hour)
	}
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretRejected)
	if n := len(h.issued("rejected")); n != 1 {
		t.Fatalf("%d tokens requested for a spec the API server refuses", n)
	}
	if got := kstatusOf(t, o); got != kstatus.FailedStatus {
		t.Fatalf("kstatus %s", got)
	}
	// Changing the spec back recovers.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = nil })
	h.reconcile("tok")
	wantReady(h, "tok")
}

// failingApply fails the next n applies of Secret name, as an overloaded
// API server would.
type failingApply struct {
	client.Client
	name string
	n    int
}

func (c *failingApply) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if ac, ok := obj.(interface{ GetName() *string }); ok && c.n > 0 && ac.GetName() != nil && *ac.GetName() == c.name {
		c.n--
		return apierrors.NewInternalError(fmt.Errorf("etcdserver: request timed out"))
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// TestObtainedTokenIsNeverThrownAway: a token obtained is written at the
// next attempt when a later API call failed, instead of minting another.
func TestObtainedTokenIsNeverThrownAway(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "kept", "s3cret")
	h.createToken("tok", "creds", nil)
	fc := &failingApply{Client: h.r.Client, name: "tok", n: 2}
	h.r.Writer.Client = fc
	for range 3 {
		h.reconcile("tok")
		h.clock.Step(time.Minute)
	}
	wantReady(h, "tok")
	issued := h.issued("kept")
	if len(issued) != 1 || string(h.secret("tok").Data[v1alpha1.AccessTokenKey]) != issued[0].AccessToken {
		t.Fatalf("%d tokens for one Secret write that failed twice", len(issued))
	}
}

// TestExpiryPolicyClearWhateverTheFailure: an expired token is removed with
// expiryPolicy Clear whatever makes renewal fail.
func TestExpiryPolicyClearWhateverTheFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(h *harness)
	}{
		{"credentials gone", func(h *harness) {
			if err := k8sClient.Delete(h.ctx, h.secret("creds")); err != nil {
				h.t.Fatal(err)
			}
			h.syncCache(h.secretOrNilObject("creds"))
		}},
		{"discovery failing", func(h *harness) {
			h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Provider.TokenURL = ""
				o.Spec.Provider.IssuerURL = strings.TrimSuffix(tokenURL, "/token") + "/no-such-issuer"
			})
		}},
		{"TLS material missing", func(h *harness) {
			h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Provider.TLS = &v1alpha1.TLSSpec{CABundle: &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeySelector{Name: "no-such-ca"}}}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "clear-"+strings.ReplaceAll(tc.name, " ", "-"), "s3cret")
			h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
				o.Spec.Target = &v1alpha1.TargetSpec{ExpiryPolicy: v1alpha1.ExpiryPolicyClear}
			})
			h.reconcile("tok")
			h.clock.Step(61 * time.Minute)
			tc.break_(h)
			_ = h.reconcileErr("tok")
			h.syncCache(h.get("tok"))
			if s := h.secret("tok"); len(s.Data[v1alpha1.AccessTokenKey]) != 0 {
				t.Fatalf("%s: the expired token is still in the Secret", tc.name)
			}
			wantCondition(t, h.get("tok"), v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)
		})
	}
}

// TestReadyAndStalledTogether: a renewal that needs a human while the
// current token is still valid: Ready stays True (consumers have a valid
// token), Stalled is True, and kstatus reads Failed, as conditions.go
// documents.
func TestReadyAndStalledTogether(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "together", "s3cret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodClientSecretBasic })
	h.reconcile("tok")
	h.clock.Step(41 * time.Minute)
	tokenSrv.FailNext(1, http.StatusBadRequest, `{"error":"unauthorized_client"}`, nil)
	h.reconcile("tok")
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonUnauthorizedClient)
	if got := kstatusOf(t, o); got != kstatus.FailedStatus {
		t.Fatalf("kstatus %s, want Failed", got)
	}
	// Once it expires, Ready is False too.
	h.clock.Step(20 * time.Minute)
	tokenSrv.FailNext(1, http.StatusBadRequest, `{"error":"unauthorized_client"}`, nil)
	h.reconcile("tok")
	wantCondition(t, h.get("tok"), v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)
}

// TestRecordEditsAreNotTrusted: someone who may edit the target Secret
// cannot pin a token past its renewal time nor make tokensync skip a
// refresh the inputs need.
func TestRecordEditsAreNotTrusted(t *testing.T) {
	for _, tc := range []struct {
		name       string
		annotation string
		value      func(h *harness) string
		newToken   bool
	}{
		// renew-at is never read back: editing it changes nothing.
		{"renew-at far away", v1alpha1.RenewAtAnnotation, func(*harness) string { return "2099-01-01T00:00:00Z" }, false},
		{"expires-at far away", v1alpha1.ExpiresAtAnnotation, func(*harness) string { return "2099-01-01T00:00:00Z" }, true},
		{"issued-at later", v1alpha1.IssuedAtAnnotation, func(h *harness) string { return h.clock.Now().UTC().Format(time.RFC3339) }, true},
		{"config-hash of other inputs", v1alpha1.ConfigHashAnnotation, func(*harness) string { return strings.Repeat("0", 64) }, true},
		{"inputs-version", v1alpha1.InputsVersionAnnotation, func(*harness) string { return "forged" }, true},
		{"signature", v1alpha1.SignatureAnnotation, func(*harness) string { return "forged" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.createCreds("creds", "record-"+strings.ReplaceAll(tc.name, " ", "-"), "s3cret")
			h.createToken("tok", "creds", nil)
			h.reconcile("tok")
			h.clock.Step(41 * time.Minute) // the renewal time has come
			s := h.secret("tok")
			s.Annotations[tc.annotation] = tc.value(h)
			if err := k8sClient.Update(h.ctx, s); err != nil {
				t.Fatal(err)
			}
			h.syncCache(s)
			h.reconcile("tok")
			if n := len(h.issued("record-" + strings.ReplaceAll(tc.name, " ", "-"))); n != 2 {
				t.Fatalf("%d tokens: the renewal that was due did not happen", n)
			}
		})
	}
	// Before the renewal time, a forged record makes tokensync distrust the
	// token it does not vouch for: a new one.
	h := newHarness(t)
	h.createCreds("creds", "record-early", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	s := h.secret("tok")
	s.Annotations[v1alpha1.ExpiresAtAnnotation] = "2099-01-01T00:00:00Z"
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile("tok")
	if n := len(h.issued("record-early")); n != 2 {
		t.Fatalf("%d tokens after the record was forged", n)
	}
	if got := h.get("tok").Status.ExpiresAt.Year(); got == 2099 {
		t.Fatal("the forged expiry reached status")
	}
}

// TestTLSMaterialIsAnInput: rotating the client certificate or the CA
// bundle gets a new token at once, as rotating the credentials does.
func TestTLSMaterialIsAnInput(t *testing.T) {
	h := newHarness(t)
	ca, err := tokenserver.NewCA("tokensync rotation CA")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.ServerCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := tokenserver.New(tokenserver.Options{TLSClientAuth: map[string]string{"mtls-rotate": "rotate-client"}, ExpiresIn: 3600, Now: h.clock.Now})
	base, stop := srv.StartTLS(sc, ca.Pool())
	t.Cleanup(stop)
	cert, key, err := ca.ClientCert("rotate-client")
	if err != nil {
		t.Fatal(err)
	}
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("mtls-rotate")})
	h.createSecret("client-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": cert, "tls.key": key})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: h.ns}, Data: map[string]string{"ca.crt": string(ca.CertPEM)}}
	if err := k8sClient.Create(h.ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ConfigMap in the index", func() bool {
		rv, _ := idx.ConfigMap(client.ObjectKeyFromObject(cm))
		return rv == cm.ResourceVersion
	})
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodTLSClientAuth
		o.Spec.Provider.TLS = &v1alpha1.TLSSpec{
			CABundle:                   &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeySelector{Name: "ca"}},
			ClientCertificateSecretRef: &v1alpha1.LocalSecretReference{Name: "client-tls"},
		}
	})
	wantTokens := func(n int) {
		t.Helper()
		if got := len(srv.Issued()); got != n {
			t.Fatalf("%d tokens, want %d", got, n)
		}
	}
	h.reconcile("tok")
	wantReady(h, "tok")
	h.reconcile("tok")
	wantTokens(1)

	// A new client certificate: a new token, bound to it (RFC 8705).
	cert2, key2, err := ca.ClientCert("rotate-client")
	if err != nil {
		t.Fatal(err)
	}
	s := h.secret("client-tls")
	s.Data["tls.crt"], s.Data["tls.key"] = cert2, key2
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	if reqs := h.r.tokensFor(h.ctx, "Secret", keyIn(h.ns, "client-tls")); len(reqs) != 1 {
		t.Fatalf("a client certificate event queues %v", reqs)
	}
	h.reconcile("tok")
	wantTokens(2)

	// A new CA bundle (here: the same CA after a comment): a new token.
	cm.Data["ca.crt"] = "# rotated\n" + cm.Data["ca.crt"]
	if err := k8sClient.Update(h.ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ConfigMap in the index", func() bool {
		rv, _ := idx.ConfigMap(client.ObjectKeyFromObject(cm))
		return rv == cm.ResourceVersion
	})
	if reqs := h.r.tokensFor(h.ctx, "ConfigMap", keyIn(h.ns, "ca")); len(reqs) != 1 {
		t.Fatalf("a CA bundle event queues %v", reqs)
	}
	h.reconcile("tok")
	wantTokens(3)
	h.reconcile("tok")
	wantTokens(3)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestDurationsAreBoundedAtAdmission: absurd durations are refused before
// they reach the renewal arithmetic.
func TestDurationsAreBoundedAtAdmission(t *testing.T) {
	h := newHarness(t)
	for _, r := range []*v1alpha1.RefreshSpec{
		{DefaultLifetime: &metav1.Duration{Duration: 1752000 * time.Hour}},
		{RenewBefore: &metav1.Duration{Duration: 8761 * time.Hour}, DefaultLifetime: &metav1.Duration{Duration: 8760 * time.Hour}},
	} {
		o := &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: h.ns},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
				Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
				Refresh:        r,
			},
		}
		if err := k8sClient.Create(h.ctx, o); !apierrors.IsInvalid(err) {
			t.Fatalf("%+v admitted: %v", r, err)
		}
	}
}
