package token

import (
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
)

// providerEnv is a harness with a platform namespace holding the
// credentials of ClusterOAuthProviders, and the reconciler resolving
// providerRefs with policy.
type providerEnv struct {
	*harness
	platform string
}

func newProviderEnv(t *testing.T, policy providers.Policy) *providerEnv {
	t.Helper()
	h := newHarness(t)
	e := &providerEnv{harness: h, platform: h.ns + "-platform"}
	e.namespace(e.platform, nil)
	policy.ClusterNamespace = e.platform
	h.r.Providers = &providers.Resolver{Client: mgrClient, API: mgrAPI, Policy: policy}
	return e
}

func (e *providerEnv) namespace(name string, labels map[string]string) {
	e.t.Helper()
	if err := k8sClient.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
		e.t.Fatal(err)
	}
}

// credsIn creates a credentials Secret in ns for a new client of the
// suite's token server.
func (e *providerEnv) credsIn(ns, name, id, secret string) *corev1.Secret {
	e.t.Helper()
	tokenSrv.RegisterClient(id, secret)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Data:       map[string][]byte{"client_id": []byte(id), "client_secret": []byte(secret)},
	}
	if err := k8sClient.Create(e.ctx, s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// clusterProvider creates a ClusterOAuthProvider named after the test's
// namespace, whose credentials Secret "creds" in the platform namespace
// holds client id.
func (e *providerEnv) clusterProvider(id string, mutate func(*v1alpha1.ClusterOAuthProvider)) *v1alpha1.ClusterOAuthProvider {
	e.t.Helper()
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.platform, Name: "creds"}, &corev1.Secret{}); apierrors.IsNotFound(err) {
		e.credsIn(e.platform, "creds", id, "cl:ster/+secret")
	}
	p := &v1alpha1.ClusterOAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-idp"},
		Spec: v1alpha1.ClusterOAuthProviderSpec{OAuthProviderSpec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL, Scopes: []string{"read", "write"}},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
		}},
	}
	if mutate != nil {
		mutate(p)
	}
	if err := k8sClient.Create(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = k8sClient.Delete(e.ctx, p) })
	e.syncCache(p)
	return p
}

// refToken creates an OAuthClientToken in ns referencing a provider.
func (e *providerEnv) refToken(ns, name string, ref v1alpha1.ProviderReference, mutate func(*v1alpha1.OAuthClientToken)) *v1alpha1.OAuthClientToken {
	e.t.Helper()
	o := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.OAuthClientTokenSpec{ProviderRef: &ref},
	}
	if mutate != nil {
		mutate(o)
	}
	if err := k8sClient.Create(e.ctx, o); err != nil {
		e.t.Fatal(err)
	}
	e.syncCache(o)
	return o
}

func (e *providerEnv) clusterRef(scopes ...string) v1alpha1.ProviderReference {
	return v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: e.ns + "-idp", Scopes: scopes}
}

// reconcileIn reconciles ns/name with r and waits for the caches.
func (e *providerEnv) reconcileIn(r *Reconciler, ns, name string) {
	e.t.Helper()
	if _, err := r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}); err != nil {
		e.t.Fatalf("reconcile %s/%s: %v", ns, name, err)
	}
	o := e.getIn(ns, name)
	e.syncCache(o, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.TargetName(), Namespace: ns}})
}

func (e *providerEnv) getIn(ns, name string) *v1alpha1.OAuthClientToken {
	e.t.Helper()
	o := &v1alpha1.OAuthClientToken{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, o); err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *providerEnv) tokenIn(ns, name string) string {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		e.t.Fatal(err)
	}
	return string(s.Data["access_token"])
}

