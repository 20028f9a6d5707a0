package token

import (
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/go-logr/logr/funcr"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/logging"
	"github.com/tokensync/tokensync/internal/providers"
)

// --- attack2 helpers ---

// rawToken creates an OAuthClientToken from an unstructured spec, so that
// what the Go types' omitempty would drop (an empty list) reaches the API
// server as a tenant's kubectl apply would send it.
func (e *providerEnv) rawToken(ns, name string, spec map[string]any) {
	e.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "OAuthClientToken",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	if err := k8sClient.Create(e.ctx, u); err != nil {
		e.t.Fatal(err)
	}
	e.syncCache(e.getIn(ns, name))
}

func (e *providerEnv) editClusterProvider(name string, change func(*v1alpha1.ClusterOAuthProvider)) {
	e.t.Helper()
	p := &v1alpha1.ClusterOAuthProvider{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Name: name}, p); err != nil {
		e.t.Fatal(err)
	}
	change(p)
	if err := k8sClient.Update(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
	e.syncCache(p)
}

func (e *providerEnv) editIn(ns, name string, change func(*v1alpha1.OAuthClientToken)) {
	e.t.Helper()
	o := e.getIn(ns, name)
	change(o)
	if err := k8sClient.Update(e.ctx, o); err != nil {
		e.t.Fatal(err)
	}
	e.syncCache(o)
}

func (e *providerEnv) reconcileResult(ns, name string) ctrl.Result {
	e.t.Helper()
	res, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	if err != nil {
		e.t.Fatalf("reconcile %s/%s: %v", ns, name, err)
	}
	o := e.getIn(ns, name)
	e.syncCache(o, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.TargetName(), Namespace: ns}})
	return res
}

func (e *providerEnv) tokenOrEmpty(ns, name string) string {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return ""
		}
		e.t.Fatal(err)
	}
	return string(s.Data["access_token"])
}

// --- allowlists ---

// An empty providerRef.scopes list (scopes: [] in YAML) is not nil: it is
// checked against the allowlist element by element (nothing to refuse)
// and then replaces the provider's scopes, so the request carries no scope
// at all and the authorization server applies the client's default scopes
// (RFC 6749 section 3.3), whatever the provider's allowlist says.
func TestAttack2_EmptyScopesListBypassesAllowlist(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-empty-scopes", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Scopes = []string{"read"}
		p.Spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read"}}
	})
	e.rawToken(e.ns, "app", map[string]any{
		"providerRef": map[string]any{"kind": "ClusterOAuthProvider", "name": e.ns + "-idp", "scopes": []any{}},
	})
	if o := e.get("app"); o.Spec.ProviderRef.Scopes == nil {
		t.Skip("the API server dropped the empty list")
	}
	e.reconcile("app")
	for _, it := range e.issued("attack2-empty-scopes") {
		if strings.Join(it.Scopes, " ") != "read" {
			t.Fatalf("a token was requested with scopes %q, outside the provider's allowlist [read] (the provider's scopes were dropped by providerRef.scopes: [])", strings.Join(it.Scopes, " "))
		}
	}
}

// The same with resources: [] — the request then names no resource (RFC
// 8707), and the token is not bound to the resource the provider pins.
func TestAttack2_EmptyResourcesListBypassesAllowlist(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-empty-resources", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Resources = []string{"https://api.example/payments"}
	})
	e.rawToken(e.ns, "app", map[string]any{
		"providerRef": map[string]any{"kind": "ClusterOAuthProvider", "name": e.ns + "-idp", "resources": []any{}},
	})
	if o := e.get("app"); o.Spec.ProviderRef.Resources == nil {
		t.Skip("the API server dropped the empty list")
	}
	e.reconcile("app")
	for _, it := range e.issued("attack2-empty-resources") {
		if strings.Join(it.Resources, " ") != "https://api.example/payments" {
			t.Fatalf("a token was requested for resources %q, not the provider's pinned resource", it.Resources)
		}
	}
}

// Scopes that differ only in case from an allowed one are refused (scope
// strings are case-sensitive); duplicates of an allowed one are allowed.
func TestAttack2_ScopeCaseAndDuplicates(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-scope-case", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read", "write"}}
	})
	e.refToken(e.ns, "upper", e.clusterRef("READ"), nil)
	e.reconcile("upper")
	wantCondition(t, e.get("upper"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonScopeNotAllowed)
	e.refToken(e.ns, "dup", e.clusterRef("read", "read"), nil)
	e.reconcile("dup")
	for _, it := range e.issued("attack2-scope-case") {
		for _, s := range it.Scopes {
			if s != "read" {
				t.Fatalf("requested scope %q", s)
			}
		}
	}
	// Whitespace cannot be smuggled inside one scope: admission refuses it.
	o := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: "space", Namespace: e.ns},
		Spec:       v1alpha1.OAuthClientTokenSpec{ProviderRef: &v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: e.ns + "-idp", Scopes: []string{"read admin"}}},
	}
	if err := k8sClient.Create(e.ctx, o); err == nil || !apierrors.IsInvalid(err) {
		t.Fatalf("a scope with a space was accepted: %v", err)
	}
}

