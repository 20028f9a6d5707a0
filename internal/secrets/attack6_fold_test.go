package secrets

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/randfill"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// attack6Same reports how got differs from want in annotations and data
// (every key present in one is present in the other with the same bytes),
// UID, generateName and owner references.
func attack6Same(want, got *corev1.Secret) string {
	if want.UID != got.UID || want.GenerateName != got.GenerateName ||
		len(want.OwnerReferences)+len(got.OwnerReferences) > 0 && !reflect.DeepEqual(want.OwnerReferences, got.OwnerReferences) {
		return fmt.Sprintf("UID %q, generateName %q, owner references %+v; want %q, %q, %+v", got.UID, got.GenerateName, got.OwnerReferences, want.UID, want.GenerateName, want.OwnerReferences)
	}
	if len(want.Annotations) != len(got.Annotations) {
		return fmt.Sprintf("%d annotations, want %d", len(got.Annotations), len(want.Annotations))
	}
	for k, v := range want.Annotations {
		g, ok := got.Annotations[k]
		if !ok || g != v {
			return fmt.Sprintf("annotation %q: present %v, %d bytes, want %d", k, ok, len(g), len(v))
		}
	}
	if len(want.Data) != len(got.Data) {
		return fmt.Sprintf("%d data keys, want %d", len(got.Data), len(want.Data))
	}
	for k, v := range want.Data {
		g, ok := got.Data[k]
		if !ok || string(g) != string(v) {
			return fmt.Sprintf("data %q: present %v, %d bytes, want %d", k, ok, len(g), len(v))
		}
	}
	return ""
}

func attack6RoundTrip(t *testing.T, name string, s *corev1.Secret) {
	t.Helper()
	want := s.DeepCopy()
	got := s.DeepCopy()
	Fold(got)
	if got.Annotations != nil && len(want.Annotations)+len(want.Data) > 0 {
		t.Errorf("%s: annotations left after folding", name)
	}
	// What the cache hands out is a deep copy of what it holds.
	got = got.DeepCopy()
	if err := Unfold(got); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if d := attack6Same(want, got); d != "" {
		t.Errorf("%s: %s", name, d)
	}
}

// TestAttack6_FoldRoundTripBoundaries: keys equal to every one-byte code in
// both maps, data keys spelled like annotation keys and the other way
// round, empty values, lengths at every varint boundary, all 256 byte
// values, a 256 KiB annotation and keys of the longest lengths the API
// server admits all unfold exactly.
func TestAttack6_FoldRoundTripBoundaries(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	coded := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}, Data: map[string][]byte{}}
	for i, k := range foldedKeys {
		coded.Annotations[k] = fmt.Sprintf("a%d", i)
		coded.Data[k] = []byte(fmt.Sprintf("d%d", i))
	}
	attack6RoundTrip(t, "every coded key in both maps", coded)

	// Keys whose spelled-out form starts with what looks like a code or a
	// kind byte.
	odd := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		"a": "d", "d": "a", "\x01": "x", "0": "", "access_token": "annotation named like a data key",
	}}, Data: map[string][]byte{"a": {'a', 0, 1}, "d": {'d', 1, 0}, "0": {}, "-": nil, "oauth.tokensync.io": all}}
	attack6RoundTrip(t, "kind and code lookalikes", odd)

	for _, n := range []int{0, 1, 126, 127, 128, 129, 16382, 16383, 16384, 16385, 256 << 10, 1<<21 - 1, 1 << 21} {
		v := strings.Repeat("v", n)
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.OwnerAnnotation: v, "example.com/" + strings.Repeat("k", min(n, 63)): v}},
			Data:       map[string][]byte{v1alpha1.AccessTokenKey: []byte(v), strings.Repeat("k", max(1, min(n, 253))): []byte(v)},
		}
		attack6RoundTrip(t, fmt.Sprintf("values of %d bytes", n), s)
	}
	long := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		strings.Repeat("p", 253) + "/" + strings.Repeat("n", 63): "x",
	}}, Data: map[string][]byte{strings.Repeat("k", 127): all, strings.Repeat("k", 128): all, strings.Repeat("k", 253): all}}
	attack6RoundTrip(t, "longest keys", long)

	onlyAnn := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": ""}}}
	attack6RoundTrip(t, "one empty annotation", onlyAnn)
	onlyData := &corev1.Secret{Data: map[string][]byte{"k": {}}}
	attack6RoundTrip(t, "one empty data value", onlyData)
}

// TestAttack6_FoldRoundTripRandom: random Secrets (randfill) round-trip
// their annotations and data, key presence included.
func TestAttack6_FoldRoundTripRandom(t *testing.T) {
	f := randfill.NewWithSeed(6).NilChance(0.2).NumElements(0, 30)
	for i := range 2000 {
		s := &corev1.Secret{}
		f.Fill(s)
		s.GenerateName = strings.TrimPrefix(s.GenerateName, foldMark) // the API server admits no other
		attack6RoundTrip(t, fmt.Sprintf("secret %d", i), s)
	}
}

