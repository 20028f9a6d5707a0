package token

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// --- helpers ---

func (h *harness) createCreds(name, id, secret string) {
	h.t.Helper()
	tokenSrv.RegisterClient(id, secret)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Data:       map[string][]byte{"client_id": []byte(id), "client_secret": []byte(secret)},
	}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) createToken(name, creds string, mutate func(*v1alpha1.OAuthClientToken)) *v1alpha1.OAuthClientToken {
	h.t.Helper()
	o := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: creds},
			Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
		},
	}
	if mutate != nil {
		mutate(o)
	}
	if err := k8sClient.Create(h.ctx, o); err != nil {
		h.t.Fatal(err)
	}
	h.syncCache(o)
	return o
}

// syncCache waits until the manager's caches have seen the latest version of
// obj and of the Secrets of the namespace, as the controller would before it
// reconciles again.
func (h *harness) syncCache(objs ...client.Object) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, o := range objs {
			if _, isSecret := o.(*corev1.Secret); isSecret {
				// Checked below when it exists; a deleted one must be gone
				// from the metadata cache too.
				err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), &corev1.Secret{})
				if apierrors.IsNotFound(err) {
					if _, exists := idx.Secret(client.ObjectKeyFromObject(o)); exists {
						return false, nil
					}
				}
				continue
			}
			fresh := o.DeepCopyObject().(client.Object)
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), fresh); err != nil {
				if apierrors.IsNotFound(err) {
					// Deleted: gone from the manager's cache too.
					if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); !apierrors.IsNotFound(err) {
						return false, nil
					}
					continue
				}
				return false, err
			}
			cached := o.DeepCopyObject().(client.Object)
			if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(o), cached); err != nil || cached.GetResourceVersion() != fresh.GetResourceVersion() {
				return false, nil
			}
		}
		// Every Secret of the namespace, in the metadata cache.
		var live corev1.SecretList
		if err := k8sClient.List(ctx, &live, client.InNamespace(h.ns)); err != nil {
			return false, err
		}
		for _, s := range live.Items {
			if rv, _ := idx.Secret(client.ObjectKeyFromObject(&s)); rv != s.ResourceVersion {
				return false, nil
			}
			if s.Labels[v1alpha1.ManagedLabel] == "true" {
				c := &corev1.Secret{}
				if err := mgrClient.Get(ctx, client.ObjectKeyFromObject(&s), c); err != nil || c.ResourceVersion != s.ResourceVersion {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		h.t.Fatalf("caches did not catch up: %v", err)
	}
}

func (h *harness) reconcile(name string) ctrl.Result {
	h.t.Helper()
	res, err := h.r.Reconcile(h.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: h.ns, Name: name}})
	if err != nil {
		h.t.Fatalf("reconcile: %v", err)
	}
	o := h.get(name)
	h.syncCache(o, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.TargetName(), Namespace: h.ns}})
	return res
}

func (h *harness) get(name string) *v1alpha1.OAuthClientToken {
	h.t.Helper()
	o := &v1alpha1.OAuthClientToken{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: name}, o); err != nil {
		h.t.Fatal(err)
	}
	return o
}

func (h *harness) secret(name string) *corev1.Secret {
	h.t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: name}, s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) issued(clientID string) []tokenserver.IssuedToken {
	var out []tokenserver.IssuedToken
	for _, it := range tokenSrv.Issued() {
		if it.ClientID == clientID {
			out = append(out, it)
		}
	}
	return out
}

func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func condition(o *v1alpha1.OAuthClientToken, t string) *metav1.Condition {
	return apimeta.FindStatusCondition(o.Status.Conditions, t)
}

func wantCondition(t *testing.T, o *v1alpha1.OAuthClientToken, condType string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	c := condition(o, condType)
	if c == nil {
		t.Fatalf("no %s condition in %+v", condType, o.Status.Conditions)
	}
	if c.Status != status || c.Reason != reason {
		t.Fatalf("%s = %s/%s (%q), want %s/%s", condType, c.Status, c.Reason, c.Message, status, reason)
	}
	return c
}

