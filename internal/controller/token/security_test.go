package token

import (
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

func TestTokenURLAllowlist(t *testing.T) {
	h := newHarness(t)
	allow, err := oauth.ParseHostAllowlist("*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	h.r.URLs.Allowlist = allow
	h.createCreds("creds", "allow-client", "allow-secret")
	before := tokenSrv.Requests()
	o := h.createToken("outside", "creds", nil) // the test server on 127.0.0.1
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)
	if !strings.Contains(c.Message, "127.0.0.1") || !strings.Contains(c.Message, "*.example.com") {
		t.Fatalf("message %q", c.Message)
	}
	if tokenSrv.Requests() != before {
		t.Fatal("a request was sent to a host outside the allowlist")
	}
	// Issuer URLs are checked too.
	o2 := h.createToken("issuer", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL, o.Spec.Provider.IssuerURL = "", "https://login.example.org"
	})
	h.reconcile(o2.Name)
	wantCondition(t, h.get(o2.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)

	// Once the admin allows the host, the same object works.
	allow, _ = oauth.ParseHostAllowlist("*.example.com,127.0.0.0/8")
	h.r.URLs.Allowlist = allow
	h.clock.Step(2 * 60 * 60 * 1e9)
	h.reconcile(o.Name)
	wantReady(h, o.Name)
}

func TestMetadataAddressesAreRefused(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "imds-client", "imds-secret")
	for name, u := range map[string]string{
		"aws":  "https://169.254.169.254/latest/api/token",
		"ipv6": "https://[fd00:ec2::254]/token",
	} {
		o := h.createToken(name, "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = u })
		h.reconcile(o.Name)
		c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)
		if !strings.Contains(c.Message, "metadata") {
			t.Fatalf("%s: message %q", name, c.Message)
		}
	}
}

func TestDeletingAMergeTokenRemovesOnlyItsKeys(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "merge-del-client", "merge-del-secret")
	h.createSecret("app-config", "", map[string][]byte{"db_url": []byte("postgres://db"), "mode": []byte("prod")})
	o := h.createToken("merge", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "app-config", CreationPolicy: v1alpha1.CreationPolicyMerge, Labels: map[string]v1alpha1.LabelValue{"team": "payments"}}
	})
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	if !controllerutil.ContainsFinalizer(h.get(o.Name), Finalizer) {
		t.Fatal("no finalizer on a Merge object")
	}
	if s := h.secret("app-config"); len(s.Data["access_token"]) == 0 {
		t.Fatal("no token merged")
	}

	if err := k8sClient.Delete(h.ctx, h.get(o.Name)); err != nil {
		t.Fatal(err)
	}
	h.syncCache(h.get(o.Name))
	if _, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: keyIn(h.ns, o.Name)}); err != nil {
		t.Fatal(err)
	}
	s := h.secret("app-config")
	if string(s.Data["db_url"]) != "postgres://db" || string(s.Data["mode"]) != "prod" {
		t.Fatalf("the owner's keys were touched: %v", keys(s.Data))
	}
	for _, k := range []string{"access_token", "token_type", "expires_at"} {
		if _, ok := s.Data[k]; ok {
			t.Fatalf("tokensync's key %s was left behind", k)
		}
	}
	if _, ok := s.Labels[v1alpha1.ManagedLabel]; ok || s.Labels["team"] != "" || s.Annotations[v1alpha1.OwnerAnnotation] != "" {
		t.Fatalf("tokensync's labels or annotations were left: %v %v", s.Labels, s.Annotations)
	}
	err := k8sClient.Get(h.ctx, keyIn(h.ns, o.Name), &v1alpha1.OAuthClientToken{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the object is still there after its finalizer ran: %v", err)
	}
}

