package token

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/intern"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/testutil"
)

// TestNamespacedIndexesHoldNoAllNamespacesCopy: the target and inputs
// indexes answer a List within a namespace, as the reconciler and the
// Secret writer ask them, and hold no all-namespaces copy of each value
// (controller-runtime's IndexField adds one: a set per object for the
// target index, whose values are unique).
func TestNamespacedIndexesHoldNoAllNamespacesCopy(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	for _, h := range []*harness{a, b} {
		h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Target = &v1alpha1.TargetSpec{Name: "same-name"}
		})
	}
	for _, f := range []client.MatchingFields{{secrets.TargetIndex: "same-name"}, {DependsIndex: "Secret/creds"}} {
		var list v1alpha1.OAuthClientTokenList
		if err := mgrClient.List(a.ctx, &list, client.InNamespace(a.ns), f); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].Namespace != a.ns {
			t.Errorf("List in %s by %v = %d objects, want the one of that namespace", a.ns, f, len(list.Items))
		}
	}
	inf, err := mgrCache.GetInformer(a.ctx, &v1alpha1.OAuthClientToken{})
	if err != nil {
		t.Fatal(err)
	}
	indexer := inf.(toolscache.SharedIndexInformer).GetIndexer()
	for _, field := range []string{secrets.TargetIndex, DependsIndex} {
		vals := indexer.ListIndexFuncValues("field:" + field)
		if len(vals) == 0 {
			t.Fatalf("index %s is empty", field)
		}
		for _, v := range vals {
			if strings.HasPrefix(v, "__all_namespaces/") {
				t.Errorf("index %s holds the all-namespaces value %q", field, v)
			}
		}
	}
}

// TestTargetIndexHoldsOnlyRenamedTargets: the target index holds only the
// objects whose target Secret is not named after themselves (most objects
// have no entry, which costs an informer about 320 bytes each), and
// secrets.Claimants still finds every object that names a Secret: the one
// named after it and those that name it in spec.target.name.
func TestTargetIndexHoldsOnlyRenamedTargets(t *testing.T) {
	h := newHarness(t)
	h.createToken("a", "creds", nil)
	h.createToken("b", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "b"} })
	h.createToken("c", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "a"} })
	h.createToken("d", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "other"} })
	inf, err := mgrCache.GetInformer(h.ctx, &v1alpha1.OAuthClientToken{})
	if err != nil {
		t.Fatal(err)
	}
	indexer := inf.(toolscache.SharedIndexInformer).GetIndexer()
	var held []string
	for _, v := range indexer.ListIndexFuncValues("field:" + secrets.TargetIndex) {
		if ns, _, _ := strings.Cut(v, "/"); ns == h.ns {
			keys, err := indexer.IndexKeys("field:"+secrets.TargetIndex, v)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, fmt.Sprintf("%s=%v", strings.TrimPrefix(v, h.ns+"/"), keys))
		}
	}
	slices.Sort(held)
	if want := []string{fmt.Sprintf("a=[%s/c]", h.ns), fmt.Sprintf("other=[%s/d]", h.ns)}; !slices.Equal(held, want) {
		t.Errorf("the target index holds %v, want %v", held, want)
	}
	for secret, want := range map[string][]string{"a": {"a", "c"}, "b": {"b"}, "other": {"d"}, "c": nil, "d": nil, "none": nil} {
		if names := claimantNames(t, h, secret); !slices.Equal(names, want) {
			t.Errorf("Claimants of Secret %s = %v, want %v", secret, names, want)
		}
	}
}