func kstatusOf(t *testing.T, o *v1alpha1.OAuthClientToken) kstatus.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func approx(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if d := got - want; d < -time.Second || d > time.Second {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// --- tests ---

func TestIssuesFirstToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "first-issue", "s3cret")
	h.createToken("shop", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.Scopes = []string{"wallets:read", "wallets:write"}
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "shop-token", Labels: map[string]v1alpha1.LabelValue{"team": "shop"}}
	})
	if st := kstatusOf(t, h.get("shop")); st != kstatus.InProgressStatus {
		t.Fatalf("kstatus before the first reconcile = %s, want InProgress (observedGeneration defaults to -1)", st)
	}

	res := h.reconcile("shop")

	issued := h.issued("first-issue")
	if len(issued) != 1 {
		t.Fatalf("token requests = %d, want 1", len(issued))
	}
	s := h.secret("shop-token")
	if got := string(s.Data["access_token"]); got != issued[0].AccessToken {
		t.Fatalf("Secret access_token does not hold the issued token")
	}
	if string(s.Data["token_type"]) != "Bearer" {
		t.Fatalf("token_type = %q", s.Data["token_type"])
	}
	wantExpiry := h.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if string(s.Data["expires_at"]) != wantExpiry {
		t.Fatalf("expires_at = %s, want %s", s.Data["expires_at"], wantExpiry)
	}
	if s.Labels[v1alpha1.ManagedLabel] != "true" || s.Labels["team"] != "shop" {
		t.Fatalf("labels = %v", s.Labels)
	}
	if s.Type != corev1.SecretTypeOpaque {
		t.Fatalf("type = %s", s.Type)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Name != "shop" || !*s.OwnerReferences[0].Controller {
		t.Fatalf("ownerReferences = %+v", s.OwnerReferences)
	}
	managedBy := map[string]bool{}
	for _, mf := range s.ManagedFields {
		managedBy[mf.Manager] = true
	}
	if !managedBy[secrets.FieldManager] {
		t.Fatalf("Secret not written by field manager %q: %v", secrets.FieldManager, managedBy)
	}
	if got := tokenSrv.LastRequest().Form.Get("scope"); got != "wallets:read wallets:write" {
		t.Fatalf("scope sent = %q", got)
	}

	o := h.get("shop")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if condition(o, v1alpha1.ConditionReconciling) != nil || condition(o, v1alpha1.ConditionStalled) != nil {
		t.Fatalf("unexpected conditions %+v", o.Status.Conditions)
	}
	if o.Status.ObservedGeneration != o.Generation || o.Status.SecretName != "shop-token" || o.Status.TokenType != "Bearer" {
		t.Fatalf("status = %+v", o.Status)
	}
	if strings.Join(o.Status.Scopes, " ") != strings.Join(issued[0].Scopes, " ") {
		t.Fatalf("status scopes = %v, issued %v", o.Status.Scopes, issued[0].Scopes)
	}
	// No jitter configured: renewal at 2/3 of the hour.
	approx(t, "renewAt - issuedAt", o.Status.RenewAt.Sub(o.Status.IssuedAt.Time), 40*time.Minute)
	approx(t, "RequeueAfter", res.RequeueAfter, 40*time.Minute)
	if st := kstatusOf(t, o); st != kstatus.CurrentStatus {
		t.Fatalf("kstatus = %s, want Current", st)
	}
	if ev := h.events(); len(ev) != 1 || !strings.Contains(ev[0], v1alpha1.EventTokenIssued) {
		t.Fatalf("events = %v", ev)
	}
}