func TestClusterProviderObtainsTokenWithPlatformCredentials(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("cluster-provider-basic", nil)
	e.refToken(e.ns, "app", e.clusterRef(), nil)

	e.reconcile("app")

	issued := e.issued("cluster-provider-basic")
	if len(issued) != 1 {
		t.Fatalf("token requests = %d, want 1", len(issued))
	}
	if got := strings.Join(issued[0].Scopes, " "); got != "read write" {
		t.Fatalf("scopes requested = %q, want the provider's", got)
	}
	if e.tokenIn(e.ns, "app") != issued[0].AccessToken {
		t.Fatal("the Secret does not hold the issued token")
	}
	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if kstatusOf(t, o) != kstatus.CurrentStatus {
		t.Fatalf("kstatus = %s", kstatusOf(t, o))
	}
	// A reconcile with nothing to do requests nothing.
	e.reconcile("app")
	if n := len(e.issued("cluster-provider-basic")); n != 1 {
		t.Fatalf("token requests after a second reconcile = %d, want 1", n)
	}
}

func TestClusterProviderNamespaceNotSelected(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	selected := e.ns + "-selected"
	e.namespace(selected, map[string]string{"tokensync.io/idp": "allowed"})
	e.clusterProvider("cluster-provider-conditions", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Conditions = []v1alpha1.NamespaceCondition{
			{Namespaces: []string{"somewhere-else"}},
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tokensync.io/idp": "allowed"}}},
		}
	})
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.refToken(selected, "app", e.clusterRef(), nil)

	e.reconcile("app")
	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotAllowed)
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProviderNotAllowed)
	if n := len(e.issued("cluster-provider-conditions")); n != 0 {
		t.Fatalf("token requests for a namespace not selected = %d, want 0", n)
	}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "app"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a target Secret was written for a namespace not selected: %v", err)
	}

	e.reconcileIn(e.r, selected, "app")
	wantCondition(t, e.getIn(selected, "app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if n := len(e.issued("cluster-provider-conditions")); n != 1 {
		t.Fatalf("token requests for the selected namespace = %d, want 1", n)
	}
}

func TestClusterProviderScopesOutsideTheAllowlist(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("cluster-provider-allowlist", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read", "write", "audit"}}
	})
	e.refToken(e.ns, "narrow", e.clusterRef("audit"), nil)
	e.refToken(e.ns, "greedy", e.clusterRef("read", "admin"), nil)

	e.reconcile("greedy")
	c := wantCondition(t, e.get("greedy"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonScopeNotAllowed)
	if !strings.Contains(c.Message, `"admin"`) {
		t.Fatalf("message %q does not name the refused scope", c.Message)
	}
	if n := len(e.issued("cluster-provider-allowlist")); n != 0 {
		t.Fatalf("token requests for refused scopes = %d, want 0", n)
	}

	e.reconcile("narrow")
	issued := e.issued("cluster-provider-allowlist")
	if len(issued) != 1 || strings.Join(issued[0].Scopes, " ") != "audit" {
		t.Fatalf("issued %+v, want one token for scope audit", issued)
	}
}

func TestProviderDeletedWhileInUse(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	p := e.clusterProvider("cluster-provider-deleted", nil)
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.reconcile("app")
	held := e.tokenIn(e.ns, "app")

	if err := k8sClient.Delete(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	e.syncCache(p)
	e.clock.Step(50 * time.Minute) // past the renewal time, before expiry
	e.reconcile("app")

	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound)
	// The consumer keeps a working token.
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if e.tokenIn(e.ns, "app") != held {
		t.Fatal("the valid token was removed when the provider went")
	}
	if n := len(e.issued("cluster-provider-deleted")); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
}

