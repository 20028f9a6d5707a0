package token

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/intern"
	"github.com/tokensync/tokensync/internal/secrets"
)

// lastApplied is the annotation kubectl apply keeps a whole copy of the
// object in; the reconciler never reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// ownAnnotations is the prefix of the annotations tokensync reads on an
// OAuthClientToken (oauth.tokensync.io/refresh-requested-at); a cached
// OAuthClientToken keeps no other.
const ownAnnotations = "oauth.tokensync.io/"

// slimObject is the manager cache's transform: it drops what the
// reconciler never reads, managed fields and kubectl's last-applied copy
// of the object (as large as the object itself for objects applied with
// kubectl apply), an OAuthClientToken's annotations but tokensync's own
// (Helm's, Argo CD's, a tenant's: a change to them is not a reason to
// reconcile, and every write of an OAuthClientToken is a merge patch of
// what changed, which leaves them as they are), and shares one copy of
// the strings that repeat from one object to the next (intern.Shared):
// namespaces, labels, annotation keys, Secret types, condition types and
// reasons, token URLs. A Secret's annotations, data, UID and owner
// references are not shared but folded into one allocation (secrets.Fold).
func slimObject(in any) (any, error) {
	return slimWith(intern.Shared, in), nil
}

func slimWith(t *intern.Table, in any) any {
	o, ok := in.(metav1.Object)
	if !ok {
		return in
	}
	if o.GetManagedFields() != nil {
		o.SetManagedFields(nil)
	}
	// A Secret's annotations and owner references go into its fold
	// (below): sharing their strings first would be work for nothing.
	_, secret := in.(*corev1.Secret)
	a := o.GetAnnotations()
	if a != nil {
		if _, ok := a[lastApplied]; ok {
			delete(a, lastApplied)
		}
		if _, ok := in.(*v1alpha1.OAuthClientToken); ok {
			a = own(a)
		}
		if !secret {
			o.SetAnnotations(t.Map(a, false))
		}
	}
	o.SetNamespace(t.String(o.GetNamespace()))
	if l := o.GetLabels(); l != nil {
		o.SetLabels(t.SharedMap(l))
	}
	if !secret {
		refs := o.GetOwnerReferences()
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind = t.String(refs[i].APIVersion), t.String(refs[i].Kind)
		}
	}
	switch x := in.(type) {
	case *corev1.Secret:
		// Annotations, data, UID and owner references folded into one
		// allocation: read, the one reader of cached Secrets, unfolds them
		// (secrets.Fold).
		secrets.Fold(x)
		x.Type = corev1.SecretType(t.String(string(x.Type)))
	case *v1alpha1.OAuthClientToken:
		x.APIVersion, x.Kind = t.String(x.APIVersion), t.String(x.Kind)
		p := &x.Spec.Provider
		p.TokenURL, p.IssuerURL = t.String(p.TokenURL), t.String(p.IssuerURL)
		if c := x.Spec.CredentialsRef; c != nil {
			c.Name, c.ClientIDKey, c.ClientSecretKey = t.String(c.Name), t.String(c.ClientIDKey), t.String(c.ClientSecretKey)
		}
		st := &x.Status
		st.TokenEndpoint, st.LastGrant, st.TokenType, st.IssuedTokenType = t.String(st.TokenEndpoint), t.String(st.LastGrant), t.String(st.TokenType), t.String(st.IssuedTokenType)
		for i := range st.Scopes {
			st.Scopes[i] = t.String(st.Scopes[i])
		}
		for i := range st.Conditions {
			c := &st.Conditions[i]
			c.Type, c.Reason, c.Status = t.String(c.Type), t.String(c.Reason), metav1.ConditionStatus(t.String(string(c.Status)))
		}
	}
	return in
}

// own deletes from a every annotation but tokensync's own, in place (as
// the transform deletes the last-applied copy; t.Map copies what is left),
// and returns a, or nil when it deleted every one.
func own(a map[string]string) map[string]string {
	if len(a) == 0 {
		return a
	}
	for k := range a {
		if !strings.HasPrefix(k, ownAnnotations) {
			delete(a, k)
		}
	}
	if len(a) == 0 {
		return nil
	}
	return a
}
