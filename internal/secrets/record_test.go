package secrets

import (
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

func signedSecret(t *testing.T, s *Signer, tok *Token) *corev1.Secret {
	t.Helper()
	a := s.recordAnnotations("ns", "target", "obj", true, tok, tokenHash(tok.AccessToken))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "target", Annotations: a},
		Data:       dataOf(tok),
	}
}

// TestRecordVerification: a record verifies only as written, for the
// object, Secret and key it was signed for. Each edit of a signed
// annotation, or of the token, breaks it; renew-at is never trusted, so
// editing it changes nothing.
func TestRecordVerification(t *testing.T) {
	s, _ := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	other, _ := NewSigner([]byte("another key, also of 32 bytes..."))
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tok := &Token{AccessToken: "at", TokenType: "Bearer", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), RenewAt: t0.Add(40 * time.Minute), ConfigHash: "c", InputsVersion: "v"}
	sec := signedSecret(t, s, tok)
	got, ok := s.verify(sec, "obj", nil)
	if !ok || got.AccessToken != "at" || !got.ExpiresAt.Equal(tok.ExpiresAt) || got.ConfigHash != "c" || got.InputsVersion != "v" {
		t.Fatalf("verify = %+v, %v", got, ok)
	}
	if _, ok := other.verify(sec, "obj", nil); ok {
		t.Fatal("verified with another key")
	}
	if _, ok := s.verify(sec, "someone-else", nil); ok {
		t.Fatal("verified for another object")
	}
	moved := sec.DeepCopy()
	moved.Name = "elsewhere"
	if _, ok := s.verify(moved, "obj", nil); ok {
		t.Fatal("a record copied to another Secret verified")
	}
	for _, k := range []string{v1alpha1.OwnerAnnotation, v1alpha1.ConfigHashAnnotation, v1alpha1.InputsVersionAnnotation, v1alpha1.TokenHashAnnotation,
		v1alpha1.TokenTypeAnnotation, v1alpha1.IssuedAtAnnotation, v1alpha1.ExpiresAtAnnotation, v1alpha1.ExpirySourceAnnotation, v1alpha1.SignatureAnnotation, v1alpha1.OriginAnnotation} {
		edited := sec.DeepCopy()
		edited.Annotations = maps.Clone(sec.Annotations)
		edited.Annotations[k] = edited.Annotations[k] + "x"
		if _, ok := s.verify(edited, "obj", nil); ok {
			t.Errorf("editing %s kept the record valid", k)
		}
	}
	if !s.intact(sec) || other.intact(sec) {
		t.Fatal("intact does not say whether this key signed the record")
	}
	unsigned := sec.DeepCopy()
	unsigned.Annotations = maps.Clone(sec.Annotations)
	delete(unsigned.Annotations, v1alpha1.OriginAnnotation)
	if s.intact(unsigned) {
		t.Fatal("the record does not cover the origin")
	}
	edited := sec.DeepCopy()
	edited.Annotations[v1alpha1.RenewAtAnnotation] = "2099-01-01T00:00:00Z"
	if _, ok := s.verify(edited, "obj", nil); !ok {
		t.Error("renew-at is informational: editing it must not matter")
	}
	edited = sec.DeepCopy()
	edited.Data[v1alpha1.AccessTokenKey] = []byte("forged")
	if _, ok := s.verify(edited, "obj", nil); ok {
		t.Error("an edited token verified")
	}
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestTemplatedRecord(t *testing.T) {
	s, _ := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	tpls := map[string]v1alpha1.DataTemplate{"h": "Bearer {{ .AccessToken }}"}
	tok := &Token{Data: map[string][]byte{"h": []byte("Bearer at")}, TokenType: "Bearer", IssuedAt: time.Unix(0, 0), ExpiresAt: time.Unix(3600, 0), ConfigHash: "c"}
	a := s.recordAnnotations("ns", "target", "obj", true, tok, dataHash(tpls, tok.Data))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "target", Annotations: a}, Data: map[string][]byte{"h": []byte("Bearer at")}}
	if _, ok := s.verify(sec, "obj", tpls); !ok {
		t.Fatal("templated record does not verify")
	}
	if _, ok := s.verify(sec, "obj", map[string]v1alpha1.DataTemplate{"h": "{{ .AccessToken }}"}); ok {
		t.Fatal("verified against other templates")
	}
	if _, ok := s.verify(sec, "obj", nil); ok {
		t.Fatal("a templated record verified as the default keys")
	}
}