func TestProviderEditedReconcilesEveryObjectUsingIt(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	other := e.ns + "-other"
	e.namespace(other, nil)
	p := e.clusterProvider("cluster-provider-edited", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read", "write", "audit"}}
	})
	e.refToken(e.ns, "a", e.clusterRef(), nil)
	e.refToken(other, "b", e.clusterRef(), nil)
	e.refToken(e.ns, "inline", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: p.Name}, nil)

	want := []string{e.ns + "/a", other + "/b"}
	var got []string
	for _, req := range e.r.tokensOfProvider(e.ctx, v1alpha1.ProviderKindCluster, "", p.Name) {
		got = append(got, req.String())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") && strings.Join(got, ",") != want[1]+","+want[0] {
		t.Fatalf("a provider event queues %v, want %v", got, want)
	}
	got = nil
	for _, req := range e.r.tokensFor(e.ctx, "Secret", types.NamespacedName{Namespace: e.platform, Name: "creds"}) {
		got = append(got, req.String())
	}
	if len(got) != 2 {
		t.Fatalf("an event of the provider's credentials Secret queues %v, want %v", got, want)
	}

	e.reconcile("a")
	e.reconcileIn(e.r, other, "b")
	if n := len(e.issued("cluster-provider-edited")); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
	// The platform team changes the provider's scopes: both objects get
	// a token with the new ones at their next reconcile.
	fresh := &v1alpha1.ClusterOAuthProvider{}
	if err := k8sClient.Get(e.ctx, client.ObjectKeyFromObject(p), fresh); err != nil {
		t.Fatal(err)
	}
	fresh.Spec.Scopes = []string{"audit"}
	if err := k8sClient.Update(e.ctx, fresh); err != nil {
		t.Fatal(err)
	}
	e.syncCache(fresh)
	e.reconcile("a")
	e.reconcileIn(e.r, other, "b")
	issued := e.issued("cluster-provider-edited")
	if len(issued) != 4 || strings.Join(issued[2].Scopes, " ") != "audit" || strings.Join(issued[3].Scopes, " ") != "audit" {
		t.Fatalf("issued %+v, want two more tokens for scope audit", issued)
	}
}

