// Package providers resolves an OAuthClientToken's spec.providerRef to the
// provider spec, credentials and TLS namespace its token is obtained with,
// applying the provider's namespace conditions and request allowlist and
// the manager's --require-provider-ref policy. Errors are typed
// (failure.Stalled) with the condition reason to report.
package providers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/inputs"
)

// Resolved is what an OAuthClientToken's token is obtained with.
type Resolved struct {
	// Kind and Name identify the provider; UID tells a re-created one
	// apart.
	Kind v1alpha1.ProviderKind
	Name string
	UID  types.UID
	// Spec is the provider spec with the object's scopes, audience and
	// resources applied.
	Spec v1alpha1.ProviderSpec
	// CredentialsRef is the provider's credentials Secret, in Namespace.
	CredentialsRef *v1alpha1.CredentialsReference
	// Namespace is where the credentials Secret and the TLS material are
	// read: the provider's namespace, or the cluster provider namespace.
	Namespace string
	Sharing   v1alpha1.TokenSharing
}

// Shared reports whether the provider shares tokens between objects.
func (r *Resolved) Shared() bool { return r != nil && r.Sharing == v1alpha1.TokenSharingShared }

// Policy is the manager's policy on providers.
type Policy struct {
	// RequireProviderRef refuses inline providers, except in
	// InlineNamespaces.
	RequireProviderRef bool
	InlineNamespaces   []string
	// ClusterNamespace is where ClusterOAuthProviders' credentials live.
	ClusterNamespace string
	// NoClusterProviders is set when the manager does not serve
	// ClusterOAuthProviders (it watches only some namespaces).
	NoClusterProviders bool
}

// InlineAllowed reports whether an inline provider may be used in ns.
func (p Policy) InlineAllowed(ns string) bool {
	return !p.RequireProviderRef || slices.Contains(p.InlineNamespaces, ns)
}

// CheckInline refuses an inline provider where the policy does.
func (p Policy) CheckInline(obj *v1alpha1.OAuthClientToken) error {
	if obj.Spec.ProviderRef != nil || p.InlineAllowed(obj.Namespace) {
		return nil
	}
	return failure.NewStalled(v1alpha1.ReasonInlineProviderRefused,
		"this manager requires spec.providerRef in namespace %s (--require-provider-ref): inline spec.provider and credentialsRef are refused; reference an OAuthProvider or ClusterOAuthProvider", obj.Namespace)
}

// Resolver fetches providers and namespaces.
type Resolver struct {
	// Client reads providers (the manager's cache).
	Client client.Reader
	// API reads Namespaces directly, when a condition has a selector.
	API    client.Reader
	Policy Policy
}