// attack6Recorded is a target Secret tokensync wrote for owner "tok": a
// signed record, the default keys, created.
func attack6Recorded(t *testing.T, sg *Signer, name string, tpls map[string]v1alpha1.DataTemplate) *corev1.Secret {
	t.Helper()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tok := &Token{AccessToken: "eyJ.tok.sig", TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour), ConfigHash: "cfg", InputsVersion: "iv"}
	content := tokenHash(tok.AccessToken)
	data := map[string][]byte{v1alpha1.AccessTokenKey: []byte(tok.AccessToken), v1alpha1.TokenTypeKey: []byte("Bearer"), v1alpha1.ExpiresAtKey: []byte(stamp(tok.ExpiresAt))}
	if tpls != nil {
		tok.AccessToken = ""
		tok.Data = map[string][]byte{}
		for k := range tpls {
			tok.Data[k] = []byte{}
		}
		content = dataHash(tpls, tok.Data)
		data = tok.Data
	}
	ann := sg.recordAnnotations("team-a", name, "tok", true, tok, content)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, ResourceVersion: "7",
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"}, Annotations: ann},
		Type: corev1.SecretTypeOpaque, Data: data,
	}
}

// TestAttack6_DownstreamDecisionsUnchanged: for genuine records, records
// copied onto another Secret by a tenant, records with an edited or an
// extra annotation spelled like a coded key, and templated records whose
// keys render empty, every decision downstream of read (originOf, intact,
// verify, checkWritable, upToDate) is the same on the folded-and-unfolded
// Secret as on the Secret the API server holds.
func TestAttack6_DownstreamDecisionsUnchanged(t *testing.T) {
	sg, err := NewSigner([]byte("an attack6 signing key, 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	tpls := map[string]v1alpha1.DataTemplate{"empty": "", "also-empty": "{{ if false }}x{{ end }}"}
	genuine := attack6Recorded(t, sg, "api-token", nil)
	templated := attack6Recorded(t, sg, "api-token", tpls)
	copied := genuine.DeepCopy()
	copied.Name = "tenant-secret"
	edited := genuine.DeepCopy()
	edited.Annotations[v1alpha1.ExpiresAtAnnotation] = "2099-01-01T00:00:00Z"
	extra := genuine.DeepCopy()
	extra.Annotations["access_token"] = "x"
	extra.Data["oauth.tokensync.io"] = []byte("x")
	noLabel := genuine.DeepCopy()
	noLabel.Labels = nil
	unsignedOrigin := genuine.DeepCopy()
	delete(unsignedOrigin.Annotations, v1alpha1.SignatureAnnotation)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api-token", Labels: map[string]string{v1alpha1.ManagedLabel: "true"}},
		Data: map[string][]byte{v1alpha1.AccessTokenKey: {}}}

	objFor := func(templ map[string]v1alpha1.DataTemplate, policy v1alpha1.CreationPolicy) *v1alpha1.OAuthClientToken {
		return &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tok", UID: "u"},
			Spec: v1alpha1.OAuthClientTokenSpec{Target: &v1alpha1.TargetSpec{Name: "api-token", Data: templ, CreationPolicy: policy}}}
	}
	type outcome struct {
		origin       Origin
		intact, held bool
		writable     string
		upToDate     bool
	}
	decide := func(s *corev1.Secret, obj *v1alpha1.OAuthClientToken) outcome {
		var o outcome
		o.origin = originOf(s, func() bool { return false }, func() bool { return sg.intact(s) })
		o.intact = sg.intact(s)
		tok, ok := sg.verify(s, "tok", templatesOf(obj))
		o.held = ok
		w := &Writer{Signer: sg}
		tg := &Target{Name: s.Name, Origin: o.origin, Live: s, Owner: s.Annotations[v1alpha1.OwnerAnnotation]}
		if err := w.checkWritable(obj, tg); err != nil {
			o.writable = err.Error()
		}
		if ok {
			tg.Held = tok
			ac := w.applyConfig(obj, tg, tok, w.record(obj, tg, tok))
			o.upToDate = upToDate(s, ac, obj)
		}
		return o
	}
	for name, s := range map[string]*corev1.Secret{
		"genuine": genuine, "templated": templated, "copied": copied, "edited": edited, "extra": extra,
		"no label": noLabel, "unsigned origin": unsignedOrigin, "foreign": foreign,
	} {
		for _, obj := range []*v1alpha1.OAuthClientToken{objFor(nil, ""), objFor(tpls, ""), objFor(nil, v1alpha1.CreationPolicyMerge)} {
			folded := s.DeepCopy()
			Fold(folded)
			folded = folded.DeepCopy()
			if err := Unfold(folded); err != nil {
				t.Fatal(err)
			}
			if a, b := decide(s, obj), decide(folded, obj); a != b {
				t.Errorf("%s (templates %v, policy %q): %+v from the API server, %+v through the cache", name, obj.Spec.Target.Data != nil, obj.Spec.Target.CreationPolicy, a, b)
			}
		}
	}
}

// attack6Index says every Secret exists at resourceVersion rv.
type attack6Index struct{ rv string }