func TestRefreshesOnSchedule(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "schedule", "s3cret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Refresh = &v1alpha1.RefreshSpec{RenewBefore: &metav1.Duration{Duration: 5 * time.Minute}}
	})
	res := h.reconcile("tok")
	approx(t, "RequeueAfter with renewBefore 5m", res.RequeueAfter, 55*time.Minute)
	first := string(h.secret("tok").Data["access_token"])

	// Just before renewAt: nothing happens.
	h.clock.Step(54 * time.Minute)
	res = h.reconcile("tok")
	if n := len(h.issued("schedule")); n != 1 {
		t.Fatalf("token requests before renewAt = %d, want 1", n)
	}
	approx(t, "RequeueAfter just before renewAt", res.RequeueAfter, time.Minute)

	// At renewAt: a new token, and the next renewal scheduled from it.
	h.clock.Step(time.Minute)
	res = h.reconcile("tok")
	if n := len(h.issued("schedule")); n != 2 {
		t.Fatalf("token requests after renewAt = %d, want 2", n)
	}
	second := string(h.secret("tok").Data["access_token"])
	if second == first || second != h.issued("schedule")[1].AccessToken {
		t.Fatal("the Secret does not hold the renewed token")
	}
	approx(t, "RequeueAfter after renewal", res.RequeueAfter, 55*time.Minute)
	o := h.get("tok")
	if !o.Status.IssuedAt.Time.Equal(h.clock.Now().Truncate(time.Second)) {
		t.Fatalf("issuedAt = %v, want %v", o.Status.IssuedAt, h.clock.Now())
	}
	// A routine renewal records no Event: status and metrics show it.
	if ev := h.events(); len(ev) != 1 || !strings.Contains(ev[0], v1alpha1.EventTokenIssued) {
		t.Fatalf("events = %v, want only the first issue's %s", ev, v1alpha1.EventTokenIssued)
	}
}

// TestRotationEventsOnlyWhenNotRoutine: a renewal at renewAt records no
// Event; a forced refresh does (TokenRotated, naming why).
func TestRotationEventsOnlyWhenNotRoutine(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "events", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	if ev := h.events(); len(ev) != 1 || !strings.Contains(ev[0], v1alpha1.EventTokenIssued) {
		t.Fatalf("events after the first token = %v", ev)
	}
	for i := range 3 {
		// Past renewAt (2/3 of the hour), before the expiry.
		h.clock.Step(45 * time.Minute)
		h.reconcile("tok")
		if n := len(h.issued("events")); n != i+2 {
			t.Fatalf("%d tokens after %d renewals", n, i+1)
		}
	}
	if ev := h.events(); len(ev) != 0 {
		t.Fatalf("routine renewals recorded events %v", ev)
	}
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = "1700000000"
	})
	h.reconcile("tok")
	if n := len(h.issued("events")); n != 5 {
		t.Fatalf("%d tokens after a forced refresh, want 5", n)
	}
	if ev := h.events(); len(ev) != 1 || !strings.Contains(ev[0], v1alpha1.EventTokenRotated) || !strings.Contains(ev[0], "Forced") {
		t.Fatalf("events after a forced refresh = %v, want one %s naming Forced", ev, v1alpha1.EventTokenRotated)
	}
}

func TestUsesDefaultLifetimeWithoutExpiresIn(t *testing.T) {
	h := newHarness(t)
	noExpiry := tokenserver.New(tokenserver.Options{Clients: map[string]string{"no-expiry": "pw"}})
	srvURL, stop := noExpiry.Start()
	defer stop()
	h.r.URLs.AllowInsecureHTTP = true
	h.r.Tokens = newPlainClient(h)
	h.createCreds("creds", "no-expiry", "pw")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = srvURL + "/token"
		o.Spec.Refresh = &v1alpha1.RefreshSpec{DefaultLifetime: &metav1.Duration{Duration: 30 * time.Minute}}
	})
	res := h.reconcile("tok")
	o := h.get("tok")
	approx(t, "lifetime", o.Status.ExpiresAt.Sub(o.Status.IssuedAt.Time), 30*time.Minute)
	approx(t, "RequeueAfter", res.RequeueAfter, 20*time.Minute)
}