// Resolve returns what obj's token is obtained with: nil for an inline
// provider the policy allows.
func (r *Resolver) Resolve(ctx context.Context, obj *v1alpha1.OAuthClientToken) (*Resolved, error) {
	if err := r.Policy.CheckInline(obj); err != nil {
		return nil, err
	}
	ref := obj.Spec.ProviderRef
	if ref == nil {
		return nil, nil
	}
	switch ref.Kind {
	case v1alpha1.ProviderKindNamespaced:
		p := &v1alpha1.OAuthProvider{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, p); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, notFound(ref)
			}
			return nil, fmt.Errorf("reading OAuthProvider %s: %w", ref.Name, err)
		}
		if !p.DeletionTimestamp.IsZero() {
			return nil, notFound(ref)
		}
		return ResolveWith(obj, ref.Kind, p.Name, p.UID, &p.Spec, obj.Namespace)
	case v1alpha1.ProviderKindCluster:
		if r.Policy.NoClusterProviders {
			return nil, failure.NewStalled(v1alpha1.ReasonProviderNotAllowed,
				"this manager watches only some namespaces (--watch-namespaces) and does not serve ClusterOAuthProviders; reference an OAuthProvider")
		}
		p := &v1alpha1.ClusterOAuthProvider{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: ref.Name}, p); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, notFound(ref)
			}
			return nil, fmt.Errorf("reading ClusterOAuthProvider %s: %w", ref.Name, err)
		}
		if !p.DeletionTimestamp.IsZero() {
			return nil, notFound(ref)
		}
		var nsLabels map[string]string
		if needsLabels(p.Spec.Conditions) {
			ns := &corev1.Namespace{}
			if err := r.API.Get(ctx, types.NamespacedName{Name: obj.Namespace}, ns); err != nil {
				return nil, fmt.Errorf("reading Namespace %s: %w", obj.Namespace, err)
			}
			nsLabels = ns.Labels
		}
		if err := NamespaceAllowed(p.Spec.Conditions, obj.Namespace, nsLabels); err != nil {
			return nil, failure.NewStalled(v1alpha1.ReasonProviderNotAllowed, "ClusterOAuthProvider %s may not be used from namespace %s: %v", p.Name, obj.Namespace, err)
		}
		return ResolveWith(obj, ref.Kind, p.Name, p.UID, &p.Spec.OAuthProviderSpec, r.Policy.ClusterNamespace)
	}
	return nil, failure.NewStalled(v1alpha1.ReasonInvalidSpec, "providerRef.kind %q is not OAuthProvider or ClusterOAuthProvider", ref.Kind)
}

func notFound(ref *v1alpha1.ProviderReference) error {
	return failure.NewStalled(v1alpha1.ReasonProviderNotFound, "%s %s not found", ref.Kind, ref.Name)
}

func needsLabels(conds []v1alpha1.NamespaceCondition) bool {
	for _, c := range conds {
		if c.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// NamespaceAllowed says whether ns (with labels nsLabels) matches one of
// the conditions; no conditions allow every namespace.
func NamespaceAllowed(conds []v1alpha1.NamespaceCondition, ns string, nsLabels map[string]string) error {
	if len(conds) == 0 {
		return nil
	}
	for _, c := range conds {
		if slices.Contains(c.Namespaces, ns) {
			return nil
		}
		if c.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
			if err != nil {
				return fmt.Errorf("invalid namespaceSelector: %v", err)
			}
			if !sel.Empty() && sel.Matches(labels.Set(nsLabels)) {
				return nil
			}
		}
	}
	return fmt.Errorf("the namespace matches none of its conditions")
}

// ResolveWith applies obj's providerRef to a provider spec: the scopes,
// audience and resources asked for must be within what the provider
// allows. ns is where the credentials and TLS material are read.
func ResolveWith(obj *v1alpha1.OAuthClientToken, kind v1alpha1.ProviderKind, name string, uid types.UID, spec *v1alpha1.OAuthProviderSpec, ns string) (*Resolved, error) {
	ref := obj.Spec.ProviderRef
	eff := *spec.ProviderSpec.DeepCopy()
	allowed := v1alpha1.AllowedRequests{}
	if spec.Allowed != nil {
		allowed = *spec.Allowed
	}
	if allowed.Scopes == nil {
		allowed.Scopes = eff.Scopes
	}
	if allowed.Audiences == nil && eff.Audience != "" {
		allowed.Audiences = []string{eff.Audience}
	}
	if allowed.Resources == nil {
		allowed.Resources = eff.Resources
	}
	// An empty list asks for nothing more than an unset one: it must not
	// drop the provider's scopes or resources, which would let the server
	// grant its defaults, wider than the allowlist.
	if len(ref.Scopes) > 0 {
		if bad := outside(ref.Scopes, allowed.Scopes); len(bad) > 0 {
			return nil, failure.NewStalled(v1alpha1.ReasonScopeNotAllowed, "%s %s does not allow scopes %s (allowed: %s)", kind, name, quoteAll(bad), quoteAll(allowed.Scopes))
		}
		eff.Scopes = slices.Clone(ref.Scopes)
	}
	if ref.Audience != "" {
		if !slices.Contains(allowed.Audiences, ref.Audience) {
			return nil, failure.NewStalled(v1alpha1.ReasonScopeNotAllowed, "%s %s does not allow audience %q (allowed: %s)", kind, name, ref.Audience, quoteAll(allowed.Audiences))
		}
		eff.Audience = ref.Audience
	}
	if len(ref.Resources) > 0 {
		if bad := outside(ref.Resources, allowed.Resources); len(bad) > 0 {
			return nil, failure.NewStalled(v1alpha1.ReasonScopeNotAllowed, "%s %s does not allow resources %s (allowed: %s)", kind, name, quoteAll(bad), quoteAll(allowed.Resources))
		}
		eff.Resources = slices.Clone(ref.Resources)
	}
	if ns == obj.Namespace {
		// The provider reads its Secrets where the object writes: none of
		// them may be the target (its credentials, CA bundle or client
		// certificate would take the token, or be overwritten).
		for _, s := range readSecrets(spec) {
			if s == obj.TargetName() {
				return nil, failure.NewStalled(v1alpha1.ReasonInvalidSpec, "the target Secret %s is a Secret %s %s reads (its credentials or TLS material); choose another target.name", s, kind, name)
			}
		}
	}
	sharing := spec.TokenSharing
	if sharing == "" {
		sharing = v1alpha1.TokenSharingPerObject
	}
	// Scopes and resources are sets: one order, no repeats, so that
	// objects asking the same in other words make the same request.
	eff.Scopes, eff.Resources = set(eff.Scopes), set(eff.Resources)
	var creds *v1alpha1.CredentialsReference
	if spec.CredentialsRef != nil {
		creds = spec.CredentialsRef.DeepCopy()
	}
	return &Resolved{Kind: kind, Name: name, UID: uid, Spec: eff, CredentialsRef: creds, Namespace: ns, Sharing: sharing}, nil
}

// set sorts ss and drops repeats (nil stays nil).
func set(ss []string) []string {
	if ss == nil {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(ss)))
}

