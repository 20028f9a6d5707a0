package oauth

import (
	"context"
	"crypto"
	"crypto/tls"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

func fixedClock() time.Time { return fixedNow }

func mustToken(t *testing.T, c *Client, req Request) *Token {
	t.Helper()
	tok, err := c.Token(context.Background(), req)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("empty access token")
	}
	return tok
}

func mustFail(t *testing.T, c *Client, req Request) *Error {
	t.Helper()
	_, err := c.Token(context.Background(), req)
	if err == nil {
		t.Fatal("Token succeeded, want an error")
	}
	oe, ok := AsError(err)
	if !ok {
		t.Fatalf("error %T is not *Error", err)
	}
	return oe
}

func TestJSONRequestFormat(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{RequireJSON: true, ExpiresIn: 60, RequiredResources: []string{"https://a.example/", "https://b.example/"}})
	req := Request{TokenURL: u, AuthMethod: AuthMethodPost, ClientID: testID, ClientSecret: testSecret, Format: FormatJSON,
		Scopes: []string{"read", "write"}, Resources: []string{"https://a.example/", "https://b.example/"}}
	tok := mustToken(t, testClient(), req)
	last := srv.LastRequest()
	if !last.JSON {
		t.Fatal("request body was not JSON")
	}
	if got := last.Header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type %q", got)
	}
	if got := last.Form["resource"]; !slices.Equal(got, req.Resources) {
		t.Fatalf("resources %v", got)
	}
	if last.Form.Get("scope") != "read write" || last.Form.Get("grant_type") != "client_credentials" || last.Form.Get("client_secret") != testSecret {
		t.Fatalf("unexpected parameters %v", slices.Sorted(func(yield func(string) bool) {
			for k := range last.Form {
				if !yield(k) {
					return
				}
			}
		}))
	}
	if tok.ExpiresIn != 60*time.Second {
		t.Fatalf("ExpiresIn %s", tok.ExpiresIn)
	}
	// The same server refuses form bodies: the format is what made it work.
	e := mustFail(t, testClient(), Request{TokenURL: u, AuthMethod: AuthMethodPost, ClientID: testID, ClientSecret: testSecret, Resources: req.Resources})
	if e.Code != "invalid_request" {
		t.Fatalf("form request: %v", e)
	}
}

func TestJSONWithBasicCredentials(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{RequireJSON: true, AllowBasic: true})
	mustToken(t, testClient(), Request{TokenURL: u, AuthMethod: AuthMethodBasic, ClientID: testID, ClientSecret: testSecret, Format: FormatJSON})
	if last := srv.LastRequest(); !last.JSON || last.AuthMethod != tokenserver.AuthBasic || last.Form.Has("client_secret") {
		t.Fatalf("want a JSON body with Basic credentials, got JSON=%v auth=%s", last.JSON, last.AuthMethod)
	}
}

func TestGrantTypeLiteralAndPathParameters(t *testing.T) {
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}, GrantType: "CLIENT_CREDENTIALS", Path: "/digitalwallets/v1/auth/brands/liberty/token", AllowBasic: true})
	base, stop := srv.Start()
	t.Cleanup(stop)
	u := base + "/digitalwallets/v1/auth/brands/liberty/token"
	req := Request{TokenURL: u, AuthMethod: AuthMethodBasic, ClientID: testID, ClientSecret: testSecret, GrantType: "CLIENT_CREDENTIALS"}
	mustToken(t, testClient(), req)
	if last := srv.LastRequest(); last.Path != "/digitalwallets/v1/auth/brands/liberty/token" || last.Form.Get("grant_type") != "CLIENT_CREDENTIALS" {
		t.Fatalf("path %q grant_type %q", last.Path, last.Form.Get("grant_type"))
	}
	// The standard spelling is refused by this server.
	req.GrantType = ""
	if e := mustFail(t, testClient(), req); e.Code != "unsupported_grant_type" {
		t.Fatalf("standard grant type: %v", e)
	}
	// Another brand is another path: 404, not a mangled URL.
	req.GrantType, req.TokenURL = "CLIENT_CREDENTIALS", base+"/digitalwallets/v1/auth/brands/other/token"
	if e := mustFail(t, testClient(), req); e.StatusCode != http.StatusNotFound {
		t.Fatalf("other path: %v", e)
	}
}