// claimantNames is secrets.Claimants of Secret name in h's namespace, as
// sorted names.
func claimantNames(t *testing.T, h *harness, name string) []string {
	t.Helper()
	items, err := secrets.Claimants(h.ctx, mgrClient, h.ns, name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range items {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestSlimObjectSharesRepeatedStrings: two cached objects decoded apart
// hold one copy of their namespace, label keys and values and Secret type
// (a Secret's annotations, data, UID and owner references are folded), an
// OAuthClientToken's annotation keys and condition strings, and the same
// content as before (a Secret's once unfolded).
func TestSlimObjectSharesRepeatedStrings(t *testing.T) {
	tb := intern.New(100)
	secret := func() *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: strings.Clone("team-a"), Name: strings.Clone("tok-token"),
				Labels:      map[string]string{strings.Clone(v1alpha1.ManagedLabel): strings.Clone("true")},
				Annotations: map[string]string{strings.Clone(v1alpha1.ConfigHashAnnotation): strings.Clone("abc")},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: strings.Clone("oauth.tokensync.io/v1alpha1"),
					Kind: strings.Clone("OAuthClientToken"), Name: "tok", UID: "u1"}},
			},
			Type: corev1.SecretType(strings.Clone("Opaque")),
			Data: map[string][]byte{strings.Clone(v1alpha1.AccessTokenKey): []byte("t1")},
		}
	}
	s1, s2 := slimWith(tb, secret()).(*corev1.Secret), slimWith(tb, secret()).(*corev1.Secret)
	key := func(m map[string]string) string {
		for k := range m {
			return k
		}
		return ""
	}
	if !sameString(s1.Namespace, s2.Namespace) || !sameString(key(s1.Labels), key(s2.Labels)) ||
		!sameString(s1.Labels[v1alpha1.ManagedLabel], s2.Labels[v1alpha1.ManagedLabel]) ||
		!sameString(string(s1.Type), string(s2.Type)) {
		t.Error("two Secrets hold separate copies of a repeated string")
	}
	if s1.OwnerReferences != nil || s1.UID != "" || s1.Annotations != nil || s1.Data != nil {
		t.Errorf("a cached Secret's owner references, UID, annotations or data are not folded: %+v", s1)
	}
	if fmt.Sprintf("%p", s1.Labels) != fmt.Sprintf("%p", s2.Labels) {
		t.Error("two Secrets with the same labels hold two label maps")
	}
	if err := secrets.Unfold(s2); err != nil {
		t.Fatal(err)
	}
	if s2.Namespace != "team-a" || s2.Labels[v1alpha1.ManagedLabel] != "true" || s2.Annotations[v1alpha1.ConfigHashAnnotation] != "abc" ||
		string(s2.Data[v1alpha1.AccessTokenKey]) != "t1" || s2.Type != corev1.SecretTypeOpaque || s2.OwnerReferences[0].UID != "u1" {
		t.Errorf("a field changed: %+v", s2)
	}

	token := func() *v1alpha1.OAuthClientToken {
		return &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Namespace: strings.Clone("team-a"), Name: "tok"},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: strings.Clone("creds")},
				Provider:       v1alpha1.ProviderSpec{TokenURL: strings.Clone("https://auth.example.com/token")},
			},
			Status: v1alpha1.OAuthClientTokenStatus{Conditions: []metav1.Condition{{
				Type: strings.Clone("Ready"), Status: metav1.ConditionStatus(strings.Clone("True")), Reason: strings.Clone("TokenReady"), Message: strings.Clone("m"),
			}}},
		}
	}
	o1, o2 := slimWith(tb, token()).(*v1alpha1.OAuthClientToken), slimWith(tb, token()).(*v1alpha1.OAuthClientToken)
	c1, c2 := o1.Status.Conditions[0], o2.Status.Conditions[0]
	if !sameString(o1.Spec.Provider.TokenURL, o2.Spec.Provider.TokenURL) || !sameString(o1.Spec.CredentialsRef.Name, o2.Spec.CredentialsRef.Name) ||
		!sameString(c1.Type, c2.Type) || !sameString(c1.Reason, c2.Reason) || !sameString(string(c1.Status), string(c2.Status)) {
		t.Error("two OAuthClientTokens hold separate copies of a repeated string")
	}
	if sameString(c1.Message, c2.Message) || c2.Message != "m" || c2.Reason != "TokenReady" || o2.Spec.Provider.TokenURL != "https://auth.example.com/token" {
		t.Errorf("a field changed or a message was shared: %+v", o2)
	}
}