// readSecrets names the Secrets a provider reads: those an inline object
// with its spec and credentials would read.
func readSecrets(spec *v1alpha1.OAuthProviderSpec) []string {
	as := &v1alpha1.OAuthClientToken{Spec: v1alpha1.OAuthClientTokenSpec{Provider: spec.ProviderSpec, CredentialsRef: spec.CredentialsRef}}
	var names []string
	for _, ref := range inputs.Refs(as) {
		if ref.Kind == inputs.SecretKind {
			names = append(names, ref.Name)
		}
	}
	return names
}

func outside(asked, allowed []string) []string {
	var bad []string
	for _, a := range asked {
		if !slices.Contains(allowed, a) {
			bad = append(bad, a)
		}
	}
	return bad
}

func quoteAll(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// RefIndexValue is the value of the providerRef field index for obj: the
// kind and name of its provider, "" when it has none.
func RefIndexValue(obj *v1alpha1.OAuthClientToken) string {
	if ref := obj.Spec.ProviderRef; ref != nil {
		return string(ref.Kind) + "/" + ref.Name
	}
	return ""
}

// Refs lists the Secrets and ConfigMaps a provider spec reads its inputs
// from ("Secret/name", "ConfigMap/name"), in its credentials namespace.
func Refs(spec *v1alpha1.OAuthProviderSpec) []string {
	var out []string
	if c := spec.CredentialsRef; c != nil {
		out = append(out, "Secret/"+c.Name)
	}
	if t := spec.TLS; t != nil {
		if ca := t.CABundle; ca != nil {
			if ca.SecretRef != nil {
				out = append(out, "Secret/"+ca.SecretRef.Name)
			}
			if ca.ConfigMapRef != nil {
				out = append(out, "ConfigMap/"+ca.ConfigMapRef.Name)
			}
		}
		if c := t.ClientCertificateSecretRef; c != nil {
			out = append(out, "Secret/"+c.Name)
		}
	}
	return out
}
