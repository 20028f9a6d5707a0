package secrets

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

func foldable() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api-token", ResourceVersion: "42",
			UID: "0f6b8b5e-4c1e-4a8e-9f39-3c1c5d8e7a21", GenerateName: "api-",
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "oauth.tokensync.io/v1alpha1", Kind: "OAuthClientToken", Name: "tok", UID: "u1", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)},
				{APIVersion: "v1", Kind: "ConfigMap", Name: "other", UID: "u2"},
			},
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
// annotations, data, UID or owner references, only its fold in
// generateName, made in one allocation; it unfolds to what it had, keys
// tokensync does not know and empty values included; nothing else of the
// Secret changes.
func TestFoldKeepsOneAllocationAndUnfoldsToTheSame(t *testing.T) {
	want := foldable()
	s := want.DeepCopy()
	if n := testing.AllocsPerRun(10, func() { c := want.DeepCopy(); c.OwnerReferences = nil; Fold(c) }) -
		testing.AllocsPerRun(10, func() { c := want.DeepCopy(); c.OwnerReferences = nil }); n != 1 {
		t.Errorf("Fold of a Secret without owner references allocates %.0f times, want 1", n)
	}
	Fold(s)
	if s.Annotations != nil || s.Data != nil || s.OwnerReferences != nil || s.UID != "" || !strings.HasPrefix(s.GenerateName, foldMark) {
		t.Fatalf("folded: annotations %v, data %v, owner references %v, UID %q, generateName %q", s.Annotations, s.Data, s.OwnerReferences, s.UID, s.GenerateName)
	}
	if s.Name != want.Name || s.ResourceVersion != want.ResourceVersion || !maps.Equal(s.Labels, want.Labels) || s.Type != want.Type {
		t.Fatalf("Fold changed the metadata: %+v", s.ObjectMeta)
	}
	if err := Unfold(s); err != nil {
		t.Fatal(err)
	}
	if s.UID != want.UID || s.GenerateName != want.GenerateName || !reflect.DeepEqual(s.OwnerReferences, want.OwnerReferences) {
		t.Fatalf("after unfolding: UID %q, generateName %q, owner references %+v; want %q, %q, %+v", s.UID, s.GenerateName, s.OwnerReferences, want.UID, want.GenerateName, want.OwnerReferences)
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
	if empty.Annotations != nil || empty.Data != nil || empty.GenerateName != "" {
		t.Fatalf("an empty Secret was folded: %+v", empty)
	}
	onlyData := &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}
	Fold(onlyData)
	if err := Unfold(onlyData); err != nil || onlyData.Annotations != nil || string(onlyData.Data["k"]) != "v" {
		t.Fatalf("data only: %+v, %v", onlyData, err)
	}
	s := foldable()
	Fold(s)
	once := s.GenerateName
	Fold(s)
	if s.GenerateName != once || s.Data != nil {
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
	good := []byte(strings.TrimPrefix(s.GenerateName, foldMark))
	for name, b := range map[string][]byte{
		"truncated":              good[:len(good)-1],
		"unknown kind":           append([]byte{'z'}, good[1:]...),
		"unknown code":           {foldedAnnotation, byte(len(foldedKeys) + 1), 0},
		"long key":               {foldedAnnotation, 0, 200, 'k'},
		"long value":             {foldedData, 1, 100},
		"one byte":               {foldedData},
		"coded UID":              {foldedUID, 1, 1, 'u'},
		"keyed owner ref":        {foldedOwnerRef, 0, 1, 'k', 0},
		"owner ref not protobuf": {foldedOwnerRef, 0, 0, 2, 0xff, 0xff},
		"endless varint":         {foldedData, 1, 0x80, 0x80, 0x80},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: foldMark + string(b), Annotations: map[string]string{"a": "b"},
			OwnerReferences: []metav1.OwnerReference{{Name: "x"}}}, Data: map[string][]byte{"k": nil}}
		if err := Unfold(s); err == nil {
			t.Errorf("%s: no error", name)
		}
		if s.Annotations != nil || s.Data != nil || s.OwnerReferences != nil || s.UID != "" || s.GenerateName != "" {
			t.Errorf("%s: left %+v", name, s)
		}
	}
}

// TestASecretWithAUIDIsNeverAFold: a Secret read from the API server has a
// UID and a folded one has none, so a generateName that starts like a
// fold (which the API server does not admit today) on a Secret with a UID
// is folded as any other value, and never unfolded.
func TestASecretWithAUIDIsNeverAFold(t *testing.T) {
	forged := foldable()
	Fold(forged)
	fold := forged.GenerateName
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", UID: "u", GenerateName: fold,
		Annotations: map[string]string{v1alpha1.OwnerAnnotation: "someone"}}}
	want := s.DeepCopy()
	if err := Unfold(s); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("a Secret with a UID was unfolded: %v, %+v", err, s)
	}
	Fold(s)
	if s.UID != "" || s.Annotations != nil || s.GenerateName == fold {
		t.Fatalf("a Secret with a UID and a fold-like generateName was taken for a fold: %+v", s)
	}
	if err := Unfold(s); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("round trip: %v, %+v, want %+v", err, s, want)
	}
}

// FuzzUnfold: whatever the fold holds, Unfold does not panic, and what Fold
// writes unfolds to what it folded.
func FuzzUnfold(f *testing.F) {
	s := foldable()
	Fold(s)
	f.Add([]byte(strings.TrimPrefix(s.GenerateName, foldMark)), "k", []byte("v"))
	f.Add([]byte{foldedAnnotation, 0, 0, 0}, "", []byte{})
	f.Fuzz(func(t *testing.T, raw []byte, k string, v []byte) {
		_ = Unfold(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: foldMark + string(raw)}})
		in := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{k: string(v)}, UID: types.UID(v),
			OwnerReferences: []metav1.OwnerReference{{Name: k, UID: types.UID(v)}}}, Data: map[string][]byte{k: v}}
		if !strings.HasPrefix(k, foldMark) {
			in.GenerateName = k // the API server admits no generateName that starts with foldMark
		}
		want := in.DeepCopy()
		Fold(in)
		if err := Unfold(in); err != nil {
			t.Fatal(err)
		}
		if in.Annotations[k] != string(v) || string(in.Data[k]) != string(v) || !reflect.DeepEqual(in.ObjectMeta, want.ObjectMeta) {
			t.Fatalf("%q: %+v after a round trip, want %+v", k, in, want)
		}
	})
}