// managedSecret is a target Secret as the cache decodes it: the record
// tokensync writes (values of the lengths it writes), its label, its owner
// reference and a token of 800 bytes, decoded from protobuf as a watch
// delivers it.
func managedSecret(t testing.TB, i int) *corev1.Secret {
	ts := "2026-12-02T10:00:00Z"
	hash := strings.Repeat("0123456789abcdef", 4)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "team-a", Name: fmt.Sprintf("tok-%d-token", i), ResourceVersion: fmt.Sprint(100000 + i), UID: "0f6b8b5e-4c1e-4a8e-9f39-3c1c5d8e7a21",
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"},
			Annotations: map[string]string{
				v1alpha1.OwnerAnnotation: fmt.Sprintf("tok-%d", i), v1alpha1.ConfigHashAnnotation: hash[:32], v1alpha1.InputsVersionAnnotation: hash[:32],
				v1alpha1.TokenHashAnnotation: hash, v1alpha1.TokenTypeAnnotation: "Bearer", v1alpha1.IssuedAtAnnotation: ts,
				v1alpha1.ExpiresAtAnnotation: ts, v1alpha1.RenewAtAnnotation: ts, v1alpha1.ExpirySourceAnnotation: "endpoint",
				v1alpha1.OriginAnnotation: "created", v1alpha1.SignatureAnnotation: hash[:43], v1alpha1.TargetHashAnnotation: hash[:32],
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "oauth.tokensync.io/v1alpha1", Kind: "OAuthClientToken", Name: fmt.Sprintf("tok-%d", i), UID: "0f6b8b5e-4c1e-4a8e-9f39-3c1c5d8e7a22"}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{v1alpha1.AccessTokenKey: []byte(strings.Repeat("t", 800)), v1alpha1.TokenTypeKey: []byte("Bearer"), v1alpha1.ExpiresAtKey: []byte(ts)},
	}
	raw, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := &corev1.Secret{}
	if err := out.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return out
}

// cachedSecretBytes is the heap n managed Secrets hold in an informer's
// store once transform has run on each.
func cachedSecretBytes(t *testing.T, n int, transform func(*corev1.Secret)) float64 {
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	before := testutil.HeapAlloc()
	for i := range n {
		s := managedSecret(t, i)
		transform(s)
		if err := store.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(testutil.HeapAlloc()-before) / float64(n)
	if len(store.ListKeys()) != n {
		t.Fatalf("the store holds %d Secrets, want %d", len(store.ListKeys()), n)
	}
	return per
}

// TestCachedSecretCostsFewBytes: a managed Secret in the cache, its
// annotations, data, UID and owner reference folded, costs at least 1,000
// bytes less than with its dozen annotations and three data keys as maps
// (interned keys and all), its UID and its owner reference as decoded.
func TestCachedSecretCostsFewBytes(t *testing.T) {
	const n = 5000
	tb := intern.New(intern.SharedSize)
	unfolded := cachedSecretBytes(t, n, func(s *corev1.Secret) {
		s.ManagedFields = nil
		// As the cache kept them before the fold: keys shared, values not.
		data := make(map[string][]byte, len(s.Data))
		for k, v := range s.Data {
			data[tb.String(k)] = v
		}
		s.Annotations, s.Data = tb.Map(s.Annotations, false), data
		s.Labels, s.Namespace = tb.SharedMap(s.Labels), tb.String(s.Namespace)
	})
	folded := cachedSecretBytes(t, n, func(s *corev1.Secret) { slimWith(tb, s) })
	t.Logf("a cached managed Secret with an 800-byte token: %.0f bytes folded, %.0f as maps", folded, unfolded)
	if unfolded-folded < 1000 {
		t.Fatalf("folding saves %.0f bytes per cached Secret, want at least 1,000", unfolded-folded)
	}
}