func TestHeadersAreSent(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{RequiredHeaders: map[string]string{"X-Api-Version": "2024-01"}})
	req := Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret}
	if e := mustFail(t, testClient(), req); e.Code != "invalid_request" {
		t.Fatalf("without header: %v", e)
	}
	req.Headers = map[string]string{"X-Api-Version": "2024-01"}
	mustToken(t, testClient(), req)
	if srv.LastRequest().Header.Get("X-Api-Version") != "2024-01" {
		t.Fatal("header not sent")
	}
	req.Headers = map[string]string{"authorization": "Bearer x"}
	if e := mustFail(t, testClient(), req); e.Kind != KindConfig {
		t.Fatalf("Authorization header: %v", e)
	}
}

func TestPasswordGrant(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{Users: map[string]string{"alice": "pa:ss/w+rd"}, PasswordGrantType: "PASSWORD", IssueRefreshTokens: true})
	req := Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, GrantType: "PASSWORD", Username: "alice", Password: "pa:ss/w+rd"}
	tok := mustToken(t, testClient(), req)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if last := srv.LastRequest(); last.Form.Get("username") != "alice" || last.Form.Get("grant_type") != "PASSWORD" {
		t.Fatalf("form: grant_type=%q username=%q", last.Form.Get("grant_type"), last.Form.Get("username"))
	}
	req.Password = "wrong-password"
	e := mustFail(t, testClient(), req)
	if e.Code != "invalid_grant" || strings.Contains(e.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", e)
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{ExpiresIn: 300, IssueRefreshTokens: true, RefreshExpiresIn: 1800, RefreshGrantType: "REFRESH_TOKEN", IDTokens: true})
	c := testClient()
	first := mustToken(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	if first.RefreshToken == "" || first.RefreshExpiresIn != 1800*time.Second || first.IDToken == "" {
		t.Fatalf("refresh token %t, lifetime %s, id token %t", first.RefreshToken != "", first.RefreshExpiresIn, first.IDToken != "")
	}
	second := mustToken(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, GrantType: "REFRESH_TOKEN", RefreshToken: first.RefreshToken})
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	issued := srv.Issued()
	if got := issued[len(issued)-1].GrantType; got != "REFRESH_TOKEN" {
		t.Fatalf("grant %q", got)
	}
	// The used refresh token is spent: invalid_grant, and never quoted.
	e := mustFail(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, GrantType: "REFRESH_TOKEN", RefreshToken: first.RefreshToken})
	if e.Code != "invalid_grant" || e.Kind != KindRejected || strings.Contains(e.Error(), first.RefreshToken) {
		t.Fatalf("spent refresh token: %v", e)
	}
}

