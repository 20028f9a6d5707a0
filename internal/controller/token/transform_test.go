package token

import (
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestSlimObject: the cache keeps no managed fields and no last-applied
// copy, keeps every other field as it was, and holds one copy of the
// strings objects repeat.
func TestSlimObject(t *testing.T) {
	mk := func() *v1alpha1.OAuthClientToken {
		o := &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: strings.Clone("team-a"), Name: "tok",
				Annotations:   map[string]string{lastApplied: `{"big":"copy"}`, strings.Clone("example.com/note"): "x"},
				Labels:        map[string]string{strings.Clone("app"): strings.Clone("payments")},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
				Finalizers:    []string{strings.Clone(Finalizer)},
			},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: strings.Clone("creds")},
				Provider:       v1alpha1.ProviderSpec{TokenURL: strings.Clone("https://auth.example.com/token")},
			},
		}
		o.Status.Conditions = []metav1.Condition{{Type: strings.Clone("Ready"), Status: "True", Reason: strings.Clone("TokenReady"), Message: "m"}}
		return o
	}
	a, b := mk(), mk()
	for _, o := range []*v1alpha1.OAuthClientToken{a, b} {
		if _, err := slimObject(o); err != nil {
			t.Fatal(err)
		}
	}
	if a.ManagedFields != nil || a.Annotations[lastApplied] != "" {
		t.Errorf("managed fields %v, last-applied %q kept", a.ManagedFields, a.Annotations[lastApplied])
	}
	if a.Annotations["example.com/note"] != "x" || a.Labels["app"] != "payments" || a.Finalizers[0] != Finalizer ||
		a.Spec.Provider.TokenURL != "https://auth.example.com/token" || a.Spec.CredentialsRef.Name != "creds" || a.Status.Conditions[0].Message != "m" {
		t.Errorf("a field changed: %+v", a)
	}
	for what, p := range map[string][2]string{
		"namespace":   {a.Namespace, b.Namespace},
		"tokenURL":    {a.Spec.Provider.TokenURL, b.Spec.Provider.TokenURL},
		"condition":   {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		"label value": {a.Labels["app"], b.Labels["app"]},
		"finalizer":   {a.Finalizers[0], b.Finalizers[0]},
	} {
		if !sameString(p[0], p[1]) {
			t.Errorf("two cached objects hold two copies of their %s %q", what, p[0])
		}
	}

	s1 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: strings.Clone("team-a"), ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "tokensync"}},
		Annotations: map[string]string{lastApplied: "{}", strings.Clone(v1alpha1.ManagedLabel): "v1"}},
		Data: map[string][]byte{strings.Clone("access_token"): []byte("t1")}}
	if _, err := slimObject(s1); err != nil {
		t.Fatal(err)
	}
	if s1.ManagedFields != nil || s1.Annotations[lastApplied] != "" || string(s1.Data["access_token"]) != "t1" || s1.Annotations[v1alpha1.ManagedLabel] != "v1" {
		t.Errorf("Secret slimmed wrong: %+v", s1)
	}
	for k := range s1.Data {
		if !sameString(k, intern("access_token")) {
			t.Error("a data key is not interned")
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}}
	if _, err := slimObject(cm); err != nil || cm.ManagedFields != nil {
		t.Errorf("other kinds keep their managed fields: %v", err)
	}
}
