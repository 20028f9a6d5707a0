package token

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/intern"
)

// attack8Foreign are annotations others put on an OAuthClientToken (Helm,
// Argo CD, kubectl apply, a tenant's 200 KiB one): the cache drops them,
// the API server must keep them through every write tokensync makes.
func attack8Foreign() map[string]string {
	return map[string]string{
		"meta.helm.sh/release-name":                        "payments",
		"meta.helm.sh/release-namespace":                   "shop",
		"argocd.argoproj.io/tracking-id":                   "shop:oauth.tokensync.io/OAuthClientToken:shop/tok",
		"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"oauth.tokensync.io/v1alpha1","kind":"OAuthClientToken"}`,
		"tenant.example.com/blob":                          strings.Repeat("x", 200<<10),
	}
}

var attack8Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm", "team": "shop"}

const attack8Hold = "example.com/hold"

// wantForeignKept checks that the live object still has every foreign
// annotation, label and finalizer, and that the manager's cache holds none
// of the foreign annotations.
func (h *harness) attack8WantForeignKept(stage, name string) *v1alpha1.OAuthClientToken {
	h.t.Helper()
	o := h.get(name)
	for k, v := range attack8Foreign() {
		if got, ok := o.Annotations[k]; !ok || got != v {
			h.t.Fatalf("%s: annotation %s lost or changed on the API server (have %d bytes, present %v)", stage, k, len(got), ok)
		}
	}
	for k, v := range attack8Labels {
		if o.Labels[k] != v {
			h.t.Fatalf("%s: label %s lost: %v", stage, k, o.Labels)
		}
	}
	if !controllerutil.ContainsFinalizer(o, attack8Hold) {
		h.t.Fatalf("%s: finalizer %s lost: %v", stage, attack8Hold, o.Finalizers)
	}
	cached := &v1alpha1.OAuthClientToken{}
	if err := mgrClient.Get(h.ctx, client.ObjectKeyFromObject(o), cached); err != nil {
		h.t.Fatal(err)
	}
	for k := range cached.Annotations {
		if !strings.HasPrefix(k, "oauth.tokensync.io/") {
			h.t.Fatalf("%s: the cache keeps annotation %s", stage, k)
		}
	}
	return o
}

// TestAttack8_ForeignMetadataSurvivesEveryWrite: with the cache keeping no
// foreign annotation, every write tokensync makes of an OAuthClientToken
// (the finalizer added before the first merge, the status of the first
// token, a requested refresh, a spec edit, a retarget that removes the
// finalizer and one that adds it back, the finalizer removed on deletion)
// leaves the live object's foreign annotations, labels and finalizers as
// they were. A write built from the cached copy (an Update, or a patch
// against an object with its annotations) would delete them.
func TestAttack8_ForeignMetadataSurvivesEveryWrite(t *testing.T) {
	h := newHarness(t)
	id := "attack8-foreign-" + h.ns
	h.createCreds("creds", id, "s3cret")
	h.userSecret("app")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Annotations = attack8Foreign()
		o.Labels = maps.Clone(attack8Labels)
		o.Finalizers = []string{attack8Hold}
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "app", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})

	// First issue: the finalizer is added (creationPolicy Merge), then status.
	h.reconcile("tok")
	wantReady(h, "tok")
	o := h.attack8WantForeignKept("first token", "tok")
	if !controllerutil.ContainsFinalizer(o, Finalizer) {
		t.Fatalf("no %s finalizer on a Merge object: %v", Finalizer, o.Finalizers)
	}
	first := len(h.issued(id))

	// A requested refresh.
	h.clock.Step(time.Minute)
	patchAnnotation(t, o, v1alpha1.RefreshRequestedAnnotation, "r1")
	h.syncCache(h.get("tok"))
	h.reconcile("tok")
	o = h.attack8WantForeignKept("refresh", "tok")
	if o.Status.LastHandledRefreshRequest != "r1" || len(h.issued(id)) != first+1 {
		t.Fatalf("refresh not handled: lastHandled %q, %d tokens (was %d)", o.Status.LastHandledRefreshRequest, len(h.issued(id)), first)
	}

	// A spec edit.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.Scopes = []string{"read"} })
	h.reconcile("tok")
	o = h.attack8WantForeignKept("spec edit", "tok")
	if o.Status.ObservedGeneration != o.Generation {
		t.Fatalf("spec edit not reconciled: observedGeneration %d, generation %d", o.Status.ObservedGeneration, o.Generation)
	}

	// A retarget to a Secret it creates: its keys leave the user's Secret
	// and the finalizer goes.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "own", CreationPolicy: v1alpha1.CreationPolicyOwner}
	})
	for range 2 {
		h.reconcile("tok")
	}
	o = h.attack8WantForeignKept("retarget to an owned Secret", "tok")
	if controllerutil.ContainsFinalizer(o, Finalizer) {
		t.Fatalf("the %s finalizer stayed after the retarget: %v", Finalizer, o.Finalizers)
	}
	if o.Status.SecretName != "own" {
		t.Fatalf("status.secretName %q after the retarget, want own", o.Status.SecretName)
	}

	// And back to the user's Secret: the finalizer again.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "app", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	h.reconcile("tok")
	o = h.attack8WantForeignKept("retarget back to Merge", "tok")
	if !controllerutil.ContainsFinalizer(o, Finalizer) {
		t.Fatalf("no %s finalizer after retargeting back to Merge: %v", Finalizer, o.Finalizers)
	}

	// Deletion: tokensync's finalizer goes, the object stays (another
	// finalizer holds it) with its foreign metadata.
	if err := k8sClient.Delete(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(h.get("tok"))
	if err := h.reconcileErr("tok"); err != nil {
		t.Fatal(err)
	}
	o = h.attack8WantForeignKept("deletion", "tok")
	if controllerutil.ContainsFinalizer(o, Finalizer) {
		t.Fatalf("the %s finalizer stayed on deletion: %v", Finalizer, o.Finalizers)
	}
	if _, ok := h.secret("app").Data[v1alpha1.AccessTokenKey]; ok {
		t.Fatal("tokensync's keys stayed in the user's Secret after deletion")
	}
	release := []byte(`{"metadata":{"finalizers":null}}`)
	if err := k8sClient.Patch(h.ctx, o, client.RawPatch(types.MergePatchType, release)); err != nil {
		t.Fatal(err)
	}
}