func (x attack6Index) Secret(types.NamespacedName) (string, bool) { return x.rv, true }
func (attack6Index) Begin(types.NamespacedName)                   {}
func (attack6Index) Wrote(types.NamespacedName, string)           {}

// TestAttack6_ReadUnfoldsAndFallsBack: read unfolds what the cache holds
// without changing the cache's copy, and reads from the API server when
// the fold is corrupt.
func TestAttack6_ReadUnfoldsAndFallsBack(t *testing.T) {
	s := foldable()
	want := s.DeepCopy()
	cached := s.DeepCopy()
	Fold(cached)
	build := func(objs ...client.Object) client.Client {
		return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
	}
	api := build(want.DeepCopy())
	var rv string
	{
		got := &corev1.Secret{}
		_ = api.Get(context.Background(), client.ObjectKeyFromObject(want), got)
		rv = got.ResourceVersion
	}
	c := build(cached)
	{
		got := &corev1.Secret{}
		_ = c.Get(context.Background(), client.ObjectKeyFromObject(want), got)
		if got.ResourceVersion != rv {
			t.Skipf("fake clients disagree on resourceVersions: %s, %s", got.ResourceVersion, rv)
		}
	}
	w := &Writer{Client: c, API: api, Index: attack6Index{rv: rv}}
	for range 2 {
		got, err := w.read(context.Background(), client.ObjectKeyFromObject(want))
		if err != nil {
			t.Fatal(err)
		}
		if d := attack6Same(want, got); d != "" {
			t.Fatalf("read: %s", d)
		}
		got.Annotations["mutated"], got.Data["mutated"] = "x", []byte("x")
	}
	// Corrupt fold in the cache: the API server's copy.
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: want.Namespace, Name: want.Name, ResourceVersion: rv,
		GenerateName: foldMark + string([]byte{foldedAnnotation, 1})}}
	w.Client = build(bad)
	got, err := w.read(context.Background(), client.ObjectKeyFromObject(want))
	if err != nil {
		t.Fatal(err)
	}
	if d := attack6Same(want, got); d != "" {
		t.Fatalf("read of a corrupt fold: %s", d)
	}
}

// attack6Allocated is the bytes f allocates.
func attack6Allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestAttack6_UnfoldAllocatesLikeADeepCopy: a tenant's Secret of many
// small keys (the shape that costs the most per byte of manifest) costs
// read no more to unfold than the deep copy of its maps the cache made
// before folding, within a factor of 3; Fold allocates the Secret's
// content once.
func TestAttack6_UnfoldAllocatesLikeADeepCopy(t *testing.T) {
	for _, shape := range []struct {
		name       string
		keys, size int
	}{{"many empty data keys", 60000, 0}, {"many 16-byte values", 30000, 16}, {"many empty annotations", 20000, -1}} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "big", Annotations: map[string]string{}}, Data: map[string][]byte{}}
		content := 0
		for i := range shape.keys {
			k := fmt.Sprintf("k%06d", i)
			if shape.size < 0 {
				s.Annotations[k] = ""
			} else {
				s.Data[k] = make([]byte, shape.size)
			}
			content += len(k) + max(shape.size, 0)
		}
		copyCost := attack6Allocated(func() { _ = s.DeepCopy() })
		folded := s.DeepCopy()
		foldCost := attack6Allocated(func() { Fold(folded) })
		unfoldCost := attack6Allocated(func() {
			c := folded.DeepCopy()
			if err := Unfold(c); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: content %d B, deep copy of the maps %d B, Fold %d B, deep copy + Unfold %d B", shape.name, content, copyCost, foldCost, unfoldCost)
		if unfoldCost > 3*copyCost {
			t.Errorf("%s: read allocates %d B through the fold, %.1fx the %d B of a deep copy of the unfolded Secret", shape.name, unfoldCost, float64(unfoldCost)/float64(copyCost), copyCost)
		}
		if foldCost > uint64(2*content)+4096 {
			t.Errorf("%s: Fold allocates %d B for %d B of content", shape.name, foldCost, content)
		}
	}
}

// FuzzAttack6FoldManyKeys: any set of annotations and data keys (the fuzzer
// splits raw into keys and values) round-trips.
func FuzzAttack6FoldManyKeys(f *testing.F) {
	f.Add([]byte("a=1;b=;oauth.tokensync.io/owner=x"), []byte("access_token=t;k=\x00\xff;="))
	f.Fuzz(func(t *testing.T, ann, data []byte) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}, Data: map[string][]byte{}}
		for _, kv := range strings.Split(string(ann), ";") {
			k, v, _ := strings.Cut(kv, "=")
			s.Annotations[k] = v
		}
		for _, kv := range strings.Split(string(data), ";") {
			k, v, _ := strings.Cut(kv, "=")
			s.Data[k] = []byte(v)
		}
		want := s.DeepCopy()
		Fold(s)
		if err := Unfold(s); err != nil {
			t.Fatal(err)
		}
		if d := attack6Same(want, s); d != "" {
			t.Fatal(d)
		}
		_ = maps.Clone(s.Annotations)
	})
}
