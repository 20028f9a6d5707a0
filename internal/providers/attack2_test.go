package providers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// providerRef.scopes: [] (a non-nil empty list, as YAML `scopes: []`
// decodes) passes the allowlist check vacuously and replaces the
// provider's scopes with none: the request then carries no scope
// parameter and the authorization server applies the client's default
// scopes, which the allowlist does not bound.
func TestAttack2_ResolveWithEmptyScopesList(t *testing.T) {
	spec := providerSpec()
	spec.Allowed = &v1alpha1.AllowedRequests{Scopes: []string{"read"}}
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp", Scopes: []string{}})
	res, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", spec, "platform")
	if err == nil && len(res.Spec.Scopes) == 0 {
		t.Fatalf("scopes: [] resolved to a request with no scope at all (provider scopes %v, allowlist %v)", spec.Scopes, spec.Allowed.Scopes)
	}
}

// The same for resources: [] — the provider's pinned resource indicator
// is dropped.
func TestAttack2_ResolveWithEmptyResourcesList(t *testing.T) {
	obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp", Resources: []string{}})
	res, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", providerSpec(), "platform")
	if err == nil && len(res.Spec.Resources) == 0 {
		t.Fatalf("resources: [] resolved to a request with no resource (provider pins %v)", providerSpec().Resources)
	}
}

// An object in the namespace the credentials are read from (the cluster
// provider namespace for a ClusterOAuthProvider) must not target the
// credentials Secret: the refusal is keyed on the kind instead of on the
// namespace.
func TestAttack2_ResolveWithClusterCredentialsAsTarget(t *testing.T) {
	obj := refObj("platform", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: "idp"})
	obj.Spec.Target = &v1alpha1.TargetSpec{Name: "client", CreationPolicy: v1alpha1.CreationPolicyMerge}
	_, err := ResolveWith(obj, v1alpha1.ProviderKindCluster, "idp", "uid-1", providerSpec(), "platform")
	if err == nil {
		t.Fatal("an object in the cluster provider namespace may target the ClusterOAuthProvider's credentials Secret")
	}
	wantReason(t, err, v1alpha1.ReasonInvalidSpec)
}

// The provider's TLS Secrets (CA bundle, client certificate) are not
// protected as targets either.
func TestAttack2_ResolveWithTLSSecretAsTarget(t *testing.T) {
	for _, name := range []string{"ca", "client-cert"} {
		spec := providerSpec()
		spec.TLS = &v1alpha1.TLSSpec{
			CABundle:                   &v1alpha1.CABundleSource{SecretRef: &v1alpha1.KeySelector{Name: "ca"}},
			ClientCertificateSecretRef: &v1alpha1.LocalSecretReference{Name: "client-cert"},
		}
		obj := refObj("team-a", v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindNamespaced, Name: "idp"})
		obj.Spec.Target = &v1alpha1.TargetSpec{Name: name, CreationPolicy: v1alpha1.CreationPolicyMerge}
		if _, err := ResolveWith(obj, v1alpha1.ProviderKindNamespaced, "idp", "uid-1", spec, "team-a"); err == nil {
			t.Errorf("an object may target the OAuthProvider's TLS Secret %s", name)
		}
	}
}

// An empty namespaceSelector selects nothing; a selector on the
// immutable kubernetes.io/metadata.name label is not tenant-forgeable.
func TestAttack2_NamespaceSelectorEdges(t *testing.T) {
	empty := []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{}}}
	if NamespaceAllowed(empty, "team-a", map[string]string{"x": "y"}) == nil {
		t.Fatal("an empty selector selected a namespace")
	}
	bad := []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "In"}}}}}
	if NamespaceAllowed(bad, "team-a", map[string]string{"a": ""}) == nil {
		t.Fatal("an invalid selector selected a namespace")
	}
	// NotIn / DoesNotExist select every namespace without the label: the
	// namespaces' labels decide, whoever can set them.
	notIn := []v1alpha1.NamespaceCondition{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "blocked", Operator: metav1.LabelSelectorOpDoesNotExist}}}}}
	if NamespaceAllowed(notIn, "team-a", nil) != nil {
		t.Fatal("DoesNotExist did not select an unlabelled namespace")
	}
}