// An audience the provider does not list is refused; with no audience on
// the provider and no allowlist, none may be asked for.
func TestAttack2_AudienceNotAllowed(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-audience", nil)
	ref := e.clusterRef()
	ref.Audience = "https://admin.example/"
	e.refToken(e.ns, "app", ref, nil)
	e.reconcile("app")
	wantCondition(t, e.get("app"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonScopeNotAllowed)
	if n := len(e.issued("attack2-audience")); n != 0 {
		t.Fatalf("requests = %d", n)
	}
}

// --- confused deputy ---

// An OAuthProvider of namespace A cannot be used from namespace B.
func TestAttack2_OAuthProviderOfAnotherNamespace(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	victim := e.ns + "-victim"
	e.namespace(victim, nil)
	e.credsIn(victim, "team-creds", "attack2-other-ns-provider", "v1ctim")
	p := &v1alpha1.OAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "idp", Namespace: victim},
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
	e.reconcile("app")
	wantCondition(t, e.get("app"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound)
	if n := len(e.issued("attack2-other-ns-provider")); n != 0 {
		t.Fatalf("a tenant obtained %d tokens with another namespace's provider", n)
	}
}

// A namespace that falls out of the selector while a token is held: the
// token stays until it expires, it is not renewed, and once it has
// expired the object is no longer Ready.
func TestAttack2_NamespaceLeavesSelectorWhileTokenHeld(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	tenant := e.ns + "-tenant"
	e.namespace(tenant, map[string]string{"tokensync.io/idp": "allowed"})
	e.clusterProvider("attack2-leaves-selector", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Conditions = []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tokensync.io/idp": "allowed"}}}}
	})
	e.refToken(tenant, "app", e.clusterRef(), nil)
	e.reconcileIn(e.r, tenant, "app")
	held := e.tokenIn(tenant, "app")
	if n := len(e.issued("attack2-leaves-selector")); n != 1 {
		t.Fatalf("requests = %d", n)
	}
	ns := &corev1.Namespace{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Name: tenant}, ns); err != nil {
		t.Fatal(err)
	}
	delete(ns.Labels, "tokensync.io/idp")
	if err := k8sClient.Update(e.ctx, ns); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(50 * time.Minute)
	res := e.reconcileResult(tenant, "app")
	o := e.getIn(tenant, "app")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotAllowed)
	if n := len(e.issued("attack2-leaves-selector")); n != 1 {
		t.Fatalf("renewed after the namespace left the selector: requests = %d", n)
	}
	if e.tokenIn(tenant, "app") != held {
		t.Fatal("the held token was replaced")
	}
	t.Logf("requeue after ProviderNotAllowed with a held token: %v", res.RequeueAfter)
	if res.RequeueAfter == 0 {
		t.Errorf("no requeue: the object will not be looked at again at expiry")
	}
	e.clock.Step(11*time.Minute + time.Second) // past expiry (3600s)
	e.reconcileResult(tenant, "app")
	o = e.getIn(tenant, "app")
	if c := condition(o, v1alpha1.ConditionReady); c == nil || c.Status == metav1.ConditionTrue {
		t.Fatalf("Ready = %+v after the held token expired", c)
	}
}

// A namespace not selected, later selected by the platform team: with no
// watch on Namespaces, does the stalled object ever get looked at again?
func TestAttack2_NamespaceSelectedLaterIsRequeued(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	tenant := e.ns + "-tenant"
	e.namespace(tenant, nil)
	e.clusterProvider("attack2-selected-later", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Conditions = []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tokensync.io/idp": "allowed"}}}}
	})
	e.refToken(tenant, "app", e.clusterRef(), nil)
	res := e.reconcileResult(tenant, "app")
	wantCondition(t, e.getIn(tenant, "app"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotAllowed)
	t.Logf("requeue after ProviderNotAllowed with no token: %v", res.RequeueAfter)
	if res.RequeueAfter == 0 {
		t.Errorf("a ProviderNotAllowed object is never requeued, and Namespaces are not watched: labelling the namespace later does not get it a token until something else touches it")
	}
}

// --- shared tokens ---