func TestNamespacedProviderServesItsNamespace(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.credsIn(e.ns, "team-creds", "namespaced-provider", "n4mespaced")
	p := &v1alpha1.OAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "idp", Namespace: e.ns},
		Spec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "team-creds"},
		},
	}
	if err := k8sClient.Create(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	e.syncCache(p)
	e.refToken(e.ns, "app", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"}, nil)
	e.refToken(e.ns, "steal", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"}, func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "team-creds", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	e.reconcile("app")
	wantCondition(t, e.get("app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if n := len(e.issued("namespaced-provider")); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	// The credentials Secret is never a target.
	e.reconcile("steal")
	wantCondition(t, e.get("steal"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec)
	if _, ok := e.secret("team-creds").Data["access_token"]; ok {
		t.Fatal("a token was merged into the provider's credentials Secret")
	}
	// The credentials Secret's events reach the objects using it.
	// (steal also names it as its target; the queue folds duplicates).
	queued := map[string]bool{}
	for _, req := range e.r.tokensFor(e.ctx, "Secret", types.NamespacedName{Namespace: e.ns, Name: "team-creds"}) {
		queued[req.Name] = true
	}
	if !queued["app"] || !queued["steal"] || len(queued) != 2 {
		t.Fatalf("an event of the credentials Secret queues %v, want both objects", queued)
	}
}

func TestRequireProviderRef(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{RequireProviderRef: true})
	exempt := e.ns + "-exempt"
	e.namespace(exempt, nil)
	e.r.Providers.Policy.InlineNamespaces = []string{exempt}
	e.createCreds("creds", "require-provider-ref", "r3quire")
	e.createToken("inline", "creds", nil)

	e.reconcile("inline")
	o := e.get("inline")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInlineProviderRefused)
	if n := len(e.issued("require-provider-ref")); n != 0 {
		t.Fatalf("token requests of a refused inline provider = %d, want 0", n)
	}
	// Where inline providers stay allowed, they work.
	e.credsIn(exempt, "creds", "require-provider-ref-exempt", "ex3mpt")
	x := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: "inline", Namespace: exempt},
		Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
			Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
		},
	}
	if err := k8sClient.Create(e.ctx, x); err != nil {
		t.Fatal(err)
	}
	e.syncCache(x)
	e.reconcileIn(e.r, exempt, "inline")
	wantCondition(t, e.getIn(exempt, "inline"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	// And providerRef objects work everywhere.
	e.clusterProvider("require-provider-ref-cluster", nil)
	e.refToken(e.ns, "ref", e.clusterRef(), nil)
	e.reconcile("ref")
	wantCondition(t, e.get("ref"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
}

// sharedPair is a Shared ClusterOAuthProvider and an object using it in
// each of two namespaces.
func sharedPair(t *testing.T, id string, sharing v1alpha1.TokenSharing) (*providerEnv, string) {
	e := newProviderEnv(t, providers.Policy{})
	other := e.ns + "-b"
	e.namespace(other, nil)
	e.clusterProvider(id, func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenSharing = sharing })
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.refToken(other, "app", e.clusterRef(), nil)
	return e, other
}

func TestSharedTokensOneRequestPerLifetime(t *testing.T) {
	e, other := sharedPair(t, "shared-tokens", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	if n := len(e.issued("shared-tokens")); n != 1 {
		t.Fatalf("token requests for two sharing objects = %d, want 1", n)
	}
	first := e.tokenIn(e.ns, "app")
	if e.tokenIn(other, "app") != first {
		t.Fatal("the sharing objects hold different tokens")
	}
	for _, ns := range []string{e.ns, other} {
		wantCondition(t, e.getIn(ns, "app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	}
	// Renewal: one request for both.
	e.clock.Step(41 * time.Minute)
	e.reconcileIn(e.r, other, "app")
	e.reconcile("app")
	if n := len(e.issued("shared-tokens")); n != 2 {
		t.Fatalf("token requests after one renewal = %d, want 2", n)
	}
	second := e.tokenIn(e.ns, "app")
	if second == first || e.tokenIn(other, "app") != second {
		t.Fatal("the sharing objects did not both move to the renewed token")
	}
	// One object goes: the other renews on its own.
	if err := k8sClient.Delete(e.ctx, e.getIn(other, "app")); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(41 * time.Minute)
	e.reconcile("app")
	if n := len(e.issued("shared-tokens")); n != 3 {
		t.Fatalf("token requests after the other object went = %d, want 3", n)
	}
	wantCondition(t, e.get("app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
}

func TestSharedTokensPerObjectByDefault(t *testing.T) {
	e, other := sharedPair(t, "per-object-tokens", "")
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	if n := len(e.issued("per-object-tokens")); n != 2 {
		t.Fatalf("token requests without sharing = %d, want 2", n)
	}
	if e.tokenIn(e.ns, "app") == e.tokenIn(other, "app") {
		t.Fatal("objects share a token without tokenSharing Shared")
	}
}

func TestSharedTokensConcurrentReconcilesMakeOneRequest(t *testing.T) {
	e, other := sharedPair(t, "shared-concurrent", v1alpha1.TokenSharingShared)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, ns := range []string{e.ns, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "app"}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.issued("shared-concurrent")); n != 1 {
		t.Fatalf("token requests of two concurrent reconciles = %d, want 1", n)
	}
}

func TestSharedTokensChangedScopesGetTheirOwn(t *testing.T) {
	e, other := sharedPair(t, "shared-scopes", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	o := e.getIn(other, "app")
	o.Spec.ProviderRef.Scopes = []string{"read"}
	if err := k8sClient.Update(e.ctx, o); err != nil {
		t.Fatal(err)
	}
	e.syncCache(o)
	e.reconcileIn(e.r, other, "app")
	issued := e.issued("shared-scopes")
	if len(issued) != 2 || strings.Join(issued[1].Scopes, " ") != "read" {
		t.Fatalf("issued %+v, want a second token for scope read", issued)
	}
	if e.tokenIn(e.ns, "app") != issued[0].AccessToken {
		t.Fatal("the object whose scopes did not change lost its token")
	}
	e.reconcile("app")
	if n := len(e.issued("shared-scopes")); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
}

func TestSharedTokensAfterRestart(t *testing.T) {
	e, other := sharedPair(t, "shared-restart", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	// A new manager: an empty shared cache.
	restarted := newReconciler(e.r.Client, &oauth.Client{HTTPClient: httpClient, Now: e.clock.Now}, e.recorder, e.clock)
	restarted.Providers = e.r.Providers
	e.reconcileIn(restarted, e.ns, "app")
	e.reconcileIn(restarted, other, "app")
	if n := len(e.issued("shared-restart")); n != 1 {
		t.Fatalf("token requests after a restart = %d, want 1", n)
	}
	// A third object joining after the restart takes the token the others hold.
	third := e.ns + "-c"
	e.namespace(third, nil)
	e.refToken(third, "app", e.clusterRef(), nil)
	e.reconcileIn(restarted, third, "app")
	if n := len(e.issued("shared-restart")); n != 1 {
		t.Fatalf("token requests for an object joining after a restart = %d, want 1", n)
	}
	if e.tokenIn(third, "app") != e.tokenIn(e.ns, "app") {
		t.Fatal("the joining object does not hold the shared token")
	}
}

func TestProviderAdmission(t *testing.T) {
	h := newHarness(t)
	base := func() *v1alpha1.ClusterOAuthProvider {
		return &v1alpha1.ClusterOAuthProvider{
			ObjectMeta: metav1.ObjectMeta{Name: h.ns + "-bad"},
			Spec: v1alpha1.ClusterOAuthProviderSpec{OAuthProviderSpec: v1alpha1.OAuthProviderSpec{
				ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: "https://auth.example.com/token"},
				CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
			}},
		}
	}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.ClusterOAuthProvider)
		want   string
	}{
		{"no URL", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenURL = "" }, "set exactly one of tokenURL and issuerURL"},
		{"http userinfo", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenURL = "https://a:b@auth.example.com/token" }, "must not contain user information"},
		{"no credentials", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.CredentialsRef = nil }, "credentialsRef is required"},
		{"token exchange", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.Grant = v1alpha1.GrantTokenExchange }, "providers support grants ClientCredentials and Password"},
		{"service account assertion", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.AuthMethod = v1alpha1.AuthMethodServiceAccountAssertion }, "providers support grants ClientCredentials and Password"},
		{"unknown sharing", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenSharing = "Sometimes" }, "Unsupported value"},
		{"empty condition", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.Conditions = []v1alpha1.NamespaceCondition{{}} }, "a condition needs a namespaceSelector or namespaces"},
		{"bad namespace name", func(p *v1alpha1.ClusterOAuthProvider) {
			p.Spec.Conditions = []v1alpha1.NamespaceCondition{{Namespaces: []string{"Not_A_Namespace"}}}
		}, "should match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.mutate(p)
			err := k8sClient.Create(h.ctx, p)
			if err == nil {
				_ = k8sClient.Delete(h.ctx, p)
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	// The defaults: PerObject sharing, and the provider defaults inline has.
	p := base()
	if err := k8sClient.Create(h.ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(h.ctx, p) })
	if p.Spec.TokenSharing != v1alpha1.TokenSharingPerObject || p.Spec.Grant != v1alpha1.GrantClientCredentials || p.Spec.AuthMethod != v1alpha1.AuthMethodAuto {
		t.Fatalf("defaults: sharing %q grant %q authMethod %q", p.Spec.TokenSharing, p.Spec.Grant, p.Spec.AuthMethod)
	}
	if p.Status.ObservedGeneration != -1 {
		t.Fatalf("observedGeneration defaults to %d, want -1", p.Status.ObservedGeneration)
	}
	// An OAuthProvider has the same rules (one Go type).
	np := &v1alpha1.OAuthProvider{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: h.ns}, Spec: base().Spec.OAuthProviderSpec}
	np.Spec.IssuerURL = "https://auth.example.com"
	if err := k8sClient.Create(h.ctx, np); err == nil || !strings.Contains(err.Error(), "set exactly one of tokenURL and issuerURL") {
		t.Fatalf("OAuthProvider with tokenURL and issuerURL: %v", err)
	}
}
