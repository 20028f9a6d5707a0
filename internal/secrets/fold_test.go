package secrets

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

func foldable() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api-token", ResourceVersion: "42",
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"},
			Annotations: map[string]string{
				v1alpha1.OwnerAnnotation:      "tok",
				v1alpha1.ConfigHashAnnotation: "0123456789abcdef",
				v1alpha1.IssuedAtAnnotation:   "2026-12-02T10:00:00Z",
				v1alpha1.SignatureAnnotation:  "c2lnbmF0dXJl",
				v1alpha1.NotAfterAnnotation:   "", // empty values stay
				"example.com/note":            "a key tokensync does not know",
				"x":                           string(make([]byte, 300)), // a length of two varint bytes
			}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			v1alpha1.AccessTokenKey: []byte("eyJhbGciOi.payload.sig"),
			v1alpha1.TokenTypeKey:   []byte("Bearer"),
			"custom-key":            {0, 1, 2, 255},
			"empty":                 {},
		},
	}
}

// TestFoldKeepsOneAllocationAndUnfoldsToTheSame: a folded Secret has no
// annotations and one data entry, and unfolds to the annotations and data
// it had, keys tokensync does not know and empty values included; nothing
// else of the Secret changes.
func TestFoldKeepsOneAllocationAndUnfoldsToTheSame(t *testing.T) {
	want := foldable()
	s := want.DeepCopy()
	Fold(s)
	if s.Annotations != nil || len(s.Data) != 1 || s.Data[foldedKey] == nil {
		t.Fatalf("folded: annotations %v, %d data entries", s.Annotations, len(s.Data))
	}
	if b := s.Data[foldedKey]; cap(b) != len(b) {
		t.Fatalf("the fold holds %d bytes in %d", len(b), cap(b))
	}
	if s.Name != want.Name || s.ResourceVersion != want.ResourceVersion || !maps.Equal(s.Labels, want.Labels) || s.Type != want.Type {
		t.Fatalf("Fold changed the metadata: %+v", s.ObjectMeta)
	}
	if err := Unfold(s); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(s.Annotations, want.Annotations) {
		t.Fatalf("annotations after unfolding: %v, want %v", s.Annotations, want.Annotations)
	}
	if len(s.Data) != len(want.Data) {
		t.Fatalf("data after unfolding: %v, want %v", s.Data, want.Data)
	}
	for k, v := range want.Data {
		if got, ok := s.Data[k]; !ok || string(got) != string(v) {
			t.Fatalf("data %q after unfolding: %q, want %q", k, got, v)
		}
	}
}

// TestFoldLeavesWhatItCannotFold: a Secret with no annotations and no
// data, and one already folded, stay as they are; an unfolded Secret
// unfolds to itself; nil maps stay nil.
func TestFoldLeavesWhatItCannotFold(t *testing.T) {
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "e"}}
	Fold(empty)
	if empty.Annotations != nil || empty.Data != nil {
		t.Fatalf("an empty Secret was folded: %+v", empty)
	}
	onlyData := &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}
	Fold(onlyData)
	if err := Unfold(onlyData); err != nil || onlyData.Annotations != nil || string(onlyData.Data["k"]) != "v" {
		t.Fatalf("data only: %+v, %v", onlyData, err)
	}
	s := foldable()
	Fold(s)
	once := string(s.Data[foldedKey])
	Fold(s)
	if string(s.Data[foldedKey]) != once || len(s.Data) != 1 {
		t.Fatal("a folded Secret was folded again")
	}
	plain := foldable()
	if err := Unfold(plain); err != nil || !maps.Equal(plain.Annotations, foldable().Annotations) {
		t.Fatalf("an unfolded Secret changed: %v", err)
	}
}

// TestUnfoldRefusesWhatFoldDidNotWrite: a truncated or corrupt fold is an
// error and leaves a Secret with no annotations and no data, which reads
// as a Secret tokensync knows nothing of (never as one it wrote).
func TestUnfoldRefusesWhatFoldDidNotWrite(t *testing.T) {
	s := foldable()
	Fold(s)
	good := s.Data[foldedKey]
	for name, b := range map[string][]byte{
		"truncated":    good[:len(good)-1],
		"unknown kind": append([]byte{'z'}, good[1:]...),
		"unknown code": {foldedAnnotation, byte(len(foldedKeys) + 1), 0},
		"long key":     {foldedAnnotation, 0, 200, 'k'},
		"long value":   {foldedData, 1, 100},
		"one byte":     {foldedData},
	} {
		s := &corev1.Secret{Data: map[string][]byte{foldedKey: b}, ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}}}
		if err := Unfold(s); err == nil {
			t.Errorf("%s: no error", name)
		}
		if s.Annotations != nil || s.Data != nil {
			t.Errorf("%s: left %v, %v", name, s.Annotations, s.Data)
		}
	}
}

// FuzzUnfold: whatever the fold holds, Unfold does not panic, and what Fold
// writes unfolds to what it folded.
func FuzzUnfold(f *testing.F) {
	s := foldable()
	Fold(s)
	f.Add(s.Data[foldedKey], "k", []byte("v"))
	f.Add([]byte{foldedAnnotation, 0, 0, 0}, "", []byte{})
	f.Fuzz(func(t *testing.T, raw []byte, k string, v []byte) {
		_ = Unfold(&corev1.Secret{Data: map[string][]byte{foldedKey: raw}})
		if k == foldedKey {
			return // not a data key the API server allows
		}
		in := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{k: string(v)}}, Data: map[string][]byte{k: v}}
		Fold(in)
		if err := Unfold(in); err != nil {
			t.Fatal(err)
		}
		if in.Annotations[k] != string(v) || string(in.Data[k]) != string(v) {
			t.Fatalf("%q: %q / %q after a round trip", k, in.Annotations[k], in.Data[k])
		}
	})
}