// Tenant A forcing a refresh (refresh-requested-at) does not rewrite
// tenant B's Secret, and B keeps a valid token.
func TestAttack2_SharedForceRefreshByOneTenant(t *testing.T) {
	e, other := sharedPair(t, "attack2-shared-force", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	first := e.tokenIn(other, "app")
	for i := 0; i < 3; i++ {
		e.edit("app", func(o *v1alpha1.OAuthClientToken) {
			if o.Annotations == nil {
				o.Annotations = map[string]string{}
			}
			o.Annotations[v1alpha1.RefreshRequestedAnnotation] = string(rune('a' + i))
		})
		e.clock.Step(time.Minute)
		e.reconcile("app")
	}
	t.Logf("requests after 3 forced refreshes by A: %d", len(e.issued("attack2-shared-force")))
	if e.tokenIn(other, "app") != first {
		t.Fatal("tenant A's forced refresh rewrote tenant B's Secret")
	}
	e.reconcileIn(e.r, other, "app")
	wantCondition(t, e.getIn(other, "app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
}

// A namespace dropped from a Shared provider's conditions does not get the
// token renewed by the namespaces still allowed.
func TestAttack2_SharedTokenNotIntoDisallowedNamespace(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	other := e.ns + "-b"
	e.namespace(other, nil)
	p := e.clusterProvider("attack2-shared-disallowed", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.TokenSharing = v1alpha1.TokenSharingShared
		p.Spec.Conditions = []v1alpha1.NamespaceCondition{{Namespaces: []string{e.ns, other}}}
	})
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.refToken(other, "app", e.clusterRef(), nil)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	first := e.tokenIn(other, "app")
	e.editClusterProvider(p.Name, func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Conditions = []v1alpha1.NamespaceCondition{{Namespaces: []string{e.ns}}}
	})
	e.clock.Step(41 * time.Minute)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	if got := e.tokenIn(other, "app"); got != first {
		t.Fatal("the renewed shared token was written into a namespace no longer allowed")
	}
	wantCondition(t, e.getIn(other, "app"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotAllowed)
}

// --- --require-provider-ref ---

// An inline object that holds a token when the flag is turned on keeps it
// until expiry, is refused renewal, and says why.
func TestAttack2_InlineObjectBeforeRequireProviderRef(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.createCreds("creds", "attack2-inline-before", "1nline")
	e.createToken("inline", "creds", nil)
	e.reconcile("inline")
	held := e.tokenIn(e.ns, "inline")
	e.r.Providers.Policy.RequireProviderRef = true
	e.clock.Step(50 * time.Minute)
	e.reconcile("inline")
	o := e.get("inline")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInlineProviderRefused)
	if n := len(e.issued("attack2-inline-before")); n != 1 {
		t.Fatalf("requests = %d, want 1 (no renewal once inline is refused)", n)
	}
	if e.tokenIn(e.ns, "inline") != held {
		t.Fatal("the held token was removed")
	}
}

// Inline -> providerRef -> inline on a live object: each switch obtains a
// token from the right client, exactly one request each.
func TestAttack2_SwitchInlineToProviderRefAndBack(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-switch-cluster", nil)
	e.createCreds("creds", "attack2-switch-inline", "sw1tch")
	e.createToken("app", "creds", nil)
	e.reconcile("app")
	if n := len(e.issued("attack2-switch-inline")); n != 1 {
		t.Fatalf("inline requests = %d", n)
	}
	e.edit("app", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider = v1alpha1.ProviderSpec{}
		o.Spec.CredentialsRef = nil
		ref := e.clusterRef()
		o.Spec.ProviderRef = &ref
	})
	e.reconcile("app")
	cl := e.issued("attack2-switch-cluster")
	if len(cl) != 1 || e.tokenIn(e.ns, "app") != cl[0].AccessToken {
		t.Fatalf("after the switch to providerRef: cluster requests %d, Secret holds the provider's token: %v", len(cl), len(cl) == 1 && e.tokenIn(e.ns, "app") == cl[0].AccessToken)
	}
	wantCondition(t, e.get("app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	e.edit("app", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.ProviderRef = nil
		o.Spec.Provider = v1alpha1.ProviderSpec{TokenURL: tokenURL}
		o.Spec.CredentialsRef = &v1alpha1.CredentialsReference{Name: "creds"}
	})
	e.reconcile("app")
	in := e.issued("attack2-switch-inline")
	if len(in) != 2 || e.tokenIn(e.ns, "app") != in[1].AccessToken {
		t.Fatalf("after the switch back inline: inline requests %d", len(in))
	}
	// Back to providerRef under --require-provider-ref, then inline again: refused.
	e.r.Providers.Policy.RequireProviderRef = true
	e.edit("app", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider = v1alpha1.ProviderSpec{}
		o.Spec.CredentialsRef = nil
		ref := e.clusterRef()
		o.Spec.ProviderRef = &ref
	})
	e.reconcile("app")
	if n := len(e.issued("attack2-switch-cluster")); n != 2 {
		t.Fatalf("cluster requests = %d, want 2", n)
	}
	e.edit("app", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.ProviderRef = nil
		o.Spec.Provider = v1alpha1.ProviderSpec{TokenURL: tokenURL}
		o.Spec.CredentialsRef = &v1alpha1.CredentialsReference{Name: "creds"}
	})
	e.reconcile("app")
	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInlineProviderRefused)
	if n := len(e.issued("attack2-switch-inline")); n != 2 {
		t.Fatalf("inline requests = %d under --require-provider-ref", n)
	}
	if c := condition(o, v1alpha1.ConditionReady); c == nil || c.Status == metav1.ConditionTrue {
		t.Fatalf("Ready = %+v for a refused spec", c)
	}
}