func TestNoopReconcileMakesNoRequestsOrWrites(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "noop", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	writes := h.writes.n.Load()
	if writes != 2 {
		t.Fatalf("writes for a first issue = %d, want 2 (Secret apply + status patch)", writes)
	}

	h.clock.Step(10 * time.Minute)
	for range 3 {
		h.reconcile("tok")
	}
	if n := len(h.issued("noop")); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if got := h.writes.n.Load(); got != writes {
		t.Fatalf("no-op reconciles made %d writes", got-writes)
	}

	// A restarted manager: a new reconciler with no memory, same cluster.
	restarted := newHarness(t)
	restarted.ns = h.ns
	restarted.clock.SetTime(h.clock.Now())
	restarted.reconcile("tok")
	if n := len(h.issued("noop")); n != 1 {
		t.Fatalf("a restarted reconciler requested %d tokens, want 0", n-1)
	}
	if got := restarted.writes.n.Load(); got != 0 {
		t.Fatalf("a restarted reconciler made %d writes, want 0", got)
	}
}

func TestRepairsDeletedAndEditedSecret(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "repair", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	first := string(h.secret("tok").Data["access_token"])

	// token_type edited: repaired from what tokensync recorded, no new token.
	s := h.secret("tok")
	s.Data["token_type"] = []byte("Edited")
	s.Data["extra"] = []byte("kept")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile("tok")
	s = h.secret("tok")
	if string(s.Data["token_type"]) != "Bearer" || string(s.Data["access_token"]) != first {
		t.Fatalf("Secret not repaired: token_type=%q", s.Data["token_type"])
	}
	if n := len(h.issued("repair")); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}

	// access_token edited: a new token replaces it.
	s.Data["access_token"] = []byte("tampered")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile("tok")
	issued := h.issued("repair")
	if len(issued) != 2 || string(h.secret("tok").Data["access_token"]) != issued[1].AccessToken {
		t.Fatalf("tampered token not replaced (requests %d)", len(issued))
	}

	// Secret deleted: recreated with a new token.
	if err := k8sClient.Delete(h.ctx, h.secret("tok")); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile("tok")
	issued = h.issued("repair")
	if len(issued) != 3 || string(h.secret("tok").Data["access_token"]) != issued[2].AccessToken {
		t.Fatalf("deleted Secret not recreated (requests %d)", len(issued))
	}
}

func TestRotatedCredentialsGetANewToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rotate", "old-secret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")

	tokenSrv.SetClientSecret("rotate", "new-secret")
	creds := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "creds"}, creds); err != nil {
		t.Fatal(err)
	}
	creds.Data["client_secret"] = []byte("new-secret")
	if err := k8sClient.Update(h.ctx, creds); err != nil {
		t.Fatal(err)
	}
	h.syncCache(creds)
	h.reconcile("tok")
	issued := h.issued("rotate")
	if len(issued) != 2 {
		t.Fatalf("token requests = %d, want 2", len(issued))
	}
	if string(h.secret("tok").Data["access_token"]) != issued[1].AccessToken {
		t.Fatal("Secret does not hold the token obtained with the new credentials")
	}
	wantCondition(t, h.get("tok"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
}

func TestRefusesForeignSecret(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "foreign", "s3cret")
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: h.ns},
		Data:       map[string][]byte{"access_token": []byte("someone-elses")},
	}
	if err := k8sClient.Create(h.ctx, foreign); err != nil {
		t.Fatal(err)
	}
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "taken"}
	})
	h.syncCache(foreign)
	h.reconcile("tok")

	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretConflict)
	if st := kstatusOf(t, o); st != kstatus.FailedStatus {
		t.Fatalf("kstatus = %s, want Failed", st)
	}
	if s := h.secret("taken"); string(s.Data["access_token"]) != "someone-elses" || len(s.Data) != 1 {
		t.Fatalf("foreign Secret was modified: %v", s.Data)
	}
	if n := len(h.issued("foreign")); n != 0 {
		t.Fatalf("token requests = %d, want 0", n)
	}
}

