//go:build zitadel

// Package zitadel runs tokensync's token client against an independent
// RFC 8693 server, zitadel/oidc's OpenID Provider (test/zitadel/harness),
// with ServiceAccount-shaped subject tokens. Not part of CI; see README.md.
package zitadel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

const audience = "https://zitadel.test"

var subject = tokenserver.ServiceAccountSubject("team-a", "payments")

// startHarness runs the harness, trusting saIssuer (CA file caFile, if
// any), and returns its issuer URL.
func startHarness(t *testing.T, saIssuer, caFile string) string {
	t.Helper()
	return testutil.StartZitadelHarness(t, filepath.Join("..", "..", "bin", "zitadel-harness"), saIssuer, caFile, audience, subject)
}

// exchange runs the client's token exchanges against a harness that
// trusts the issuer of mint's tokens.
func exchange(t *testing.T, issuer string, mint func(sub, aud string) string) {
	ctx := context.Background()
	c := &oauth.Client{}
	md, err := (&oauth.Discovery{Client: c}).TokenEndpoint(ctx, oauth.DiscoveryRequest{IssuerURL: strings.TrimSuffix(issuer, "/") + "/"})
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	req := func(sa string, m oauth.AuthMethod, secret string) oauth.Request {
		return oauth.Request{TokenURL: md.TokenEndpoint, AuthMethod: m, ClientID: "web", ClientSecret: secret, SubjectToken: sa, RequestedTokenType: oauth.TokenTypeAccessToken}
	}
	sa := mint(subject, audience)
	// zitadel reads token-exchange client credentials from the Basic
	// header only (ParseTokenExchangeRequest): body credentials are refused.
	if _, err := c.Token(ctx, req(sa, oauth.AuthMethodPost, "secret")); err == nil {
		t.Error("ClientSecretPost worked; zitadel now reads body credentials: test it as a success")
	} else if oe, _ := oauth.AsError(err); oe == nil || oe.Code != "invalid_client" {
		t.Errorf("ClientSecretPost: %v", err)
	}
	for _, m := range []oauth.AuthMethod{oauth.AuthMethodBasic, oauth.AuthMethodAuto} {
		tok, err := c.Token(ctx, req(sa, m, "secret"))
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if tok.IssuedTokenType != oauth.TokenTypeAccessToken || tok.AccessToken == "" || tok.ExpiresAt.IsZero() {
			t.Fatalf("%s: issued %q, expires %s", m, tok.IssuedTokenType, tok.ExpiresAt)
		}
	}
	for name, tc := range map[string]struct {
		req  oauth.Request
		code string
	}{
		"another subject":  {req(mint(tokenserver.ServiceAccountSubject("team-a", "other"), audience), oauth.AuthMethodBasic, "secret"), "invalid_request"},
		"another audience": {req(mint(subject, "https://elsewhere.test"), oauth.AuthMethodBasic, "secret"), "invalid_request"},
		"wrong secret":     {req(sa, oauth.AuthMethodBasic, "wrong"), "invalid_client"},
	} {
		_, err := c.Token(ctx, tc.req)
		oe, ok := oauth.AsError(err)
		if !ok || oe.Kind != oauth.KindRejected || oe.Code != tc.code {
			t.Errorf("%s: got %v, want a rejection with %s", name, err, tc.code)
		}
		if err != nil && strings.Contains(err.Error(), tc.req.SubjectToken) {
			t.Errorf("%s: the error quotes the subject token", name)
		}
	}
}

func TestTokenExchangeWithStandInIssuer(t *testing.T) {
	iss, err := tokenserver.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	issuer := startHarness(t, iss.URL, "")
	exchange(t, issuer, func(sub, aud string) string {
		tok, err := iss.Mint(tokenserver.Claims{Subject: sub, Audience: []string{aud}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	})
}

func TestTokenExchangeWithEnvtestServiceAccount(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set")
	}
	env := &envtest.Environment{}
	dir := t.TempDir()
	sai, err := testutil.ConfigureServiceAccountIssuer(env, dir, audience)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	if err := testutil.AllowAnonymousIssuerDiscovery(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, cfg.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	issuer := startHarness(t, sai.URL, caFile)
	exchange(t, issuer, func(sub, aud string) string {
		ns, name, _ := strings.Cut(strings.TrimPrefix(sub, "system:serviceaccount:"), ":")
		tok, err := testutil.ServiceAccountToken(ctx, cfg, ns, name, aud, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	})
}