func TestJWTExpiryWithoutExpiresIn(t *testing.T) {
	_, u := startTokenServer(t, tokenserver.Options{JWTAccessTokens: true, JWTLifetime: 864000, Now: fixedClock})
	tok := mustToken(t, testClient(), Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	if tok.ExpiresIn != 864000*time.Second || tok.ExpiresFrom != "jwt" {
		t.Fatalf("ExpiresIn %s from %q, want 240h from jwt", tok.ExpiresIn, tok.ExpiresFrom)
	}
	// expires_in wins when both are present.
	_, u = startTokenServer(t, tokenserver.Options{JWTAccessTokens: true, JWTLifetime: 864000, ExpiresIn: 600, Now: fixedClock})
	tok = mustToken(t, testClient(), Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	if tok.ExpiresIn != 600*time.Second || tok.ExpiresFrom != "expires_in" {
		t.Fatalf("ExpiresIn %s from %q", tok.ExpiresIn, tok.ExpiresFrom)
	}
}

func TestNestedResponseFields(t *testing.T) {
	_, u := startTokenServer(t, tokenserver.Options{ResponseWrapper: "data", ExpiresIn: 120, IssueRefreshTokens: true, RefreshExpiresIn: 900})
	req := Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret}
	// Without responseFields the wrapped body has no access_token.
	if e := mustFail(t, testClient(), req); e.Kind != KindInvalidResponse {
		t.Fatalf("unwrapped: %v", e)
	}
	req.ResponseFields = ResponseFields{AccessToken: "data.access_token", TokenType: "data.token_type", ExpiresIn: "data.expires_in", RefreshToken: "data.refresh_token", RefreshExpiresIn: "data.refresh_expires_in"}
	tok := mustToken(t, testClient(), req)
	if tok.ExpiresIn != 120*time.Second || tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.RefreshExpiresIn != 900*time.Second {
		t.Fatalf("token %s %s refresh=%t %s", tok.ExpiresIn, tok.TokenType, tok.RefreshToken != "", tok.RefreshExpiresIn)
	}
	req.ResponseFields.AccessToken = "result.token"
	e := mustFail(t, testClient(), req)
	if e.Kind != KindInvalidResponse || !strings.Contains(e.Description, `"result.token"`) {
		t.Fatalf("missing path: %v", e)
	}
}

func TestNestedExpiresInAsString(t *testing.T) {
	u, _ := startHandler(t, reply(200, "application/json", `{"result":{"token":"tok-123","ttl":"90"}}`))
	tok := mustToken(t, testClient(), Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, ResponseFields: ResponseFields{AccessToken: "result.token", ExpiresIn: "result.ttl"}})
	if tok.AccessToken != "tok-123" || tok.ExpiresIn != 90*time.Second {
		t.Fatalf("got %q %s", tok.AccessToken, tok.ExpiresIn)
	}
}

func TestSCAChallengeIsInteractionRequired(t *testing.T) {
	_, u := startTokenServer(t, tokenserver.Options{SCAChallenge: true, AllowBasic: true})
	e := mustFail(t, testClient(), Request{TokenURL: u, AuthMethod: AuthMethodBasic, ClientID: testID, ClientSecret: testSecret})
	if !e.InteractionRequired || e.Challenge != "SCA" || e.Kind != KindRejected || e.StatusCode != 401 {
		t.Fatalf("got %+v", e)
	}
	if strings.Contains(e.Error(), "auth-param1") || strings.Contains(e.Error(), "ewog") {
		t.Fatalf("the challenge parameters leaked into %q", e.Error())
	}
	// A Basic challenge is a credentials problem, not an interaction.
	_, u = startTokenServer(t, tokenserver.Options{})
	e = mustFail(t, testClient(), Request{TokenURL: u, AuthMethod: AuthMethodBasic, ClientID: testID, ClientSecret: "wrong-secret"})
	if e.InteractionRequired || e.Code != "invalid_client" {
		t.Fatalf("wrong secret: %+v", e)
	}
}

func TestChallengeScheme(t *testing.T) {
	for in, want := range map[string]string{
		`SCA realm="Authentication" auth-param1="x"`: "SCA",
		`Basic realm="x"`: "Basic",
		`  Bearer`:        "Bearer",
		`"quoted" x`:      "",
		``:                "",
	} {
		if got := challengeScheme([]string{in}); got != want {
			t.Errorf("challengeScheme(%q) = %q, want %q", in, got, want)
		}
	}
}

func newPKI(t *testing.T) (*tokenserver.CA, []byte, []byte) {
	t.Helper()
	ca, err := tokenserver.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.ClientCert("wallet-client")
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, key
}

