package token

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// attack6APISecrets reads Secrets from the API server and everything else
// from the manager's cache: the reconciler as it behaves without the
// cache's fold (with a cache that is never behind).
type attack6APISecrets struct{ client.Client }

func (c attack6APISecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		return k8sClient.Get(ctx, key, obj, opts...)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// attack6Scenario edits the target Secret of "tok" by hand, step by step,
// while its token renews, and returns what each step left: the Secret
// (tokens named by their order of issue), the Ready condition, the
// reconcile error, the token requests and the writes so far.
func attack6Scenario(t *testing.T, folded bool) []string {
	return attack6Run(t, folded, &v1alpha1.TargetSpec{Labels: map[string]v1alpha1.LabelValue{"team": "a"}}, attack6DefaultKeysSteps)
}

// attack6Steps drives one scenario: edit, recreate and step as below.
type attack6Steps func(h *harness, edit func(func(*corev1.Secret)), recreate func(func(*corev1.Secret)), step func(string))

func attack6Run(t *testing.T, folded bool, target *v1alpha1.TargetSpec, steps attack6Steps) []string {
	h := newHarness(t)
	if !folded {
		counted := &countingClient{Client: attack6APISecrets{mgrClient}, n: &h.writes.n}
		h.r = newReconciler(counted, &oauth.Client{HTTPClient: httpClient, Now: h.clock.Now}, h.recorder, h.clock)
	}
	id := fmt.Sprintf("attack6-%v-%s", folded, h.ns)
	h.createCreds("creds", id, "s3cret")
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = target.DeepCopy()
	})
	var trace []string
	edit := func(change func(s *corev1.Secret)) {
		t.Helper()
		s := h.secretOrNil("tok")
		if s == nil {
			t.Fatal("no Secret to edit")
		}
		change(s)
		if err := k8sClient.Update(h.ctx, s); err != nil {
			t.Fatal(err)
		}
		h.syncCache(s)
	}
	recreate := func(change func(s *corev1.Secret)) {
		t.Helper()
		old := h.secretOrNil("tok")
		if err := k8sClient.Delete(h.ctx, old); err != nil {
			t.Fatal(err)
		}
		h.syncCache(old)
		if change == nil {
			return
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: h.ns}}
		change(s)
		if err := k8sClient.Create(h.ctx, s); err != nil {
			t.Fatal(err)
		}
		h.syncCache(s)
	}
	step := func(name string) {
		t.Helper()
		err := h.reconcileErr("tok")
		h.syncCache(h.get("tok"), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tok", Namespace: h.ns}})
		issued := h.issued(id)
		var b strings.Builder
		fmt.Fprintf(&b, "%s: requests=%d writes=%d", name, len(issued), h.writes.n.Load())
		if err != nil {
			fmt.Fprintf(&b, " error=%q", strings.ReplaceAll(err.Error(), h.ns, "NS"))
		}
		if c := condition(h.get("tok"), v1alpha1.ConditionReady); c != nil {
			fmt.Fprintf(&b, " ready=%s/%s", c.Status, c.Reason)
		}
		s := h.secretOrNil("tok")
		if s == nil {
			b.WriteString(" secret=absent")
			trace = append(trace, b.String())
			return
		}
		var data []string
		for k, v := range s.Data {
			val := string(v)
			if k == v1alpha1.AccessTokenKey || k == "token" {
				val = "untracked"
				for i, it := range issued {
					if it.AccessToken == string(v) {
						val = fmt.Sprintf("token#%d", i+1)
					}
				}
			}
			data = append(data, k+"="+val)
		}
		slices.Sort(data)
		var ann []string
		for k, v := range s.Annotations {
			switch k {
			case v1alpha1.OwnerAnnotation, v1alpha1.OriginAnnotation, v1alpha1.TokenTypeAnnotation, v1alpha1.IssuedAtAnnotation,
				v1alpha1.ExpiresAtAnnotation, v1alpha1.RenewAtAnnotation, "example.com/note", "access_token":
				ann = append(ann, k+"="+v)
			default:
				ann = append(ann, k)
			}
		}
		slices.Sort(ann)
		var labels []string
		for k, v := range s.Labels {
			labels = append(labels, k+"="+v)
		}
		slices.Sort(labels)
		fmt.Fprintf(&b, " data=%v annotations=%v labels=%v ownerRefs=%d", data, ann, labels, len(s.OwnerReferences))
		trace = append(trace, b.String())
	}

	steps(h, edit, recreate, step)
	return trace
}