// TestAttack8_OwnKeepsExactlyTheOwnPrefix: the cache keeps the annotations
// whose key starts with exactly "oauth.tokensync.io/" (annotation keys are
// case-sensitive), and none that only look like it.
func TestAttack8_OwnKeepsExactlyTheOwnPrefix(t *testing.T) {
	kept := []string{
		v1alpha1.RefreshRequestedAnnotation,
		"oauth.tokensync.io/whatever",
		"oauth.tokensync.io/a.b-c_d",
	}
	dropped := []string{
		"oauth.tokensync.io.evil/x",
		"oauth.tokensync.io",
		"OAUTH.tokensync.io/x",
		"Oauth.Tokensync.Io/x",
		"x.oauth.tokensync.io/y",
		"tokensync.io/refresh-requested-at",
		"auth.tokensync.io/x",
		"refresh-requested-at",
		"example.com/oauth.tokensync.io/x",
		" oauth.tokensync.io/x",
	}
	in := map[string]string{}
	for _, k := range append(slices.Clone(kept), dropped...) {
		in[k] = "v-" + k
	}
	got := own(maps.Clone(in))
	want := map[string]string{}
	for _, k := range kept {
		want[k] = in[k]
	}
	if !maps.Equal(got, want) {
		t.Fatalf("own kept %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if got := own(map[string]string{"x.oauth.tokensync.io/y": "1"}); got != nil {
		t.Fatalf("own of foreign annotations only = %v, want nil", got)
	}

	// Through the transform (which also drops kubectl's last-applied
	// copy): only ours remain.
	o := &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: "ns", Annotations: maps.Clone(in)}}
	o.Annotations[lastApplied] = "{}"
	slimWith(intern.New(1024), o)
	if !maps.Equal(o.Annotations, want) {
		t.Fatalf("cached annotations %v, want %v", slices.Sorted(maps.Keys(o.Annotations)), slices.Sorted(maps.Keys(want)))
	}
}

// attack8ManyForeign are 100 annotations tokensync does not read.
func attack8ManyForeign() map[string]string {
	m := map[string]string{}
	for i := range 100 {
		m[fmt.Sprintf("tenant.example.com/a%03d", i)] = fmt.Sprintf("value %d", i)
	}
	return m
}

