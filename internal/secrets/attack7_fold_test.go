package secrets

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/randfill"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// attack7Normal is s as the API server would hand it out: empty maps and
// slices absent.
func attack7Normal(s *corev1.Secret) *corev1.Secret {
	s = s.DeepCopy()
	if len(s.Annotations) == 0 {
		s.Annotations = nil
	}
	if len(s.Data) == 0 {
		s.Data = nil
	}
	for k, v := range s.Data {
		if v == nil {
			s.Data[k] = []byte{}
		}
	}
	if len(s.OwnerReferences) == 0 {
		s.OwnerReferences = nil
	}
	return s
}

// TestAttack7_FoldRoundTripsTheWholeSecret: random whole Secrets
// (randfill: every ObjectMeta field, finalizers, deletionTimestamp,
// managed fields, owner references with nil, false and true pointers)
// come back from Fold, the cache's deep copy and Unfold exactly equal,
// field for field; a second Fold (client-go transforms again on resync)
// changes nothing.
func TestAttack7_FoldRoundTripsTheWholeSecret(t *testing.T) {
	f := randfill.NewWithSeed(7).NilChance(0.3).NumElements(0, 6)
	for i := range 3000 {
		s := &corev1.Secret{}
		f.Fill(s)
		s.GenerateName = strings.TrimPrefix(s.GenerateName, foldMark)
		want := attack7Normal(s)
		got := s.DeepCopy()
		Fold(got)
		once := got.DeepCopy()
		Fold(got)
		if !reflect.DeepEqual(once, got) {
			t.Fatalf("secret %d: a second Fold changed the fold", i)
		}
		got = got.DeepCopy()
		if err := Unfold(got); err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
		if got = attack7Normal(got); !reflect.DeepEqual(want, got) {
			t.Fatalf("secret %d:\n want %+v\n got  %+v", i, want.ObjectMeta, got.ObjectMeta)
		}
	}
}

// TestAttack7_OwnerReferencePointersAndOrder: every combination of nil,
// false and true controller and blockOwnerDeletion, in several
// references, keeps its pointers (nil is not false) and its order, and
// every ownership decision reads the same.
func TestAttack7_OwnerReferencePointersAndOrder(t *testing.T) {
	vals := []*bool{nil, ptr.To(false), ptr.To(true)}
	obj := &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Name: "tok", UID: "u-tok"}}
	var refs []metav1.OwnerReference
	for i, c := range vals {
		for j, b := range vals {
			for _, kind := range []string{"OAuthClientToken", "Deployment"} {
				uid := types.UID(fmt.Sprintf("u-%d%d", i, j))
				if i == 2 && j == 0 && kind == "OAuthClientToken" {
					uid = obj.UID
				}
				refs = append(refs, metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: fmt.Sprintf("%s-%d%d", kind, i, j), UID: uid, Controller: c, BlockOwnerDeletion: b})
			}
		}
	}
	for n := 1; n <= len(refs); n++ {
		for start := 0; start+n <= len(refs); start += max(1, n/2) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", UID: "u-s", OwnerReferences: refs[start : start+n],
				Labels: map[string]string{v1alpha1.ManagedLabel: "true"}, Annotations: map[string]string{v1alpha1.OriginAnnotation: OriginCreated, v1alpha1.OwnerAnnotation: "tok"}}}
			got := s.DeepCopy()
			Fold(got)
			got = got.DeepCopy()
			if err := Unfold(got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.OwnerReferences, got.OwnerReferences) {
				t.Fatalf("refs[%d:%d]: %+v, want %+v", start, start+n, got.OwnerReferences, s.OwnerReferences)
			}
			decide := func(m *corev1.Secret) string {
				return fmt.Sprint(originOf(m, func() bool { return false }, func() bool { return false }), hasTokenController(m), controllerOf(m), hasControllerRef(m, obj))
			}
			if a, b := decide(s), decide(got); a != b {
				t.Fatalf("refs[%d:%d]: %s from the API server, %s through the fold", start, start+n, a, b)
			}
		}
	}
}

// attack7Reader answers a List from its list and a Get with err.
type attack7Reader struct {
	client.Reader
	items  []v1alpha1.OAuthClientToken
	getErr error
	self   *v1alpha1.OAuthClientToken
}

func (r attack7Reader) List(_ context.Context, l client.ObjectList, _ ...client.ListOption) error {
	l.(*v1alpha1.OAuthClientTokenList).Items = append([]v1alpha1.OAuthClientToken(nil), r.items...)
	return nil
}

func (r attack7Reader) Get(_ context.Context, _ client.ObjectKey, o client.Object, _ ...client.GetOption) error {
	if r.getErr != nil {
		return r.getErr
	}
	r.self.DeepCopyInto(o.(*v1alpha1.OAuthClientToken))
	return nil
}

// TestAttack7_ClaimantsFaults: a failing Get (not NotFound) is an error,
// not a silently shorter list (olderClaimant would then let a younger
// object write); an object called name that targets elsewhere is left out.
func TestAttack7_ClaimantsFaults(t *testing.T) {
	peer := v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Spec: v1alpha1.OAuthClientTokenSpec{Target: &v1alpha1.TargetSpec{Name: "a"}}}
	boom := errors.New("cache timed out")
	if got, err := Claimants(context.Background(), attack7Reader{items: []v1alpha1.OAuthClientToken{peer}, getErr: boom}, "ns", "a"); !errors.Is(err, boom) {
		t.Fatalf("Claimants with a failing Get: %v, %v; want the error", got, err)
	}
	away := &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: v1alpha1.OAuthClientTokenSpec{Target: &v1alpha1.TargetSpec{Name: "x"}}}
	got, err := Claimants(context.Background(), attack7Reader{items: []v1alpha1.OAuthClientToken{peer}, self: away}, "ns", "a")
	if err != nil || len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("Claimants: %v, %v; want [b]", got, err)
	}
	own := away.DeepCopy()
	own.Spec.Target = &v1alpha1.TargetSpec{Name: "a"}
	got, err = Claimants(context.Background(), attack7Reader{items: []v1alpha1.OAuthClientToken{peer}, self: own}, "ns", "a")
	if err != nil || len(got) != 2 {
		t.Fatalf("Claimants: %v, %v; want [b a]", got, err)
	}
}

// TestAttack7_UnfoldErrorsCarryNoSecret: the error of a corrupt fold, and
// what a failed Unfold leaves, show none of the fold's bytes.
func TestAttack7_UnfoldErrorsCarryNoSecret(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", UID: "u", Annotations: map[string]string{"k": "v"}},
		Data: map[string][]byte{v1alpha1.AccessTokenKey: []byte("SECRET-TOKEN-BYTES")}}
	Fold(s)
	for cut := 1; cut < len(s.GenerateName); cut++ {
		bad := s.DeepCopy()
		bad.GenerateName = s.GenerateName[:cut] + "\xff\xff"
		err := Unfold(bad)
		if err == nil {
			continue
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(fmt.Sprintf("%+v", bad), "SECRET") {
			t.Fatalf("cut %d: the failure shows the token: %v / %+v", cut, err, bad)
		}
	}
}