func TestSecondTokenForSameTargetIsRefused(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "pair", "s3cret")
	h.createToken("first", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "shared"} })
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has second precision
	h.createToken("second", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "shared"} })
	h.reconcile("second")
	h.reconcile("first")
	wantCondition(t, h.get("second"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
	wantCondition(t, h.get("first"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if s := h.secret("shared"); s.Annotations[v1alpha1.OwnerAnnotation] != "first" {
		t.Fatalf("shared Secret owner = %q", s.Annotations[v1alpha1.OwnerAnnotation])
	}
	h.reconcile("second")
	if n := len(h.issued("pair")); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
}

func TestCreationPolicies(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "policies", "s3cret")

	h.createToken("orphan", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{CreationPolicy: v1alpha1.CreationPolicyOrphan}
	})
	h.reconcile("orphan")
	if refs := h.secret("orphan").OwnerReferences; len(refs) != 0 {
		t.Fatalf("Orphan Secret has ownerReferences %v", refs)
	}

	// Merge into a Secret that does not exist yet: Stalled until it does.
	h.createToken("merge", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "app-config", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	h.reconcile("merge")
	wantCondition(t, h.get("merge"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTargetSecretNotFound)

	app := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: h.ns},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"db_password": []byte("hunter2")},
	}
	if err := k8sClient.Create(h.ctx, app); err != nil {
		t.Fatal(err)
	}
	h.syncCache(app)
	h.reconcile("merge")
	s := h.secret("app-config")
	if string(s.Data["db_password"]) != "hunter2" || len(s.Data["access_token"]) == 0 {
		t.Fatalf("Merge lost keys or wrote none: %v", keys(s.Data))
	}
	if len(s.OwnerReferences) != 0 {
		t.Fatal("Merge set an ownerReference on someone else's Secret")
	}
	wantCondition(t, h.get("merge"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMissingCredentialsStall(t *testing.T) {
	h := newHarness(t)
	h.createToken("tok", "absent", nil)
	h.reconcile("tok")
	c := wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsNotFound)
	if !strings.Contains(c.Message, "absent") {
		t.Fatalf("message %q does not name the Secret", c.Message)
	}

	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "absent", Namespace: h.ns},
		Data:       map[string][]byte{"client_id": []byte("x"), "client_secret": {}},
	}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile("tok")
	c = wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsKeyMissing)
	if !strings.Contains(c.Message, `"client_secret"`) {
		t.Fatalf("message %q does not name the key", c.Message)
	}
}

func TestInvalidClientStalls(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "bad-client", "right")
	// The Secret holds a wrong secret.
	s := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "creds"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["client_secret"] = []byte("wrong-secret-value")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.createToken("tok", "creds", nil)
	res := h.reconcile("tok")

	o := h.get("tok")
	c := wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidClient)
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidClient)
	if condition(o, v1alpha1.ConditionReconciling) != nil {
		t.Fatal("Reconciling set on a stalled object")
	}
	if !strings.Contains(c.Message, "invalid_client") {
		t.Fatalf("message %q does not quote the provider's error", c.Message)
	}
	if strings.Contains(c.Message, "wrong-secret-value") || strings.Contains(c.Message, "right") {
		t.Fatalf("message leaks the secret: %q", c.Message)
	}
	if st := kstatusOf(t, o); st != kstatus.FailedStatus {
		t.Fatalf("kstatus = %s, want Failed", st)
	}
	if o.Status.FailedAttempts != 1 || o.Status.LastFailureTime == nil {
		t.Fatalf("failure not recorded: %+v", o.Status)
	}
	if res.RequeueAfter < renewal.StalledBaseBackoff {
		t.Fatalf("stalled retry after %v, want at least %v", res.RequeueAfter, renewal.StalledBaseBackoff)
	}
	if !apierrors.IsNotFound(getErr(h, "tok")) {
		t.Fatal("a target Secret was created without a token")
	}
	if ev := h.events(); len(ev) != 1 || !strings.Contains(ev[0], v1alpha1.EventTokenRequestFailed) || strings.Contains(ev[0], "wrong-secret-value") {
		t.Fatalf("events = %v", ev)
	}
}

// newPlainClient is a token client for plain-http test servers.
func newPlainClient(h *harness) *oauth.Client {
	return &oauth.Client{HTTPClient: oauth.NewHTTPClient(), Now: h.clock.Now}
}

func getErr(h *harness, name string) error {
	return k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: name}, &corev1.Secret{})
}