// CEL: exactly one form, including provider: {} next to providerRef.
func TestAttack2_ExactlyOneForm(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	cases := map[string]map[string]any{
		"both": {
			"provider":       map[string]any{"tokenURL": "https://auth.example.com/token"},
			"credentialsRef": map[string]any{"name": "creds"},
			"providerRef":    map[string]any{"kind": "ClusterOAuthProvider", "name": "x"},
		},
		"empty provider and ref": {
			"provider":    map[string]any{},
			"providerRef": map[string]any{"kind": "ClusterOAuthProvider", "name": "x"},
		},
		"ref and credentials": {
			"credentialsRef": map[string]any{"name": "creds"},
			"providerRef":    map[string]any{"kind": "ClusterOAuthProvider", "name": "x"},
		},
		"ref and serviceAccount": {
			"serviceAccount": map[string]any{"name": "sa"},
			"providerRef":    map[string]any{"kind": "ClusterOAuthProvider", "name": "x"},
		},
		"neither": {},
		"bad kind": {
			"providerRef": map[string]any{"kind": "Secret", "name": "x"},
		},
	}
	for name, spec := range cases {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "OAuthClientToken",
			"metadata": map[string]any{"name": "form", "namespace": e.ns}, "spec": spec,
		}}
		if err := k8sClient.Create(e.ctx, u); err == nil {
			_ = k8sClient.Delete(e.ctx, u)
			t.Errorf("%s: accepted", name)
		}
	}
}

// --- provider lifecycle ---

// The provider's credentials Secret removed while a token is held: the
// token stays, renewal fails with CredentialsNotFound.
func TestAttack2_ProviderCredentialsRemoved(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-creds-removed", nil)
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.reconcile("app")
	held := e.tokenIn(e.ns, "app")
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: e.platform}}
	if err := k8sClient.Delete(e.ctx, s); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(50 * time.Minute)
	e.reconcile("app")
	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsNotFound)
	if e.tokenIn(e.ns, "app") != held {
		t.Fatal("the held token was removed")
	}
}

// A ClusterOAuthProvider's credentials Secret lives in the cluster
// provider namespace. An object in that namespace may not target it
// (the refusal exists for OAuthProviders only).
func TestAttack2_ClusterProviderCredentialsAsTarget(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-cluster-creds-target", nil)
	e.refToken(e.platform, "steal", e.clusterRef(), func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "creds", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	if _, err := e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.platform, Name: "steal"}}); err != nil {
		t.Logf("reconcile: %v", err)
	}
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.platform, Name: "creds"}, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Data["access_token"]; ok {
		t.Fatal("a token was merged into the ClusterOAuthProvider's credentials Secret")
	}
	if c := condition(e.getIn(e.platform, "steal"), v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
		t.Fatal("the object targeting the credentials Secret is Ready")
	}
}

// A provider deleted and recreated (another UID, another client): the
// object leaves ProviderNotFound and obtains a token from the new one.
func TestAttack2_ProviderRecreated(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	p := e.clusterProvider("attack2-recreated-1", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenSharing = v1alpha1.TokenSharingShared })
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.reconcile("app")
	if err := k8sClient.Delete(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	e.syncCache(p)
	e.reconcile("app")
	wantCondition(t, e.get("app"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound)
	// Recreated, with rotated credentials (another client id).
	e.credsIn(e.platform, "creds2", "attack2-recreated-2", "r3created")
	np := &v1alpha1.ClusterOAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name},
		Spec: v1alpha1.ClusterOAuthProviderSpec{OAuthProviderSpec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL, Scopes: []string{"read", "write"}},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds2"},
			TokenSharing:   v1alpha1.TokenSharingShared,
		}},
	}
	if err := k8sClient.Create(e.ctx, np); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(e.ctx, np) })
	e.syncCache(np)
	e.reconcile("app")
	o := e.get("app")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if c := condition(o, v1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		t.Fatalf("still Stalled: %+v", c)
	}
	is := e.issued("attack2-recreated-2")
	if len(is) != 1 || e.tokenIn(e.ns, "app") != is[0].AccessToken {
		t.Fatalf("the recreated provider's client issued %d tokens; the Secret holds its token: %v", len(is), len(is) == 1 && e.tokenIn(e.ns, "app") == is[0].AccessToken)
	}
}

