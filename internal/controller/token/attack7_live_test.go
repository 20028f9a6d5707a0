package token

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/secrets"
)

// TestAttack7_APIRejectsNULGenerateName: the fold's premise. The API
// server refuses a Secret whose generateName starts with NUL, on create
// (name given, so no name is generated from it), update and patch, so no
// Secret from the API server can pass for a fold.
func TestAttack7_APIRejectsNULGenerateName(t *testing.T) {
	h := newHarness(t)
	for _, gen := range []string{"\x00", "\x00a\x01\x03tok", "\x00" + strings.Repeat("a", 10)} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: h.ns, GenerateName: gen,
			Labels: map[string]string{v1alpha1.ManagedLabel: "true"}}}
		if err := k8sClient.Create(h.ctx, s); !apierrors.IsInvalid(err) {
			t.Fatalf("create with generateName %q: %v, want Invalid", gen, err)
		}
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: h.ns, Labels: map[string]string{v1alpha1.ManagedLabel: "true"}}}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	s.GenerateName = "\x00"
	if err := k8sClient.Update(h.ctx, s); !apierrors.IsInvalid(err) {
		t.Fatalf("update: %v, want Invalid", err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"generateName":"\u0000a"}}`))
	if err := k8sClient.Patch(h.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: h.ns}}, patch); !apierrors.IsInvalid(err) {
		t.Fatalf("merge patch: %v, want Invalid", err)
	}
}

// attack7Brute is what the old, full target index answered for Secret
// name: every cached object whose target is name.
func attack7Brute(t *testing.T, h *harness, name string) []string {
	t.Helper()
	var list v1alpha1.OAuthClientTokenList
	if err := mgrClient.List(h.ctx, &list, client.InNamespace(h.ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range list.Items {
		if o.TargetName() == name {
			out = append(out, o.Name)
		}
	}
	slices.Sort(out)
	return out
}

func attack7Queue() workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
}

func attack7Drain(q workqueue.TypedRateLimitingInterface[reconcile.Request]) []string {
	var out []string
	for q.Len() > 0 {
		r, _ := q.Get()
		out = append(out, r.Name)
		q.Done(r)
	}
	slices.Sort(out)
	return out
}

// TestAttack7_ClaimantsEqualTheFullIndex: through creates, retargets
// (away and back, explicit own name, onto another object's name),
// deletions and recreations, Claimants, tokensFor("Secret") and
// enqueuePeers answer exactly what a full target index would.
func TestAttack7_ClaimantsEqualTheFullIndex(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "attack7-claim-"+h.ns, "s3cret")
	target := func(n string) func(*v1alpha1.OAuthClientToken) {
		return func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: n} }
	}
	h.createToken("a", "creds", nil)
	h.createToken("b", "creds", target("a"))
	h.createToken("c", "creds", target("c"))
	h.createToken("d", "creds", target("e"))
	h.createToken("e", "creds", nil)
	h.createToken("f", "creds", target("b")) // names b's own name
	names := []string{"a", "b", "c", "d", "e", "f", "x", "y", "nothing"}
	check := func(stage string) {
		t.Helper()
		for _, n := range names {
			want, got := attack7Brute(t, h, n), claimantNames(t, h, n)
			if !slices.Equal(want, got) {
				t.Errorf("%s: Claimants(%s) = %v, want %v", stage, n, got, want)
			}
			var reqs []string
			for _, r := range h.r.tokensFor(h.ctx, "Secret", types.NamespacedName{Namespace: h.ns, Name: n}) {
				reqs = append(reqs, r.Name)
			}
			slices.Sort(reqs)
			reqs = slices.Compact(reqs)
			if !slices.Equal(reqs, want) {
				t.Errorf("%s: a Secret %s event wakes %v, want %v", stage, n, reqs, want)
			}
		}
		var list v1alpha1.OAuthClientTokenList
		if err := mgrClient.List(h.ctx, &list, client.InNamespace(h.ns)); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			q := attack7Queue()
			h.r.enqueuePeers(h.ctx, q, o)
			var want []string
			for _, n := range []string{o.TargetName(), o.Status.SecretName} {
				for _, p := range attack7Brute(t, h, n) {
					if p != o.Name {
						want = append(want, p)
					}
				}
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if got := slices.Compact(attack7Drain(q)); !slices.Equal(got, want) {
				t.Errorf("%s: peers of %s = %v, want %v", stage, o.Name, got, want)
			}
			q.ShutDown()
		}
	}
	check("created")
	h.edit("a", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "x"} })
	check("a retargeted to x")
	h.edit("a", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "a"} })
	check("a retargeted to its own name, explicitly")
	h.edit("a", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = nil })
	check("a back to the default")
	h.edit("e", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "a"} })
	check("e onto a")
	h.deleteObject("a")
	check("a deleted")
	h.createToken("a", "creds", target("y"))
	check("a recreated with target y")
	h.deleteObject("b")
	h.createToken("x", "creds", nil) // "rename" b to x
	check("b renamed x")
}

// attack7APISecrets reads Secrets from the API server: the reconciler with
// no fold in between.
type attack7APISecrets struct{ client.Client }

func (c attack7APISecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		return k8sClient.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestAttack7_HostileSecretsDecideTheSameThroughTheFold: Secrets a tenant
// labels managed, with owner references of every shape (nil, false and
// true controller and blockOwnerDeletion; several; a controller that is
// not an OAuthClientToken; one to the object itself), generateName,
// finalizers and a deletionTimestamp: Inspect decides the same (origin,
// owner, action, error, held token, live metadata) through the cache as
// from the API server, for every creation policy.
func TestAttack7_HostileSecretsDecideTheSameThroughTheFold(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "attack7-hostile-"+h.ns, "s3cret")
	api := newReconciler(attack7APISecrets{mgrClient}, &oauth.Client{HTTPClient: httpClient, Now: h.clock.Now}, h.recorder, h.clock)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: h.ns}}
	if err := k8sClient.Create(h.ctx, cm); err != nil {
		t.Fatal(err)
	}
	// A real object, issued, whose genuine Secret is copied below.
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	tok := h.get("tok")
	genuine := h.secret("tok")
	gv := v1alpha1.GroupVersion.String()
	refs := map[string][]metav1.OwnerReference{
		"none":              nil,
		"nil pointers":      {{APIVersion: gv, Kind: "OAuthClientToken", Name: "tok", UID: tok.UID}},
		"false controller":  {{APIVersion: gv, Kind: "OAuthClientToken", Name: "tok", UID: tok.UID, Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(false)}},
		"token controller":  {{APIVersion: gv, Kind: "OAuthClientToken", Name: "tok", UID: tok.UID, Controller: ptr.To(true)}},
		"other controller":  {{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: cm.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}},
		"several, in order": {{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: cm.UID}, {APIVersion: gv, Kind: "OAuthClientToken", Name: "tok", UID: tok.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}, {APIVersion: "v1", Kind: "ConfigMap", Name: "owner2", UID: "u-2", BlockOwnerDeletion: ptr.To(false)}},
		"token, stale uid":  {{APIVersion: gv, Kind: "OAuthClientToken", Name: "tok", UID: "not-the-uid", Controller: ptr.To(true)}},
	}
	type shape struct {
		name      string
		gen       string
		record    bool
		finalizer bool
		deleting  bool
	}
	var shapes []shape
	for _, gen := range []string{"", "gen-"} {
		for _, record := range []bool{false, true} {
			shapes = append(shapes, shape{gen: gen, record: record}, shape{gen: gen, record: record, finalizer: true, deleting: true})
		}
	}
	i := 0
	for rn, rs := range refs {
		for _, sh := range shapes {
			i++
			name := fmt.Sprintf("s%d", i)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, GenerateName: sh.gen,
				Labels: map[string]string{v1alpha1.ManagedLabel: "true"}, OwnerReferences: rs,
				Annotations: map[string]string{"example.com/huge": strings.Repeat("h", 200<<10)}},
				Data: map[string][]byte{"tenant": []byte("x")}}
			if sh.record {
				for k, v := range genuine.Annotations {
					s.Annotations[k] = v
				}
				for k, v := range genuine.Data {
					s.Data[k] = v
				}
			}
			if sh.finalizer {
				s.Finalizers = []string{"example.com/hold"}
			}
			if err := k8sClient.Create(h.ctx, s); err != nil {
				t.Fatalf("%s: %v", rn, err)
			}
			if sh.deleting {
				if err := k8sClient.Delete(h.ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			h.syncCache(s)
			attack7WantFolded(t, h, name)
			for _, p := range []v1alpha1.CreationPolicy{v1alpha1.CreationPolicyOwner, v1alpha1.CreationPolicyOrphan, v1alpha1.CreationPolicyMerge} {
				obj := tok.DeepCopy()
				obj.Spec.Target = &v1alpha1.TargetSpec{Name: name, CreationPolicy: p}
				describe := func(w *secrets.Writer) string {
					tg, err := w.Inspect(h.ctx, obj)
					out := fmt.Sprintf("origin=%v owner=%q action=%v err=%v held=%v", tg.Origin, tg.Owner, tg.Action, err, tg.Held != nil)
					if l := tg.Live; l != nil {
						out += fmt.Sprintf(" uid=%q gen=%q refs=%s fin=%v del=%v ann=%d data=%d", l.UID, l.GenerateName, attack7Refs(l.OwnerReferences), l.Finalizers, l.DeletionTimestamp != nil, len(l.Annotations), len(l.Data))
					}
					return out
				}
				if a, b := describe(api.Writer), describe(h.r.Writer); a != b {
					t.Errorf("%s, %+v, policy %s:\n API server: %s\n cache:      %s", rn, sh, p, a, b)
				}
			}
			if sh.finalizer {
				s = h.secret(name)
				s.Finalizers = nil
				if err := k8sClient.Update(h.ctx, s); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestAttack7_MergeIntoAGenerateNamedSecret: a user's Secret created with
// generateName takes a Merge token, keeps its generateName, settles (a
// second reconcile writes nothing) and is unmerged on deletion.
func TestAttack7_MergeIntoAGenerateNamedSecret(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "attack7-gen-"+h.ns, "s3cret")
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: h.ns}, Data: map[string][]byte{"db": []byte("pw")}}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: s.Name, CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	h.reconcile("tok")
	h.reconcile("tok")
	wantReady(h, "tok")
	got := h.secret(s.Name)
	if got.GenerateName != "app-" || string(got.Data["db"]) != "pw" || len(got.Data[v1alpha1.AccessTokenKey]) == 0 {
		t.Fatalf("merged Secret: generateName %q keys %v", got.GenerateName, keys(got.Data))
	}
	// The cache now holds it folded (managed): read gives it back whole.
	attack7WantFolded(t, h, s.Name)
	tg, err := h.r.Writer.Inspect(h.ctx, h.get("tok"))
	if err != nil || tg.Live == nil || tg.Live.GenerateName != "app-" || tg.Live.UID != got.UID || tg.Held == nil {
		t.Fatalf("Inspect through the cache: %v, %+v", err, tg)
	}
	before := h.writes.n.Load()
	h.reconcile("tok")
	if n := h.writes.n.Load() - before; n != 0 {
		t.Fatalf("a settled reconcile wrote %d times", n)
	}
	h.deleteObject("tok")
	got = h.secret(s.Name)
	if _, ok := got.Data[v1alpha1.AccessTokenKey]; ok || string(got.Data["db"]) != "pw" || got.GenerateName != "app-" {
		t.Fatalf("after deletion: keys %v generateName %q", keys(got.Data), got.GenerateName)
	}
}

// TestAttack7_WaitingPeerTakesOverWhenTheDefaultWriterGoes: A writes its
// default target; B (target a, younger) waits with SecretConflict. A's
// deletion wakes B (enqueuePeers, through Claimants), and B takes the
// Secret over; the Secret's events wake B, not the deleted A; A recreated
// (now younger) waits.
func TestAttack7_WaitingPeerTakesOverWhenTheDefaultWriterGoes(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "attack7-takeover-"+h.ns, "s3cret")
	h.createToken("a", "creds", nil)
	h.reconcile("a")
	wantReady(h, "a")
	h.clock.Step(1)
	h.createToken("b", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Target = &v1alpha1.TargetSpec{Name: "a"} })
	_ = h.reconcileErr("b")
	wantCondition(t, h.get("b"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)

	wakes := func() []string {
		var out []string
		for _, r := range h.r.tokensFor(h.ctx, "Secret", types.NamespacedName{Namespace: h.ns, Name: "a"}) {
			out = append(out, r.Name)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	if got := wakes(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Secret a's events wake %v, want [a b]", got)
	}
	a := h.get("a")
	q := attack7Queue()
	defer q.ShutDown()
	h.deleteObject("a")
	h.r.enqueuePeers(h.ctx, q, a)
	if got := attack7Drain(q); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a's deletion wakes %v, want [b]", got)
	}
	if got := wakes(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after a's deletion Secret a's events wake %v, want [b]", got)
	}
	h.reconcile("b")
	wantReady(h, "b")
	if o := h.secret("a").Annotations[v1alpha1.OwnerAnnotation]; o != "b" {
		t.Fatalf("Secret a written for %q, want b", o)
	}
	h.createToken("a", "creds", nil)
	_ = h.reconcileErr("a")
	wantCondition(t, h.get("a"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
	if o := h.secret("a").Annotations[v1alpha1.OwnerAnnotation]; o != "b" {
		t.Fatalf("recreated a took the Secret from b (written for %q)", o)
	}
}

// attack7Refs spells owner references out, pointers dereferenced (nil
// told apart from false).
func attack7Refs(refs []metav1.OwnerReference) string {
	b := func(p *bool) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	var out []string
	for _, r := range refs {
		out = append(out, fmt.Sprintf("{%s %s %s %s c=%s b=%s}", r.APIVersion, r.Kind, r.Name, r.UID, b(r.Controller), b(r.BlockOwnerDeletion)))
	}
	return fmt.Sprintf("%d%v", len(refs), out)
}

// attack7WantFolded checks that the manager's cache holds Secret name
// folded, and that the fold unfolds: what Inspect then reads is the fold's.
func attack7WantFolded(t *testing.T, h *harness, name string) {
	t.Helper()
	c := &corev1.Secret{}
	if err := mgrClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.GenerateName, "\x00") || c.UID != "" || c.OwnerReferences != nil || c.Annotations != nil || c.Data != nil {
		t.Fatalf("Secret %s is not folded in the cache", name)
	}
	if err := secrets.Unfold(c); err != nil {
		t.Fatalf("Secret %s: the cache's fold does not unfold: %v", name, err)
	}
}
