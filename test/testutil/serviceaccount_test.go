package testutil

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// A real ServiceAccount token from envtest's kube-apiserver, verified by
// the token server against the API server's own discovery document and
// JWKS, as client assertion and as token-exchange subject.
func TestServiceAccountTokenIsVerifiedAgainstTheAPIServer(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set (make test sets it)")
	}
	const aud = "https://tokenserver.test"
	env := &envtest.Environment{}
	issuer, err := ConfigureServiceAccountIssuer(env, t.TempDir(), aud)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	if err := AllowAnonymousIssuerDiscovery(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	sub := tokenserver.ServiceAccountSubject("team-a", "payments")
	srv := tokenserver.New(tokenserver.Options{
		TrustedIssuers:   []tokenserver.TrustedIssuer{issuer.TrustedIssuer(cfg.CAData, aud)},
		FederatedClients: map[string]tokenserver.FederatedClient{"payments": {Issuer: issuer.URL, Subject: sub}},
		ExchangePolicies: []tokenserver.ExchangePolicy{{Issuer: issuer.URL, Subject: sub, Audiences: []string{"https://api.example"}}},
	})
	base, stop := srv.Start()
	t.Cleanup(stop)
	token := func(name, audience string) string {
		t.Helper()
		tok, err := ServiceAccountToken(ctx, cfg, "team-a", name, audience, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	c := &oauth.Client{}
	sa := token("payments", aud)
	if _, err := c.Token(ctx, oauth.Request{TokenURL: base + "/token", AuthMethod: oauth.AuthMethodServiceAccountAssertion, ClientID: "payments", ClientAssertion: sa}); err != nil {
		t.Fatalf("client assertion: %v", err)
	}
	tok, err := c.Token(ctx, oauth.Request{TokenURL: base + "/token", AuthMethod: oauth.AuthMethodNone, SubjectToken: sa, Audience: "https://api.example"})
	if err != nil || tok.IssuedTokenType != oauth.TokenTypeAccessToken {
		t.Fatalf("token exchange: %v", err)
	}
	if srv.ClientRequests("payments") != 1 || srv.LastRequest().AuthMethod != tokenserver.AuthNone {
		t.Fatalf("ClientRequests %d", srv.ClientRequests("payments"))
	}
	// A token for the API server's audience, or of another account, is
	// refused; neither is quoted.
	for _, bad := range []string{token("payments", issuer.URL), token("other", aud)} {
		_, err := c.Token(ctx, oauth.Request{TokenURL: base + "/token", AuthMethod: oauth.AuthMethodServiceAccountAssertion, ClientAssertion: bad})
		oe, ok := oauth.AsError(err)
		if !ok || oe.Code != "invalid_client" || strings.Contains(err.Error(), bad) {
			t.Fatalf("got %v", err)
		}
	}
}