// No client secret or access token in any status (object or provider) or
// event, across the provider paths (ok, refused, not found, shared).
func TestAttack2_NoSecretsInStatusOrEvents(t *testing.T) {
	e, other := sharedPair(t, "attack2-leak", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	e.refToken(e.ns, "bad-scope", e.clusterRef("admin"), nil)
	e.reconcile("bad-scope")
	e.refToken(e.ns, "missing", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "no-such"}, nil)
	e.reconcile("missing")
	secrets := []string{"cl:ster/+secret"}
	for _, it := range e.issued("attack2-leak") {
		secrets = append(secrets, it.AccessToken)
	}
	var texts []string
	for _, ns := range []string{e.ns, other} {
		var l v1alpha1.OAuthClientTokenList
		if err := k8sClient.List(e.ctx, &l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			for _, c := range o.Status.Conditions {
				texts = append(texts, c.Message)
			}
			texts = append(texts, o.Status.TokenEndpoint)
		}
	}
	p := &v1alpha1.ClusterOAuthProvider{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Name: e.ns + "-idp"}, p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Status.Conditions {
		texts = append(texts, c.Message)
	}
	texts = append(texts, e.events()...)
	for _, txt := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(txt, s) {
				t.Fatalf("a secret appears in %q", txt)
			}
		}
	}
}

// An inline object refused by --require-provider-ref after its token
// expired is no longer Ready (kstatus must not say Current).
func TestAttack2_RefusedInlineAfterExpiry(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.createCreds("creds", "attack2-refused-expiry", "r3fused")
	e.createToken("inline", "creds", nil)
	e.reconcile("inline")
	e.r.Providers.Policy.RequireProviderRef = true
	e.clock.Step(61 * time.Minute)
	e.reconcile("inline")
	o := e.get("inline")
	if c := condition(o, v1alpha1.ConditionReady); c == nil || c.Status == metav1.ConditionTrue {
		t.Fatalf("Ready = %+v with an expired token", c)
	}
	wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInlineProviderRefused)
}

// credentialsRef has no namespace field: a namespace smuggled into a
// ClusterOAuthProvider's or a tenant OAuthProvider's credentialsRef is
// dropped, and the Secret is read from the cluster provider namespace (or
// the provider's own namespace).
func TestAttack2_CredentialsRefNamespaceIgnored(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	victim := e.ns + "-victim"
	e.namespace(victim, nil)
	e.credsIn(victim, "creds", "attack2-victim-client", "v1ctim")
	e.credsIn(e.platform, "creds", "attack2-platform-client", "pl4tform")
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "ClusterOAuthProvider",
		"metadata": map[string]any{"name": e.ns + "-idp"},
		"spec": map[string]any{
			"tokenURL":       tokenURL,
			"credentialsRef": map[string]any{"name": "creds", "namespace": victim},
		},
	}}
	if err := k8sClient.Create(e.ctx, u); err != nil {
		t.Logf("refused at admission: %v", err)
	} else {
		t.Cleanup(func() { _ = k8sClient.Delete(e.ctx, u) })
		p := &v1alpha1.ClusterOAuthProvider{}
		if err := k8sClient.Get(e.ctx, types.NamespacedName{Name: e.ns + "-idp"}, p); err != nil {
			t.Fatal(err)
		}
		e.syncCache(p)
		e.refToken(e.ns, "app", e.clusterRef(), nil)
		e.reconcile("app")
		if n := len(e.issued("attack2-victim-client")); n != 0 {
			t.Fatalf("the victim namespace's credentials were used %d times", n)
		}
	}
	// A tenant's OAuthProvider naming another namespace's Secret.
	tp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "OAuthProvider",
		"metadata": map[string]any{"name": "mine", "namespace": e.ns},
		"spec": map[string]any{
			"tokenURL":       tokenURL,
			"credentialsRef": map[string]any{"name": "creds", "namespace": victim},
		},
	}}
	if err := k8sClient.Create(e.ctx, tp); err != nil {
		t.Logf("refused at admission: %v", err)
		return
	}
	p := &v1alpha1.OAuthProvider{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "mine"}, p); err != nil {
		t.Fatal(err)
	}
	e.syncCache(p)
	e.refToken(e.ns, "mine", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "mine"}, nil)
	e.reconcile("mine")
	if n := len(e.issued("attack2-victim-client")); n != 0 {
		t.Fatalf("a tenant's OAuthProvider used another namespace's credentials %d times", n)
	}
	wantCondition(t, e.get("mine"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsNotFound)
}

