package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// TestSamplesAreAccepted applies every sample in config/samples to the real
// API server: a sample that admission refuses is a broken promise.
func TestSamplesAreAccepted(t *testing.T) {
	h := newHarness(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "oauth_v1alpha1_*.yaml"))
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