func TestBacksOffOnServerErrorsAndKeepsTheToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "flaky", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	good := string(h.secret("tok").Data["access_token"])

	// Renewal time: the endpoint fails with 503 three times.
	h.clock.Step(41 * time.Minute)
	tokenSrv.FailNext(3, http.StatusServiceUnavailable, "<html>down</html>", nil)
	res := h.reconcile("tok")
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonTokenEndpointUnavailable)
	// The consumer still holds a valid token: Ready stays True.
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if condition(o, v1alpha1.ConditionStalled) != nil {
		t.Fatal("Stalled set for a transient error")
	}
	if st := kstatusOf(t, o); st != kstatus.InProgressStatus {
		t.Fatalf("kstatus = %s, want InProgress", st)
	}
	if string(h.secret("tok").Data["access_token"]) != good {
		t.Fatal("the valid token was removed after a failed refresh")
	}
	approx(t, "first backoff", res.RequeueAfter, renewal.BaseBackoff)
	requests := tokenSrv.Requests()

	// An event before the backoff has passed does not send a request.
	res = h.reconcile("tok")
	if tokenSrv.Requests() != requests {
		t.Fatal("a reconcile during backoff sent a token request")
	}
	approx(t, "remaining backoff", res.RequeueAfter, renewal.BaseBackoff)

	h.clock.Step(renewal.BaseBackoff)
	res = h.reconcile("tok")
	approx(t, "second backoff", res.RequeueAfter, 2*renewal.BaseBackoff)
	h.clock.Step(2 * renewal.BaseBackoff)
	res = h.reconcile("tok")
	approx(t, "third backoff", res.RequeueAfter, 4*renewal.BaseBackoff)
	if got := h.get("tok").Status.FailedAttempts; got != 3 {
		t.Fatalf("failedAttempts = %d, want 3", got)
	}

	// The endpoint is back.
	h.clock.Step(4 * renewal.BaseBackoff)
	h.reconcile("tok")
	o = h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if condition(o, v1alpha1.ConditionReconciling) != nil || o.Status.FailedAttempts != 0 || o.Status.LastFailureTime != nil {
		t.Fatalf("failure state not cleared: %+v", o.Status)
	}
	if string(h.secret("tok").Data["access_token"]) == good {
		t.Fatal("token not renewed after recovery")
	}
	ev := h.events()
	if !strings.Contains(ev[len(ev)-1], v1alpha1.EventTokenRecovered) {
		t.Fatalf("events = %v", ev)
	}
	failures := 0
	for _, e := range ev {
		if strings.Contains(e, v1alpha1.EventTokenRequestFailed) {
			failures++
		}
	}
	if failures != 1 {
		t.Fatalf("%d failure events for one failure streak, want 1", failures)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "throttled", "s3cret")
	h.createToken("tok", "creds", nil)
	tokenSrv.FailNext(1, http.StatusTooManyRequests, `{"error":"slow_down"}`, http.Header{"Retry-After": {"120"}})
	res := h.reconcile("tok")
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonTokenEndpointUnavailable)
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenEndpointUnavailable)
	approx(t, "RequeueAfter", res.RequeueAfter, 120*time.Second)
}

func TestExpiredTokenWhileEndpointDown(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "expired", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	good := string(h.secret("tok").Data["access_token"])

	h.clock.Step(61 * time.Minute)
	tokenSrv.FailNext(1, http.StatusBadGateway, "bad gateway", nil)
	h.reconcile("tok")
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)
	wantCondition(t, o, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonTokenEndpointUnavailable)
	if string(h.secret("tok").Data["access_token"]) != good {
		t.Fatal("the stale token was removed")
	}
}

func TestRefusesPlainHTTPUnlessAllowed(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "plain", "s3cret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = "http://127.0.0.1:1/token"
	})
	h.reconcile("tok")
	wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInsecureTokenURL)
}