func attack6DefaultKeysSteps(h *harness, edit func(func(*corev1.Secret)), recreate func(func(*corev1.Secret)), step func(string)) {
	step("issued")
	h.clock.Step(10 * time.Minute)
	step("no-op")
	edit(func(s *corev1.Secret) {
		delete(s.Data, v1alpha1.TokenTypeKey)
		s.Data[v1alpha1.ExpiresAtKey] = []byte("edited")
		s.Data["extra"] = []byte{0, 255}
		s.Data["oauth.tokensync.io"] = []byte("a data key spelled like an annotation prefix")
		s.Annotations["example.com/note"] = "foreign"
		s.Annotations["access_token"] = "an annotation spelled like a coded data key"
		delete(s.Annotations, v1alpha1.RenewAtAnnotation)
		s.Labels["team"] = "b"
	})
	step("keys edited and added")
	edit(func(s *corev1.Secret) { s.Annotations[v1alpha1.ConfigHashAnnotation] = "tampered" })
	step("signed annotation edited")
	edit(func(s *corev1.Secret) { delete(s.Labels, v1alpha1.ManagedLabel) })
	step("managed label removed")
	edit(func(s *corev1.Secret) { s.Labels[v1alpha1.ManagedLabel] = "true" })
	step("managed label back")
	h.clock.Step(45 * time.Minute)
	step("renewed")
	copyOf := h.secretOrNil("tok").DeepCopy()
	recreate(func(s *corev1.Secret) {
		s.Labels, s.Annotations, s.Data = copyOf.Labels, copyOf.Annotations, copyOf.Data
	})
	step("recreated as a copy without the ownerReference")
	recreate(func(s *corev1.Secret) {
		s.Labels = map[string]string{v1alpha1.ManagedLabel: "true"}
		s.Data = map[string][]byte{"user": []byte("mine")}
	})
	step("recreated by a user")
	recreate(nil)
	step("deleted")
	h.clock.Step(55 * time.Minute)
	step("renewed again")
}

// TestAttack6_LiveEditsSameWithAndWithoutFold: the same hand edits of a
// managed target Secret, while its token renews, end the same (Secret,
// Ready, errors, token requests, writes) with the manager's folded cache
// as when the reconciler reads every Secret from the API server.
func TestAttack6_LiveEditsSameWithAndWithoutFold(t *testing.T) {
	attack6Compare(t, attack6Scenario(t, true), attack6Scenario(t, false))
}

// TestAttack6_EmptyTemplateKeySameWithAndWithoutFold: a templated target
// whose key renders empty (the scope of a token granted no scope), its
// labels repaired by hand edits (a write with the token Inspect read back
// from the cache), ends the same with the fold as without.
func TestAttack6_EmptyTemplateKeySameWithAndWithoutFold(t *testing.T) {
	target := &v1alpha1.TargetSpec{Labels: map[string]v1alpha1.LabelValue{"team": "a"},
		Data: map[string]v1alpha1.DataTemplate{"token": "{{ .AccessToken }}", "scope": "{{ .Scope }}", "literal-empty": ""}}
	steps := func(h *harness, edit func(func(*corev1.Secret)), recreate func(func(*corev1.Secret)), step func(string)) {
		step("issued")
		h.clock.Step(10 * time.Minute)
		step("no-op")
		edit(func(s *corev1.Secret) { s.Labels["team"] = "b" })
		step("label edited")
		step("again")
		edit(func(s *corev1.Secret) { s.Annotations["example.com/note"] = "x" })
		step("foreign annotation")
		h.clock.Step(45 * time.Minute)
		step("renewed")
		edit(func(s *corev1.Secret) { s.Labels["team"] = "c" })
		step("label edited after renewal")
		step("again after renewal")
	}
	attack6Compare(t, attack6Run(t, true, target, steps), attack6Run(t, false, target, steps))
}

func attack6Compare(t *testing.T, withFold, without []string) {
	t.Helper()
	for i := range max(len(withFold), len(without)) {
		var a, b string
		if i < len(withFold) {
			a = withFold[i]
		}
		if i < len(without) {
			b = without[i]
		}
		t.Logf("folded:   %s", a)
		if a != b {
			t.Errorf("step %d differs:\n folded cache: %s\n API server:   %s", i, a, b)
		}
	}
}