// How many token requests can tenant A make on a Shared provider's client
// (shared with tenant B) by forcing refreshes, without time passing?
func TestAttack2_SharedForcedRefreshBurst(t *testing.T) {
	e, _ := sharedPair(t, "attack2-shared-burst", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	for i := 0; i < 10; i++ {
		e.edit("app", func(o *v1alpha1.OAuthClientToken) {
			if o.Annotations == nil {
				o.Annotations = map[string]string{}
			}
			o.Annotations[v1alpha1.RefreshRequestedAnnotation] = string(rune('a' + i))
		})
		e.reconcile("app")
	}
	n := len(e.issued("attack2-shared-burst"))
	t.Logf("token requests on the shared client after 10 forced refreshes in the same instant: %d", n)
	if n > 3 {
		t.Errorf("one tenant made %d requests on the platform's shared client in one instant (forced refreshes are not rate-limited)", n)
	}
}

// Objects that resolve to the same scopes share one token (docs: "the
// objects that resolve to the same provider, client, grant, scopes,
// audience and resources obtain one token"): asking for nothing, for the
// provider's scopes explicitly, or for them in another order or with a
// duplicate is the same request.
func TestAttack2_SharedKeyIsTheResolvedRequest(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-shared-key", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenSharing = v1alpha1.TokenSharingShared })
	e.refToken(e.ns, "default", e.clusterRef(), nil)
	e.refToken(e.ns, "explicit", e.clusterRef("read", "write"), nil)
	e.refToken(e.ns, "reordered", e.clusterRef("write", "read"), nil)
	for _, n := range []string{"default", "explicit", "reordered"} {
		e.reconcile(n)
	}
	if n := len(e.issued("attack2-shared-key")); n != 1 {
		t.Fatalf("%d token requests for three objects resolving to the same scopes {read, write}, want 1", n)
	}
}

// An object that joins a shared token late renders {{ .ExpiresIn }} as
// the token's whole lifetime, not what is left of it: a consumer that
// reads expires_in relative to the Secret's update believes the token
// lives longer than it does.
func TestAttack2_SharedLateJoinerExpiresIn(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	other := e.ns + "-b"
	e.namespace(other, nil)
	e.clusterProvider("attack2-shared-expiresin", func(p *v1alpha1.ClusterOAuthProvider) { p.Spec.TokenSharing = v1alpha1.TokenSharingShared })
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.reconcile("app")
	e.clock.Step(30 * time.Minute)
	e.refToken(other, "app", e.clusterRef(), func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"expires_in": "{{ .ExpiresIn }}", "token": "{{ .AccessToken }}"}}
	})
	e.reconcileIn(e.r, other, "app")
	if n := len(e.issued("attack2-shared-expiresin")); n != 1 {
		t.Skipf("the late joiner requested its own token (%d requests)", n)
	}
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: other, Name: "app"}, s); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Data["expires_in"]); got != "1800" {
		t.Fatalf("expires_in = %s written 30 minutes after issuance of a 3600 s token, want the 1800 s left", got)
	}
}

// providerRef edited on a live object: kind, name, scopes, each to
// another value and back; every edit obtains one token from the provider
// now named, and the Secret holds it.
func TestAttack2_ProviderRefEditsOnALiveObject(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	e.clusterProvider("attack2-edit-cluster", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read", "write"}}
	})
	e.credsIn(e.ns, "team-creds", "attack2-edit-namespaced", "n4mespaced")
	np := &v1alpha1.OAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-idp", Namespace: e.ns},
		Spec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL, Scopes: []string{"read", "write"}},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "team-creds"},
		},
	}
	if err := k8sClient.Create(e.ctx, np); err != nil {
		t.Fatal(err)
	}
	e.syncCache(np)
	e.refToken(e.ns, "app", e.clusterRef(), nil)
	e.reconcile("app")
	steps := []struct {
		name   string
		change func(*v1alpha1.ProviderReference)
		client string
		scopes string
	}{
		{"to OAuthProvider", func(r *v1alpha1.ProviderReference) { r.Kind = v1alpha1.ProviderKindNamespaced }, "attack2-edit-namespaced", "read write"},
		{"back to ClusterOAuthProvider", func(r *v1alpha1.ProviderReference) { r.Kind = v1alpha1.ProviderKindCluster }, "attack2-edit-cluster", "read write"},
		{"narrow scopes", func(r *v1alpha1.ProviderReference) { r.Scopes = []string{"read"} }, "attack2-edit-cluster", "read"},
		{"scopes back to default", func(r *v1alpha1.ProviderReference) { r.Scopes = nil }, "attack2-edit-cluster", "read write"},
		{"scopes to OAuthProvider narrowed", func(r *v1alpha1.ProviderReference) {
			r.Kind = v1alpha1.ProviderKindNamespaced
			r.Scopes = []string{"write"}
		}, "attack2-edit-namespaced", "write"},
	}
	counts := map[string]int{"attack2-edit-cluster": 1, "attack2-edit-namespaced": 0}
	for _, st := range steps {
		e.edit("app", func(o *v1alpha1.OAuthClientToken) { st.change(o.Spec.ProviderRef) })
		e.reconcile("app")
		counts[st.client]++
		is := e.issued(st.client)
		if len(is) != counts[st.client] {
			t.Fatalf("%s: %s issued %d, want %d", st.name, st.client, len(is), counts[st.client])
		}
		last := is[len(is)-1]
		if e.tokenIn(e.ns, "app") != last.AccessToken || strings.Join(last.Scopes, " ") != st.scopes {
			t.Fatalf("%s: the Secret does not hold %s's new token for %q (got scopes %q)", st.name, st.client, st.scopes, strings.Join(last.Scopes, " "))
		}
		wantCondition(t, e.get("app"), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	}
}

