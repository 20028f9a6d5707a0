package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/controller/provider"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
	"github.com/tokensync/tokensync/test/tokenserver"
)

func (e *providerEnv) providerChecker() *provider.Reconciler {
	return &provider.Reconciler{
		Client: mgrClient, API: mgrAPI, URLs: e.r.URLs,
		Discovery:        &oauth.Discovery{Client: &oauth.Client{HTTPClient: httpClient, Now: e.clock.Now}},
		ClusterNamespace: e.platform,
	}
}

func (e *providerEnv) clusterProviderStatus(c *provider.Reconciler, name string) *v1alpha1.ClusterOAuthProvider {
	e.t.Helper()
	if _, err := c.ReconcileCluster(e.ctx, name); err != nil {
		e.t.Fatal(err)
	}
	p := &v1alpha1.ClusterOAuthProvider{}
	if err := k8sClient.Get(e.ctx, types.NamespacedName{Name: name}, p); err != nil {
		e.t.Fatal(err)
	}
	e.syncCache(p)
	return p
}

func wantProviderCondition(t *testing.T, conds []metav1.Condition, condType string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	c := apimeta.FindStatusCondition(conds, condType)
	if c == nil || c.Status != status || c.Reason != reason {
		t.Fatalf("%s = %+v, want %s/%s", condType, c, status, reason)
	}
}

func providerKstatus(t *testing.T, o client.Object) kstatus.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: m})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func TestProviderStatusReadyWithCredentials(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	p := e.clusterProvider("provider-status", nil)
	if providerKstatus(t, p) != kstatus.InProgressStatus {
		t.Fatalf("kstatus before the first check = %s, want InProgress", providerKstatus(t, p))
	}
	got := e.clusterProviderStatus(e.providerChecker(), p.Name)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProviderReady)
	if got.Status.ObservedGeneration != got.Generation || got.Status.TokenEndpoint != oauth.RedactedURL(tokenURL) {
		t.Fatalf("status %+v", got.Status)
	}
	if providerKstatus(t, got) != kstatus.CurrentStatus {
		t.Fatalf("kstatus = %s, want Current", providerKstatus(t, got))
	}
	if n := len(e.issued("provider-status")); n != 0 {
		t.Fatalf("checking a provider requested %d tokens", n)
	}
}

func TestProviderStatusCredentialsMissing(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	p := e.clusterProvider("provider-status-missing", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.CredentialsRef = &v1alpha1.CredentialsReference{Name: "absent"}
	})
	got := e.clusterProviderStatus(e.providerChecker(), p.Name)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsNotFound)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonCredentialsNotFound)
	if providerKstatus(t, got) != kstatus.FailedStatus {
		t.Fatalf("kstatus = %s, want Failed", providerKstatus(t, got))
	}

	// A Secret without the key the grant needs.
	q := e.clusterProvider("provider-status-key", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Name += "-key"
		p.Spec.Grant = v1alpha1.GrantPassword
	})
	got = e.clusterProviderStatus(e.providerChecker(), q.Name)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsKeyMissing)
	for _, c := range got.Status.Conditions {
		if c.Message == "" || containsSecret(c.Message) {
			t.Fatalf("condition message %q", c.Message)
		}
	}
}

func containsSecret(s string) bool { return strings.Contains(s, "cl:ster/+secret") }

func TestProviderStatusDiscovery(t *testing.T) {
	e := newProviderEnv(t, providers.Policy{})
	_, base := providerServer(e.harness, tokenserver.Options{Discovery: "openid", Path: "/oauth2/token"})
	p := e.clusterProvider("provider-status-discovery", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Spec.TokenURL, p.Spec.IssuerURL = "", base
	})
	got := e.clusterProviderStatus(e.providerChecker(), p.Name)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProviderReady)
	if got.Status.TokenEndpoint != base+"/oauth2/token" {
		t.Fatalf("tokenEndpoint = %q, want the discovered %s/oauth2/token", got.Status.TokenEndpoint, base)
	}
	// An issuer whose discovery fails is not Ready.
	q := e.clusterProvider("provider-status-nodiscovery", func(p *v1alpha1.ClusterOAuthProvider) {
		p.Name += "-none"
		_, plain := providerServer(e.harness, tokenserver.Options{})
		p.Spec.TokenURL, p.Spec.IssuerURL = "", plain
	})
	got = e.clusterProviderStatus(e.providerChecker(), q.Name)
	wantProviderCondition(t, got.Status.Conditions, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDiscoveryFailed)
}

// TestClusterProviderSamplesAreAccepted applies the ClusterOAuthProvider
// sample of every seed provider, and checks that it describes the same
// endpoint as that provider's inline sample.
func TestClusterProviderSamplesAreAccepted(t *testing.T) {
	h := newHarness(t)
	inline, err := filepath.Glob(filepath.Join("..", "..", "..", "config", "samples", "oauth_v1alpha1_oauthclienttoken_*.yaml"))
	if err != nil || len(inline) < 5 {
		t.Fatalf("inline samples: %d (%v)", len(inline), err)
	}
	for _, f := range inline {
		seed := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "oauth_v1alpha1_oauthclienttoken_"), ".yaml")
		t.Run(seed, func(t *testing.T) {
			o := &v1alpha1.OAuthClientToken{}
			readYAML(t, f, o)
			p := &v1alpha1.ClusterOAuthProvider{}
			readYAML(t, filepath.Join("..", "..", "..", "config", "samples", "providers", "oauth_v1alpha1_clusteroauthprovider_"+seed+".yaml"), p)
			if !equality.Semantic.DeepEqual(p.Spec.ProviderSpec, o.Spec.Provider) || p.Spec.CredentialsRef.Name != o.Spec.CredentialsRef.Name {
				t.Fatalf("the ClusterOAuthProvider sample drifted from the inline one:\n%+v\n%+v", p.Spec.ProviderSpec, o.Spec.Provider)
			}
			if len(p.Spec.Conditions) == 0 {
				t.Fatal("the sample lets every namespace use the provider")
			}
			p.Name = h.ns + "-" + p.Name
			if err := k8sClient.Create(h.ctx, p); err != nil {
				t.Fatalf("refused by the API server: %v", err)
			}
			t.Cleanup(func() { _ = k8sClient.Delete(h.ctx, p) })
		})
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
