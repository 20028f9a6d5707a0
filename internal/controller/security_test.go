package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

func TestTokenURLAllowlist(t *testing.T) {
	h := newHarness(t)
	allow, err := oauth.ParseHostAllowlist("*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	h.r.TokenURLAllowlist = allow
	h.createCreds("creds", "allow-client", "allow-secret")
	before := tokenSrv.Requests()
	o := h.createToken("outside", "creds", nil) // the test server on 127.0.0.1
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)
	if !strings.Contains(c.Message, "127.0.0.1") || !strings.Contains(c.Message, "*.example.com") {
		t.Fatalf("message %q", c.Message)
	}
	if tokenSrv.Requests() != before {
		t.Fatal("a request was sent to a host outside the allowlist")
	}
	// Issuer URLs are checked too.
	o2 := h.createToken("issuer", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL, o.Spec.Provider.IssuerURL = "", "https://login.example.org"
	})
	h.reconcile(o2.Name)
	wantCondition(t, h.get(o2.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)

	// Once the admin allows the host, the same object works.
	allow, _ = oauth.ParseHostAllowlist("*.example.com,127.0.0.0/8")
	h.r.TokenURLAllowlist = allow
	h.clock.Step(2 * 60 * 60 * 1e9)
	h.reconcile(o.Name)
	wantReady(h, o.Name)
}

func TestMetadataAddressesAreRefused(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "imds-client", "imds-secret")
	for name, u := range map[string]string{
		"aws":  "https://169.254.169.254/latest/api/token",
		"ipv6": "https://[fd00:ec2::254]/token",
	} {
		o := h.createToken(name, "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = u })
		h.reconcile(o.Name)
		c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTokenURLNotAllowed)
		if !strings.Contains(c.Message, "metadata") {
			t.Fatalf("%s: message %q", name, c.Message)
		}
	}
}