// No client secret or access token in the reconciler's logs at any
// verbosity, through the provider paths: shared, refused, not found,
// credentials missing, token endpoint errors.
func TestAttack2_NoSecretsInLogs(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		lines = append(lines, prefix+" "+args)
		mu.Unlock()
	}, funcr.Options{Verbosity: 10})
	// As cmd/main.go builds it: capped at logging.MaxVerbosity (client-go
	// logs Secret bodies at V(8); uncapped, they show).
	log = logging.Cap(log)
	e, other := sharedPair(t, "attack2-logs", v1alpha1.TokenSharingShared)
	e.ctx = ctrl.LoggerInto(e.ctx, log)
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	e.refToken(e.ns, "bad-scope", e.clusterRef("admin"), nil)
	e.reconcile("bad-scope")
	e.refToken(e.ns, "missing", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "no-such"}, nil)
	e.reconcile("missing")
	// Wrong client secret in the provider's credentials: the endpoint
	// refuses, the error is logged.
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.platform, Name: "creds"}, s); err != nil {
		t.Fatal(err)
	}
	s.Data["client_secret"] = []byte("wr0ng/+secret-value")
	if err := k8sClient.Update(e.ctx, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Secret in the index", func() bool {
		rv, _ := idx.Secret(client.ObjectKeyFromObject(s))
		return rv == s.ResourceVersion
	})
	e.clock.Step(time.Minute)
	_, _ = e.r.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "app"}})
	secretsList := []string{"cl:ster/+secret", "wr0ng/+secret-value"}
	for _, it := range e.issued("attack2-logs") {
		secretsList = append(secretsList, it.AccessToken)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 {
		t.Fatal("no log lines captured")
	}
	for _, l := range lines {
		for _, sec := range secretsList {
			if strings.Contains(l, sec) {
				t.Fatalf("a secret in the log: %s", l)
			}
		}
	}
	t.Logf("%d log lines checked", len(lines))
}

// A provider being deleted (held by a finalizer, deletionTimestamp set)
// is not used: no token request, ProviderNotFound. (Mutation check: the
// deletionTimestamp checks in providers.Resolve had no test.)
func TestAttack2_ProviderBeingDeletedIsNotUsed(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	p := e.clusterProvider("attack2-being-deleted", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Finalizers = []string{"attack2.tokensync.io/hold"}
	})
	e.credsIn(e.ns, "team-creds", "attack2-being-deleted-ns", "d3leting")
	np := &v1alpha1.OAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "idp", Namespace: e.ns, Finalizers: []string{"attack2.tokensync.io/hold"}},
		Spec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "team-creds"},
		},
	}
	if err := k8sClient.Create(e.ctx, np); err != nil {
		t.Fatal(err)
	}
	release := func(o client.Object) {
		_ = k8sClient.Get(e.ctx, client.ObjectKeyFromObject(o), o)
		o.SetFinalizers(nil)
		_ = k8sClient.Update(e.ctx, o)
	}
	t.Cleanup(func() { release(&v1alpha1.ClusterOAuthProvider{ObjectMeta: metav1.ObjectMeta{Name: p.Name}}) })
	t.Cleanup(func() { release(&v1alpha1.OAuthProvider{ObjectMeta: metav1.ObjectMeta{Name: "idp", Namespace: e.ns}}) })
	for _, o := range []client.Object{p, np} {
		if err := k8sClient.Delete(e.ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "deletionTimestamps in the cache", func() bool {
		c, n := &v1alpha1.ClusterOAuthProvider{}, &v1alpha1.OAuthProvider{}
		return mgrClient.Get(e.ctx, client.ObjectKeyFromObject(p), c) == nil && !c.DeletionTimestamp.IsZero() &&
			mgrClient.Get(e.ctx, client.ObjectKeyFromObject(np), n) == nil && !n.DeletionTimestamp.IsZero()
	})
	e.refToken(e.ns, "cluster", e.clusterRef(), nil)
	e.refToken(e.ns, "namespaced", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"}, nil)
	e.reconcile("cluster")
	e.reconcile("namespaced")
	wantCondition(t, e.get("cluster"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound)
	wantCondition(t, e.get("namespaced"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound)
	if n := len(e.issued("attack2-being-deleted")) + len(e.issued("attack2-being-deleted-ns")); n != 0 {
		t.Fatalf("%d tokens obtained from providers being deleted", n)
	}
}

// Two tenants' OAuthProviders, same name, same spec, same client: Shared
// shares within a provider, never across namespaces' providers (the key
// holds the provider's UID). (Mutation check: dropping the UID from the
// shared key had no test.)
func TestAttack2_SharedNamespacedProvidersDoNotShareAcrossNamespaces(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	other := e.ns + "-b"
	e.namespace(other, nil)
	for _, ns := range []string{e.ns, other} {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "team-creds", Namespace: ns},
			Data:       map[string][]byte{"client_id": []byte("attack2-same-client"), "client_secret": []byte("s4me")},
		}
		if err := k8sClient.Create(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		np := &v1alpha1.OAuthProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "idp", Namespace: ns},
			Spec: v1alpha1.OAuthProviderSpec{
				ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: tokenURL},
				CredentialsRef: &v1alpha1.CredentialsReference{Name: "team-creds"},
				TokenSharing:   v1alpha1.TokenSharingShared,
			},
		}
		if err := k8sClient.Create(e.ctx, np); err != nil {
			t.Fatal(err)
		}
		e.syncCache(np)
		e.refToken(ns, "app", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"}, nil)
	}
	tokenSrv.RegisterClient("attack2-same-client", "s4me")
	e.reconcile("app")
	e.reconcileIn(e.r, other, "app")
	if n := len(e.issued("attack2-same-client")); n != 2 {
		t.Fatalf("%d token requests for two namespaces' own providers, want 2 (one each)", n)
	}
	if e.tokenIn(e.ns, "app") == e.tokenIn(other, "app") {
		t.Fatal("two namespaces' OAuthProviders shared a token")
	}
}