func TestMinRefreshIntervalFloorsTinyLifetimes(t *testing.T) {
	h := newHarness(t)
	tiny := tokenserver.New(tokenserver.Options{Clients: map[string]string{"tiny": "pw"}, ExpiresIn: 2})
	srvURL, stop := tiny.Start()
	defer stop()
	h.r.URLs.AllowInsecureHTTP = true
	h.r.Tokens = newPlainClient(h)
	h.createCreds("creds", "tiny", "pw")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = srvURL + "/token" })
	res := h.reconcile("tok")
	if res.RequeueAfter < DefaultMinRefreshInterval-time.Second {
		t.Fatalf("RequeueAfter = %v for a 2s token, want the %v floor", res.RequeueAfter, DefaultMinRefreshInterval)
	}
}

func TestAdmissionRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	base := func() *v1alpha1.OAuthClientToken {
		return &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: h.ns},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
				Provider:       v1alpha1.ProviderSpec{TokenURL: "https://auth.example.com/oauth/token"},
			},
		}
	}
	d := func(s string) *metav1.Duration {
		v, _ := time.ParseDuration(s)
		return &metav1.Duration{Duration: v}
	}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.OAuthClientToken)
		want   string
	}{
		{"relative URL", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = "/oauth/token" }, "tokenURL must be an absolute https URL"},
		{"ftp URL", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = "ftp://auth.example.com/token" }, "tokenURL must be an absolute https URL"},
		{"userinfo in URL", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.TokenURL = "https://id:secret@auth.example.com/token"
		}, "must not contain user information"},
		{"empty scope", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Scopes = []string{""} }, "spec.provider.scopes[0]"},
		{"scope with a space", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Scopes = []string{"read write"} }, "spec.provider.scopes[0]"},
		{"unknown authMethod", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.AuthMethod = "Digest" }, "Unsupported value: \"Digest\""},
		{"unknown creationPolicy", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Target = &v1alpha1.TargetSpec{CreationPolicy: "Replace"}
		}, "Unsupported value: \"Replace\""},
		{"zero timeout", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Timeout = d("0s") }, "timeout must be positive"},
		{"negative renewBefore", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Refresh = &v1alpha1.RefreshSpec{RenewBefore: d("-5m")}
		}, "renewBefore must be positive"},
		{"renewBefore not below defaultLifetime", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Refresh = &v1alpha1.RefreshSpec{RenewBefore: d("1h"), DefaultLifetime: d("1h")}
		}, "renewBefore must be smaller than defaultLifetime"},
		{"renewBefore above the default 1h lifetime", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Refresh = &v1alpha1.RefreshSpec{RenewBefore: d("2h")}
		}, "renewBefore must be smaller than defaultLifetime"},
		{"invalid target name", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "Not_A_Name"} }, "spec.target.name"},
		{"target is the credentials Secret", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "creds"} }, "must not be the credentials Secret"},
		{"default target is the credentials Secret", func(o *v1alpha1.OAuthClientToken) { o.Name = "creds" }, "must not be the credentials Secret"},
		{"reserved extra param", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.ExtraParams = map[string]string{"client_secret": "x"}
		}, "extraParams must not set"},
		{"resource as an extra param", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.ExtraParams = map[string]string{"resource": "https://api.example.com"}
		}, "extraParams must not set"},
		{"neither tokenURL nor issuerURL", func(o *v1alpha1.OAuthClientToken) {
			// Scopes keep the provider from being empty, which is no provider.
			o.Spec.Provider.TokenURL, o.Spec.Provider.Scopes = "", []string{"read"}
		}, "set exactly one of tokenURL and issuerURL"},
		{"no provider at all", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider = v1alpha1.ProviderSpec{} }, "set exactly one of provider and providerRef"},
		{"provider and providerRef", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.ProviderRef = &v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"}
		}, "set exactly one of provider and providerRef"},
		{"providerRef with credentialsRef", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider = v1alpha1.ProviderSpec{}
			o.Spec.ProviderRef = &v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"}
		}, "with providerRef, the credentials are the provider's"},
		{"providerRef of an unknown kind", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider, o.Spec.CredentialsRef = v1alpha1.ProviderSpec{}, nil
			o.Spec.ProviderRef = &v1alpha1.ProviderReference{Kind: "Issuer", Name: "idp"}
		}, "Unsupported value"},
		{"both tokenURL and issuerURL", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.IssuerURL = "https://auth.example.com"
		}, "set exactly one of tokenURL and issuerURL"},
		{"issuerURL with a query", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.TokenURL, o.Spec.Provider.IssuerURL = "", "https://auth.example.com/?tenant=a"
		}, "issuerURL must not contain a query"},
		{"unknown grant", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Grant = "Implicit" }, "Unsupported value: \"Implicit\""},
		{"grantType with a space", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.GrantType = "client credentials" }, "spec.provider.grantType"},
		{"unknown requestFormat", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.RequestFormat = "XML" }, "Unsupported value: \"XML\""},
		{"relative resource", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Resources = []string{"api"} }, "absolute URI without a fragment"},
		{"Authorization header", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.Headers = map[string]v1alpha1.HeaderValue{"authorization": "Bearer x"}
		}, "headers must not set Authorization"},
		{"header name with a space", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.Headers = map[string]v1alpha1.HeaderValue{"X Bad": "x"}
		}, "header names must be HTTP tokens"},
		{"header value with a newline", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.Headers = map[string]v1alpha1.HeaderValue{"X-Tenant": "a\r\nX-Evil: 1"}
		}, "spec.provider.headers.X-Tenant"},
		{"response field path", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.ResponseFields = &v1alpha1.ResponseFields{AccessToken: "data..token"}
		}, "spec.provider.responseFields.accessToken"},
		{"clientAssertion without PrivateKeyJWT", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.ClientAssertion = &v1alpha1.ClientAssertionSpec{KeyID: "k"}
		}, "clientAssertion is only used with authMethod PrivateKeyJWT"},
		{"unknown signing algorithm", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
			o.Spec.Provider.ClientAssertion = &v1alpha1.ClientAssertionSpec{SigningAlgorithm: "HS256"}
		}, "Unsupported value: \"HS256\""},
		{"TLSClientAuth without a certificate", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodTLSClientAuth
		}, "authMethod TLSClientAuth needs tls.clientCertificateSecretRef"},
		{"CA bundle from two sources", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.TLS = &v1alpha1.TLSSpec{CABundle: &v1alpha1.CABundleSource{SecretRef: &v1alpha1.KeySelector{Name: "a"}, ConfigMapRef: &v1alpha1.KeySelector{Name: "b"}}}
		}, "set exactly one of secretRef and configMapRef"},
		{"unbalanced template", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"token": "Bearer {{ .AccessToken }"}}
		}, "unbalanced template delimiters"},
		{"bad template key", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"a/b": "{{ .AccessToken }}"}}
		}, "data keys must be valid Secret keys"},
		{"unknown rollout kind", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "CronJob", Name: "app"}}
		}, "Unsupported value: \"CronJob\""},
		{"invalid rollout name", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: v1alpha1.RolloutKindDeployment, Name: "App_1"}}
		}, "spec.rolloutRestartTargets[0].name"},
		{"duplicate rollout target", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: v1alpha1.RolloutKindDeployment, Name: "app"}, {Kind: v1alpha1.RolloutKindDeployment, Name: "app"}}
		}, "Duplicate value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mutate(o)
			err := k8sClient.Create(h.ctx, o)
			if err == nil {
				_ = k8sClient.Delete(h.ctx, o)
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// And a good one with http (refused later by the manager, not at admission) is accepted.
	o := base()
	o.Spec.Provider.TokenURL = "http://localhost:8080/o/token/"
	if err := k8sClient.Create(h.ctx, o); err != nil {
		t.Fatalf("valid object refused: %v", err)
	}
	got := h.get("bad")
	if got.Status.ObservedGeneration != -1 {
		t.Fatalf("status.observedGeneration default = %d, want -1", got.Status.ObservedGeneration)
	}
	if got.Spec.Provider.AuthMethod != v1alpha1.AuthMethodAuto || got.Spec.Provider.Timeout.Duration != 10*time.Second {
		t.Fatalf("defaults not applied: %+v", got.Spec.Provider)
	}
}
