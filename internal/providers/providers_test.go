package providers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	got, stalled, ok := failure.ReasonOf(err)
	if !ok || !stalled || got != reason {
		t.Fatalf("error %v: reason %q (stalled %v), want Stalled %s", err, got, stalled, reason)
	}
}

func refObj(ns string, ref v1alpha1.ProviderReference) *v1alpha1.OAuthClientToken {
	return &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec:       v1alpha1.OAuthClientTokenSpec{ProviderRef: &ref},
	}
}

func providerSpec() *v1alpha1.OAuthProviderSpec {
	return &v1alpha1.OAuthProviderSpec{
		ProviderSpec: v1alpha1.ProviderSpec{
			TokenURL:  "https://idp.example.com/token",
			Scopes:    []string{"read", "write"},
			Audience:  "api",
			Resources: []string{"https://api.example.com/"},
		},
		CredentialsRef: &v1alpha1.CredentialsReference{Name: "client"},
	}
}

func TestResolveWithDefaultsToTheProvidersRequest(t *testing.T) {
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"})
	res, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", providerSpec(), "platform")
	if err != nil {
		t.Fatal(err)
	}
	if res.Namespace != "platform" || res.CredentialsRef.Name != "client" || res.Sharing != v1alpha1.TokenSharingPerObject {
		t.Fatalf("resolved %+v", res)
	}
	if len(res.Spec.Scopes) != 2 || res.Spec.Audience != "api" || res.Spec.TokenURL != "https://idp.example.com/token" {
		t.Fatalf("spec %+v", res.Spec)
	}
}

func TestResolveWithNarrowsScopesWithinTheDefaultAllowlist(t *testing.T) {
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp", Scopes: []string{"read"}})
	res, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", providerSpec(), "platform")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Spec.Scopes) != 1 || res.Spec.Scopes[0] != "read" {
		t.Fatalf("scopes %v, want [read]", res.Spec.Scopes)
	}
}

func TestResolveWithRefusesWhatTheProviderDoesNotAllow(t *testing.T) {
	for name, ref := range map[string]v1alpha1.ProviderReference{
		"scope":    {Scopes: []string{"read", "admin"}},
		"audience": {Audience: "other"},
		"resource": {Resources: []string{"https://evil.example.com/"}},
	} {
		t.Run(name, func(t *testing.T) {
			ref.Kind, ref.Name = v1alpha1.ProviderKindCluster, "idp"
			_, err := ResolveWith(refObj("team-a", ref), v1alpha1.ProviderKindCluster, "idp", "uid-1", providerSpec(), "platform")
			wantReason(t, err, v1alpha1.ReasonScopeNotAllowed)
		})
	}
}

func TestResolveWithAllowsTheExplicitAllowlist(t *testing.T) {
	spec := providerSpec()
	spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read", "admin"}, Audiences: []string{"api", "other"}}
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp", Scopes: []string{"admin"}, Audience: "other"})
	res, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", spec, "platform")
	if err != nil {
		t.Fatal(err)
	}
	if res.Spec.Scopes[0] != "admin" || res.Spec.Audience != "other" {
		t.Fatalf("spec %+v", res.Spec)
	}
	// The provider's own scope "write" is not in the explicit list.
	obj.Spec.ProviderRef.Scopes = []string{"write"}
	_, err = ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", spec, "platform")
	wantReason(t, err, v1alpha1.ReasonScopeNotAllowed)
}

func TestResolveWithRefusesTheCredentialsSecretAsTarget(t *testing.T) {
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"})
	obj.Spec.Target = &v1alpha1.TargetSpec{Name: "client"}
	_, err := ResolveWith(obj, v1alpha1.ProviderKindNamespaced, "idp", "uid-1", providerSpec(), "team-a")
	wantReason(t, err, v1alpha1.ReasonInvalidSpec)
}

func TestNamespaceAllowed(t *testing.T) {
	conds := []v1alpha1.NamespaceCondition{
		{Namespaces: []string{"team-a"}},
		{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tokensync/idp": "yes"}}},
	}
	cases := []struct {
		ns     string
		labels map[string]string
		ok     bool
	}{
		{"team-a", nil, true},
		{"team-b", map[string]string{"tokensync/idp": "yes"}, true},
		{"team-c", map[string]string{"tokensync/idp": "no"}, false},
		{"team-d", nil, false},
	}
	for _, c := range cases {
		if err := NamespaceAllowed(conds, c.ns, c.labels); (err == nil) != c.ok {
			t.Errorf("%s %v: allowed = %v, want %v", c.ns, c.labels, err == nil, c.ok)
		}
	}
	if err := NamespaceAllowed(nil, "anything", nil); err != nil {
		t.Errorf("no conditions: %v", err)
	}
	// An empty selector selects nothing, rather than everything.
	empty := []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{}}}
	if err := NamespaceAllowed(empty, "team-a", map[string]string{"a": "b"}); err == nil {
		t.Error("an empty namespaceSelector allowed a namespace")
	}
}

func TestPolicyRefusesInlineProviders(t *testing.T) {
	inline := &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "x"}}
	if err := (Policy{}).CheckInline(inline); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	p := Policy{RequireProviderRef: true, InlineNamespaces: []string{"platform"}}
	wantReason(t, p.CheckInline(inline), v1alpha1.ReasonInlineProviderRefused)
	inline.Namespace = "platform"
	if err := p.CheckInline(inline); err != nil {
		t.Fatalf("exempt namespace: %v", err)
	}
	if err := p.CheckInline(refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"})); err != nil {
		t.Fatalf("providerRef: %v", err)
	}
}

func TestResolverFetchesAndChecks(t *testing.T) {
	s := runtime.NewScheme()
	_ = v1alpha1.AddToScheme(s)
	_ = corev1.AddToScheme(s)
	cp := &v1alpha1.ClusterOAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "idp", UID: "u1"},
		Spec: v1alpha1.ClusterOAuthProviderSpec{
			OAuthProviderSpec: *providerSpec(),
			Conditions:        []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"idp": "yes"}}}},
		},
	}
	np := &v1alpha1.OAuthProvider{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "team-a", UID: "u2"}, Spec: *providerSpec()}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(cp, np,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"idp": "yes"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
	).Build()
	r := &Resolver{Client: c, API: c, Policy: Policy{ClusterNamespace: "platform"}}
	ctx := context.Background()

	res, err := r.Resolve(ctx, refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"}))
	if err != nil || res.UID != "u1" || res.Namespace != "platform" {
		t.Fatalf("cluster provider: %+v, %v", res, err)
	}
	_, err = r.Resolve(ctx, refObj("team-b", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"}))
	wantReason(t, err, v1alpha1.ReasonProviderNotAllowed)
	_, err = r.Resolve(ctx, refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "gone"}))
	wantReason(t, err, v1alpha1.ReasonProviderNotFound)

	res, err = r.Resolve(ctx, refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "local"}))
	if err != nil || res.UID != "u2" || res.Namespace != "team-a" {
		t.Fatalf("namespaced provider: %+v, %v", res, err)
	}
	// An OAuthProvider serves its own namespace only.
	_, err = r.Resolve(ctx, refObj("team-b", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "local"}))
	wantReason(t, err, v1alpha1.ReasonProviderNotFound)

	r.Policy.NoClusterProviders = true
	_, err = r.Resolve(ctx, refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"}))
	wantReason(t, err, v1alpha1.ReasonProviderNotAllowed)

	var _ client.Reader = c
}