// A forced refresh on a Shared provider obtains a new token for the
// object that asked. (Mutation check: serving the cached token despite
// refresh-requested-at had no test.)
func TestAttack2_SharedForcedRefreshGetsANewToken(t *testing.T) {
	e, _ := sharedPair(t, "attack2-shared-forced-new", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	before := e.tokenIn(e.ns, "app")
	e.edit("app", func(o *v1alpha1.OAuthClientToken) {
		o.Annotations = map[string]string{v1alpha1.RefreshRequestedAnnotation: "now"}
	})
	e.clock.Step(time.Minute)
	e.reconcile("app")
	if n := len(e.issued("attack2-shared-forced-new")); n != 2 {
		t.Fatalf("token requests after a forced refresh = %d, want 2", n)
	}
	if e.tokenIn(e.ns, "app") == before {
		t.Fatal("a forced refresh on a Shared provider kept the old token")
	}
}

// After a restart, an object with target.data templates joining a Shared
// token does not take the token seeded from another object's Secret
// (which has no scope or ID token): its templates render the endpoint's
// answer. (Mutation check: the seeded/templates guard had no test.)
func TestAttack2_SharedSeededTokenNotForTemplates(t *testing.T) {
	e, _ := sharedPair(t, "attack2-shared-seeded-tpl", v1alpha1.TokenSharingShared)
	e.reconcile("app")
	restarted := newReconciler(e.r.Client, e.r.Tokens, e.recorder, e.clock)
	restarted.Providers = e.r.Providers
	e.reconcileIn(restarted, e.ns, "app") // seeds the shared cache
	third := e.ns + "-tpl"
	e.namespace(third, nil)
	e.refToken(third, "app", e.clusterRef(), func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"token": "{{ .AccessToken }}", "scope": "{{ .Scope }}"}}
	})
	e.reconcileIn(restarted, third, "app")
	s := &corev1.Secret{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: third, Name: "app"}, s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["scope"]) != "read write" {
		t.Fatalf("scope rendered %q for a templated object joining after a restart, want the endpoint's \"read write\"", s.Data["scope"])
	}
}

// With --require-provider-ref, an inline object in the cluster provider
// namespace (not in --inline-provider-namespaces) cannot name a
// ClusterOAuthProvider's credentials Secret and send it to an endpoint of
// its choice. (Listing that namespace in --inline-provider-namespaces, or
// running without the flag, opens exactly this: see the report.)
func TestAttack2_InlineInClusterProviderNamespace(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{RequireProviderRef: true})
	e.clusterProvider("attack2-platform-creds", nil)
	x := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: "exfil", Namespace: e.platform},
		Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
			Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
		},
	}
	if err := k8sClient.Create(e.ctx, x); err != nil {
		t.Fatal(err)
	}
	e.syncCache(x)
	e.reconcileIn(e.r, e.platform, "exfil")
	wantCondition(t, e.getIn(e.platform, "exfil"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInlineProviderRefused)
	if n := len(e.issued("attack2-platform-creds")); n != 0 {
		t.Fatalf("the platform's client credentials were sent %d times by an inline object", n)
	}
	// Listed in --inline-provider-namespaces: the credentials go wherever
	// the object says.
	e.r.Providers.Policy.InlineNamespaces = []string{e.platform}
	e.edit2(e.platform, "exfil")
	e.reconcileIn(e.r, e.platform, "exfil")
	t.Logf("with the cluster provider namespace in --inline-provider-namespaces: %d requests with the platform's client", len(e.issued("attack2-platform-creds")))
}

func (e *providerEnv) edit2(ns, name string) {
	e.t.Helper()
	e.editIn(ns, name, func(o *v1alpha1.OAuthClientToken) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = "again"
	})
}

var _ = client.ObjectKeyFromObject
