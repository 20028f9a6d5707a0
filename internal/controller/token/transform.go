package token

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// lastApplied is the annotation kubectl apply keeps a whole copy of the
// object in; the reconciler never reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// slimObject is the manager cache's transform: it drops what the
// reconciler never reads (managed fields, kubectl's last-applied copy of
// the object) and makes the strings every cached object repeats (its
// namespace, label and annotation keys, owner kinds, condition types and
// reasons, token URLs) share one copy, so that a cached object costs its
// own data only.
func slimObject(in any) (any, error) {
	switch o := in.(type) {
	case *v1alpha1.OAuthClientToken:
		slimMeta(&o.ObjectMeta)
		o.Spec.Provider.TokenURL = intern(o.Spec.Provider.TokenURL)
		o.Spec.Provider.IssuerURL = intern(o.Spec.Provider.IssuerURL)
		if o.Spec.CredentialsRef != nil {
			o.Spec.CredentialsRef.Name = intern(o.Spec.CredentialsRef.Name)
		}
		for i := range o.Status.Conditions {
			c := &o.Status.Conditions[i]
			c.Type, c.Reason, c.Status = intern(c.Type), intern(c.Reason), metav1.ConditionStatus(intern(string(c.Status)))
		}
		o.Status.SecretName = intern(o.Status.SecretName)
	case *corev1.Secret:
		slimMeta(&o.ObjectMeta)
		o.Type = corev1.SecretType(intern(string(o.Type)))
		if len(o.Data) > 0 {
			data := make(map[string][]byte, len(o.Data))
			for k, v := range o.Data {
				data[intern(k)] = v
			}
			o.Data = data
		}
	case metav1.Object:
		if o.GetManagedFields() != nil {
			o.SetManagedFields(nil)
		}
	}
	return in, nil
}

func slimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	delete(m.Annotations, lastApplied)
	m.Namespace = intern(m.Namespace)
	m.GenerateName = intern(m.GenerateName)
	m.Labels = internMap(m.Labels, true)
	m.Annotations = internMap(m.Annotations, false)
	for i := range m.OwnerReferences {
		r := &m.OwnerReferences[i]
		r.APIVersion, r.Kind = intern(r.APIVersion), intern(r.Kind)
	}
	for i, f := range m.Finalizers {
		m.Finalizers[i] = intern(f)
	}
}

// internMap returns m with interned keys (and values, when values). A nil
// or empty map is returned as is: the reconciler compares them.
func internMap(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = intern(v)
		}
		out[intern(k)] = v
	}
	return out
}

func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