func startTLS(t *testing.T, srv *tokenserver.Server, ca *tokenserver.CA) string {
	t.Helper()
	sc, err := ca.ServerCert("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	u, stop := srv.StartTLS(sc, ca.Pool())
	t.Cleanup(stop)
	return u
}

func TestMutualTLSClientAuth(t *testing.T) {
	ca, cert, key := newPKI(t)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}, TLSClientAuth: map[string]string{"wallet": "wallet-client"}})
	u := startTLS(t, srv, ca) + "/token"
	c := testClient()
	req := Request{TokenURL: u, AuthMethod: AuthMethodTLSClient, ClientID: "wallet", TLS: &TLSConfig{CAPEM: ca.CertPEM, CertPEM: cert, KeyPEM: key}}
	mustToken(t, c, req)
	if last := srv.LastRequest(); last.AuthMethod != tokenserver.AuthTLSClient || last.ClientCertCN != "wallet-client" || last.Form.Has("client_secret") {
		t.Fatalf("auth %q CN %q", last.AuthMethod, last.ClientCertCN)
	}
	// Secret-based clients work on the same server with just the CA.
	mustToken(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, TLS: &TLSConfig{CAPEM: ca.CertPEM}})
	// Without the CA the server is not trusted.
	if e := mustFail(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret}); e.Kind != KindTransient || !strings.Contains(e.Error(), "certificate") {
		t.Fatalf("untrusted server: %v", e)
	}
	// TLSClientAuth without a certificate is refused before sending.
	if e := mustFail(t, c, Request{TokenURL: u, AuthMethod: AuthMethodTLSClient, ClientID: "wallet", TLS: &TLSConfig{CAPEM: ca.CertPEM}}); e.Kind != KindConfig {
		t.Fatalf("no certificate: %v", e)
	}
	// A certificate that does not match its key is a config error that
	// quotes neither.
	_, otherKey, _ := func() (*tokenserver.CA, []byte, []byte) { return newPKI(t) }()
	e := mustFail(t, c, Request{TokenURL: u, AuthMethod: AuthMethodTLSClient, ClientID: "wallet", TLS: &TLSConfig{CAPEM: ca.CertPEM, CertPEM: cert, KeyPEM: otherKey}})
	if e.Kind != KindConfig || strings.Contains(e.Error(), "PRIVATE KEY") {
		t.Fatalf("mismatched key: %v", e)
	}
	if (&TLSConfig{CAPEM: []byte("not pem")}).Validate() == nil {
		t.Fatal("Validate accepted a CA bundle without certificates")
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	ca, _, _ := newPKI(t)
	tr, oerr := (&transports{}).get(NewHTTPClient().Transport, &TLSConfig{CAPEM: ca.CertPEM})
	if oerr != nil {
		t.Fatal(oerr)
	}
	cfg := tr.(*http.Transport).TLSClientConfig
	if cfg.MinVersion < tls.VersionTLS12 || cfg.InsecureSkipVerify {
		t.Fatalf("min version %x, skip verify %t", cfg.MinVersion, cfg.InsecureSkipVerify)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			signer, keyPEM, err := tokenserver.GenerateClientKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			srv, u := startTokenServer(t, tokenserver.Options{ClientKeys: map[string]crypto.PublicKey{"jwt-client": signer.Public()}})
			req := Request{TokenURL: u, AuthMethod: AuthMethodPrivateKeyJWT, ClientID: "jwt-client", PrivateKeyPEM: keyPEM, AssertionKeyID: "k1"}
			if alg == "PS256" {
				req.AssertionAlgorithm = "PS256"
			}
			c := &Client{HTTPClient: NewHTTPClient()} // real clock: the server checks exp
			mustToken(t, c, req)
			last := srv.LastRequest()
			if last.AuthMethod != tokenserver.AuthPrivateKeyJWT || last.AssertionHeader["alg"] != alg || last.AssertionHeader["kid"] != "k1" {
				t.Fatalf("auth %q header %v", last.AuthMethod, last.AssertionHeader)
			}
			// Each request has a fresh assertion (jti): a second one works.
			mustToken(t, c, req)
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		signer, _, _ := tokenserver.GenerateClientKey("ES256")
		_, otherPEM, _ := tokenserver.GenerateClientKey("ES256")
		_, u := startTokenServer(t, tokenserver.Options{ClientKeys: map[string]crypto.PublicKey{"jwt-client": signer.Public()}})
		e := mustFail(t, &Client{}, Request{TokenURL: u, AuthMethod: AuthMethodPrivateKeyJWT, ClientID: "jwt-client", PrivateKeyPEM: otherPEM})
		if e.Code != "invalid_client" || strings.Contains(e.Error(), "eyJ") {
			t.Fatalf("wrong key: %v", e)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		e := mustFail(t, &Client{}, Request{TokenURL: "https://example.invalid/token", AuthMethod: AuthMethodPrivateKeyJWT, ClientID: "c", PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")})
		if e.Kind != KindConfig || strings.Contains(e.Error(), "AAAA") {
			t.Fatalf("bad key: %v", e)
		}
	})
}

func TestDiscovery(t *testing.T) {
	for _, kind := range []string{"openid", "oauth"} {
		t.Run(kind, func(t *testing.T) {
			srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}, Discovery: kind, Path: "/oauth2/token"})
			base, stop := srv.Start()
			t.Cleanup(stop)
			now := fixedNow
			c := &Client{HTTPClient: NewHTTPClient(), Now: func() time.Time { return now }}
			d := &Discovery{Client: c}
			md, err := d.TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: base})
			if err != nil {
				t.Fatal(err)
			}
			if md.TokenEndpoint != base+"/oauth2/token" {
				t.Fatalf("token endpoint %q", md.TokenEndpoint)
			}
			mustToken(t, c, Request{TokenURL: md.TokenEndpoint, ClientID: testID, ClientSecret: testSecret})
			n := srv.DiscoveryRequests()
			if _, err := d.TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: base}); err != nil {
				t.Fatal(err)
			}
			if srv.DiscoveryRequests() != n {
				t.Fatal("the document was fetched again within the TTL")
			}
			now = now.Add(2 * time.Hour)
			if _, err := d.TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: base}); err != nil {
				t.Fatal(err)
			}
			if srv.DiscoveryRequests() == n {
				t.Fatal("the document was not fetched again after the TTL")
			}
		})
	}
	t.Run("no document", func(t *testing.T) {
		srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}, Path: "/token"})
		base, stop := srv.Start()
		t.Cleanup(stop)
		_, err := (&Discovery{}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: base})
		oe, ok := AsError(err)
		if !ok || oe.Kind != KindInvalidResponse || oe.StatusCode != http.StatusNotFound {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		u, _ := startHandler(t, reply(200, "application/json", `{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`))
		issuer := strings.TrimSuffix(u, "/token")
		_, err := (&Discovery{}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: issuer})
		if oe, ok := AsError(err); !ok || oe.Kind != KindInvalidResponse || !strings.Contains(oe.Description, "names issuer") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("well-known locations", func(t *testing.T) {
		got, _ := wellKnownURLs("https://id.example.com/tenant/v2/")
		want := []string{"https://id.example.com/tenant/v2/.well-known/openid-configuration", "https://id.example.com/.well-known/oauth-authorization-server/tenant/v2"}
		if !slices.Equal(got, want) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestAudienceAndResources(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{RequiredAudience: "https://api.example", RequiredResources: []string{"https://r1.example/"}})
	req := Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret}
	if e := mustFail(t, testClient(), req); e.Kind != KindRejected {
		t.Fatalf("without audience: %v", e)
	}
	req.Audience, req.Resources = "https://api.example", []string{"https://r1.example/"}
	mustToken(t, testClient(), req)
	issued := srv.Issued()
	if last := issued[len(issued)-1]; last.Audience != "https://api.example" || !slices.Equal(last.Resources, req.Resources) {
		t.Fatalf("issued for %q %v", last.Audience, last.Resources)
	}
	req.ExtraParams = map[string]string{"resource": "x"}
	if e := mustFail(t, testClient(), req); e.Kind != KindConfig {
		t.Fatalf("extra resource param: %v", e)
	}
}
