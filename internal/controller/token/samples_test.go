package token

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// TestSamplesAreAccepted applies every sample in config/samples to the real
// API server: a sample that admission refuses is a broken promise.
func TestSamplesAreAccepted(t *testing.T) {
	h := newHarness(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "config", "samples", "oauth_v1alpha1_*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("want a sample per provider document (5), found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o := &v1alpha1.OAuthClientToken{}
			if err := yaml.UnmarshalStrict(b, o); err != nil {
				t.Fatalf("not an OAuthClientToken: %v", err)
			}
			if u := o.Spec.Provider.TokenURL + o.Spec.Provider.IssuerURL; !strings.HasPrefix(u, "https://") {
				t.Fatalf("sample URL %q is not https", u)
			}
			o.Namespace = h.ns
			if err := k8sClient.Create(h.ctx, o); err != nil {
				t.Fatalf("refused by the API server: %v", err)
			}
		})
	}
}

// TestSamplesHaveNoPermanentDiff applies every sample as a GitOps tool does
// (server-side apply, a manifest as written) and checks what such a tool
// compares: every field of the manifest reads back unchanged from the live
// object (defaults only add fields, never rewrite one), and applying the
// same manifest again, as a server-side dry run, changes nothing.
func TestSamplesHaveNoPermanentDiff(t *testing.T) {
	h := newHarness(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "config", "samples", "oauth_v1alpha1_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			desired := map[string]any{}
			if err := yaml.Unmarshal(b, &desired); err != nil {
				t.Fatal(err)
			}
			desired["metadata"].(map[string]any)["namespace"] = h.ns
			u := &unstructured.Unstructured{Object: desired}
			live := u.DeepCopy()
			if err := k8sClient.Patch(h.ctx, live, client.Apply, client.FieldOwner("gitops"), client.ForceOwnership); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if path, ok := subsetOf(desired["spec"], live.Object["spec"], "spec"); !ok {
				t.Fatalf("the API server rewrote %s: desired %v, live spec %v", path, desired["spec"], live.Object["spec"])
			}
			again := u.DeepCopy()
			if err := k8sClient.Patch(h.ctx, again, client.Apply, client.FieldOwner("gitops"), client.ForceOwnership, client.DryRunAll); err != nil {
				t.Fatalf("dry-run apply: %v", err)
			}
			if !equality.Semantic.DeepEqual(again.Object["spec"], live.Object["spec"]) || again.GetGeneration() != live.GetGeneration() {
				t.Fatalf("re-applying the same manifest changes the object:\nlive  %v\nagain %v", live.Object["spec"], again.Object["spec"])
			}
		})
	}
}

// subsetOf reports whether every field of want is in got with the same
// value, and the first path that differs.
func subsetOf(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range w {
			if p, ok := subsetOf(v, g[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := subsetOf(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, equality.Semantic.DeepEqual(normalizeNumber(want), normalizeNumber(got))
	}
}

// normalizeNumber makes YAML's and JSON's number types comparable.
func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return v
}