func TestDeletingOwnerAndOrphanTokens(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "del-client", "del-secret")
	owner := h.createToken("owned", "creds", nil)
	orphan := h.createToken("orphan", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{CreationPolicy: v1alpha1.CreationPolicyOrphan}
	})
	h.reconcile(owner.Name)
	h.reconcile(orphan.Name)
	// Owner: the Secret is controlled by the object, so the garbage
	// collector (not running in envtest) deletes it with the object; no
	// finalizer holds the deletion.
	s := h.secret("owned")
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != h.get(owner.Name).UID || controllerutil.ContainsFinalizer(h.get(owner.Name), Finalizer) {
		t.Fatal("an Owner Secret must carry a controller ownerReference and no finalizer")
	}
	// Orphan: nothing ties the Secret to the object; it outlives it intact.
	if err := k8sClient.Delete(h.ctx, h.get(orphan.Name)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: keyIn(h.ns, orphan.Name)}); err != nil {
		t.Fatal(err)
	}
	if s := h.secret("orphan"); len(s.OwnerReferences) != 0 || len(s.Data["access_token"]) == 0 {
		t.Fatal("an Orphan Secret must outlive its object with its token")
	}
}

func TestExpiryPolicyClearRemovesTheStaleToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "clear-client", "clear-secret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{ExpiryPolicy: v1alpha1.ExpiryPolicyClear, Labels: map[string]v1alpha1.LabelValue{"app": "x"}}
	})
	h.reconcile("tok")

	// Still valid: a failed renewal keeps the token whatever the policy.
	h.clock.Step(50 * time.Minute)
	tokenSrv.FailNext(1, http.StatusServiceUnavailable, "", nil)
	h.reconcile("tok")
	if len(h.secret("tok").Data["access_token"]) == 0 {
		t.Fatal("a still-valid token was removed")
	}

	h.clock.Step(11 * time.Minute)
	tokenSrv.FailNext(1, http.StatusServiceUnavailable, "", nil)
	h.reconcile("tok")
	o := h.get("tok")
	c := wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)
	if !strings.Contains(c.Message, "removed") {
		t.Fatalf("message %q", c.Message)
	}
	s := h.secret("tok")
	if _, ok := s.Data["access_token"]; ok || s.Labels["app"] != "x" {
		t.Fatalf("want the token keys gone and the Secret kept: keys %v labels %v", keys(s.Data), s.Labels)
	}

	// Still down at the next retry: still TokenExpired, nothing to clear.
	h.clock.Step(10 * time.Minute)
	tokenSrv.FailNext(1, http.StatusServiceUnavailable, "", nil)
	h.reconcile("tok")
	wantCondition(t, h.get("tok"), v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)

	// Recovery is automatic.
	h.clock.Step(10 * time.Minute)
	h.reconcile("tok")
	wantReady(h, "tok")
	if len(h.secret("tok").Data["access_token"]) == 0 {
		t.Fatal("no token after recovery")
	}
}

func TestRefreshRequestedAnnotationForcesOneToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "manual-client", "manual-secret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	annotate := func(v string) {
		o := h.get("tok")
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = v
		if err := k8sClient.Update(h.ctx, o); err != nil {
			t.Fatal(err)
		}
		h.syncCache(o)
	}
	annotate("1700000000")
	h.reconcile("tok")
	if n := len(h.issued("manual-client")); n != 2 {
		t.Fatalf("%d tokens after a refresh request, want 2", n)
	}
	if got := h.get("tok").Status.LastHandledRefreshRequest; got != "1700000000" {
		t.Fatalf("lastHandledRefreshRequest %q", got)
	}
	if string(h.secret("tok").Data["access_token"]) != h.issued("manual-client")[1].AccessToken {
		t.Fatal("the forced token was not written")
	}
	// The same value again forces nothing.
	h.reconcile("tok")
	h.reconcile("tok")
	if n := len(h.issued("manual-client")); n != 2 {
		t.Fatalf("%d tokens, want still 2", n)
	}
	// A new value forces one more.
	annotate("1700000100")
	h.reconcile("tok")
	h.reconcile("tok")
	if n := len(h.issued("manual-client")); n != 3 {
		t.Fatalf("%d tokens after a second request, want 3", n)
	}
}