// attack8Patch merge-patches the live object's annotations (a nil value
// removes one) as a tenant's kubectl would.
func attack8Patch(t *testing.T, o *v1alpha1.OAuthClientToken, annotations map[string]any) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Patch(context.Background(), o, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// TestAttack8_EachRefreshRequestOnceAndForeignChangesNone runs the whole
// controller on an object that carries 100 annotations tokensync does not
// read: each refresh request (set, changed, set back to an earlier value,
// set in the same patch as a foreign change) gets exactly one token and
// is recorded in status; removing it, or changing only foreign
// annotations (edited, added, removed, all of them), queues no token, and
// the foreign-only changes no reconcile at all. A tenant's own
// oauth.tokensync.io/ annotation is kept and reconciled, harmlessly: no
// write, no token.
func TestAttack8_EachRefreshRequestOnceAndForeignChangesNone(t *testing.T) {
	h := newHarness(t)
	id := "attack8-refresh-" + h.ns
	h.createCreds("creds", id, "s3cret")
	run := startController(t, h.ns)
	delta := run.counter(tokenSrv, id)
	get := func() *v1alpha1.OAuthClientToken { return h.get("tok") }
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) { o.Annotations = attack8ManyForeign() })
	run.waitReady(get)
	wantCounts(t, "first token", delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})

	request := func(what, value string, extra map[string]any) {
		t.Helper()
		a := map[string]any{v1alpha1.RefreshRequestedAnnotation: value}
		maps.Copy(a, extra)
		attack8Patch(t, get(), a)
		run.poll(what, func() bool { return get().Status.LastHandledRefreshRequest == value })
		run.quiesce()
		wantCounts(t, what, delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})
	}
	foreign := func(what string, a map[string]any) {
		t.Helper()
		attack8Patch(t, get(), a)
		run.quiesce()
		wantCounts(t, what, delta(), counts{})
	}

	request("refresh requested", "one", nil)
	request("refresh request changed", "two", nil)
	foreign("a foreign annotation edited", map[string]any{"tenant.example.com/a007": "edited"})
	foreign("a foreign annotation added", map[string]any{"meta.helm.sh/release-name": "payments"})
	foreign("a foreign annotation removed", map[string]any{"tenant.example.com/a008": nil})

	// Removed: reconciled (ours changed), nothing requested or written.
	run.after("the removal to be reconciled", func() {
		attack8Patch(t, get(), map[string]any{v1alpha1.RefreshRequestedAnnotation: nil})
	})
	wantCounts(t, "refresh request removed", delta(), counts{reconciles: 1})
	if v := get().Status.LastHandledRefreshRequest; v != "two" {
		t.Fatalf("lastHandledRefreshRequest %q after the removal, want two", v)
	}

	request("refresh request set back to an earlier value", "one", nil)
	request("refresh request with a foreign change in the same patch", "three",
		map[string]any{"tenant.example.com/a009": "edited too", "argocd.argoproj.io/tracking-id": "x"})

	// A tenant's bogus annotation under our prefix: kept in the cache, so
	// reconciled, but nothing is written or requested.
	run.after("the bogus annotation to be reconciled", func() {
		attack8Patch(t, get(), map[string]any{"oauth.tokensync.io/whatever": strings.Repeat("w", 100<<10)})
	})
	if d := delta(); d.reconciles != 1 || d.writes != 0 || d.tokens != 0 {
		t.Fatalf("a tenant's oauth.tokensync.io/whatever: %+v, want one reconcile, no write, no token", d)
	}

	// Every foreign annotation removed at once (a Helm uninstall of the
	// metadata): the cache sees no change, so no reconcile.
	all := map[string]any{"meta.helm.sh/release-name": nil, "argocd.argoproj.io/tracking-id": nil}
	for k := range get().Annotations {
		if !strings.HasPrefix(k, "oauth.tokensync.io/") {
			all[k] = nil
		}
	}
	foreign("every foreign annotation removed", all)
	o := get()
	if len(o.Annotations) != 2 || o.Annotations[v1alpha1.RefreshRequestedAnnotation] != "three" || o.Status.LastHandledRefreshRequest != "three" {
		t.Fatalf("after removing the foreign annotations: annotations %v, lastHandled %q", slices.Sorted(maps.Keys(o.Annotations)), o.Status.LastHandledRefreshRequest)
	}
	if n := len(issuedTo(tokenSrv, id)); n != 5 {
		t.Fatalf("%d tokens issued, want 5 (the first, and one per refresh request)", n)
	}
}
