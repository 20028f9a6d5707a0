package token

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/secrets"
)

// TestSlimObject: the cache keeps no managed fields, no last-applied copy
// and no annotation of an OAuthClientToken but tokensync's own, and every
// other field as it was.
func TestSlimObject(t *testing.T) {
	o := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "team-a", Name: "tok",
			Annotations: map[string]string{lastApplied: `{"big":"copy"}`, "example.com/note": "x", "meta.helm.sh/release-name": "r",
				v1alpha1.RefreshRequestedAnnotation: "2026-12-03T00:00:00Z"},
			Labels:        map[string]string{"app": "payments"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Finalizers:    []string{Finalizer},
		},
		Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
			Provider:       v1alpha1.ProviderSpec{TokenURL: "https://auth.example.com/token"},
		},
	}
	if _, err := slimObject(o); err != nil {
		t.Fatal(err)
	}
	if o.ManagedFields != nil {
		t.Errorf("managed fields kept: %v", o.ManagedFields)
	}
	if _, ok := o.Annotations[lastApplied]; ok {
		t.Error("the last-applied copy was kept")
	}
	if len(o.Annotations) != 1 || o.Annotations[v1alpha1.RefreshRequestedAnnotation] != "2026-12-03T00:00:00Z" {
		t.Errorf("annotations = %v, want only %s", o.Annotations, v1alpha1.RefreshRequestedAnnotation)
	}
	o.Annotations = map[string]string{"example.com/note": "x"}
	slimObject(o)
	if o.Annotations != nil {
		t.Errorf("annotations = %v, want none", o.Annotations)
	}
	if o.Labels["app"] != "payments" || o.Finalizers[0] != Finalizer ||
		o.Spec.Provider.TokenURL != "https://auth.example.com/token" || o.Spec.CredentialsRef.Name != "creds" {
		t.Errorf("a field changed: %+v", o)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "tokensync"}},
		Annotations: map[string]string{lastApplied: "{}", "oauth.tokensync.io/record": "v1"}},
		Data: map[string][]byte{"access_token": []byte("t1")}}
	if _, err := slimObject(s); err != nil {
		t.Fatal(err)
	}
	if s.ManagedFields != nil || s.Annotations != nil || s.Data != nil || s.GenerateName == "" {
		t.Errorf("Secret not folded: %+v", s)
	}
	if err := secrets.Unfold(s); err != nil {
		t.Fatal(err)
	}
	if len(s.Annotations) != 1 || s.Annotations["oauth.tokensync.io/record"] != "v1" || string(s.Data["access_token"]) != "t1" {
		t.Errorf("Secret slimmed wrong: %+v", s)
	}
}
