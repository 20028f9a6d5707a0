package tokenserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const audience = "https://tokenserver.test"

var saSubject = ServiceAccountSubject("team-a", "payments")

func newIssuer(t *testing.T) *Issuer {
	t.Helper()
	iss, err := NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

func mint(t *testing.T, iss *Issuer, c Claims) string {
	t.Helper()
	if c.Subject == "" {
		c.Subject = saSubject
	}
	if c.Audience == nil {
		c.Audience = []string{audience}
	}
	tok, err := iss.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func federatedForm(assertion string, kv ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearerType}, "client_assertion": {assertion}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func federatedServer(t *testing.T, iss *Issuer, opts Options) (*Server, string) {
	t.Helper()
	opts.TrustedIssuers = append(opts.TrustedIssuers, TrustedIssuer{Issuer: iss.URL, Audience: audience})
	s := New(opts)
	return s, start(t, s)
}

func TestFederatedClientAuthentication(t *testing.T) {
	iss := newIssuer(t)
	s, u := federatedServer(t, iss, Options{Clients: clients(), FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}}})
	a := send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{}))}).want(t, 200, "")
	if !s.Valid(a.str("access_token")) {
		t.Fatal("the token was not issued here")
	}
	last := s.LastRequest()
	if last.AuthMethod != AuthFederated || last.Form.Has("client_secret") {
		t.Fatalf("auth method %q", last.AuthMethod)
	}
	if it := s.Issued(); len(it) != 1 || it[0].ClientID != "payments" || it[0].Subject != "payments" {
		t.Fatalf("issued %+v", it)
	}
	// client_id may be sent; it must be the subject's client.
	send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{}), "client_id", "payments")}).want(t, 200, "")
	if got := s.ClientRequests("payments"); got != 2 {
		t.Fatalf("ClientRequests = %d, want 2", got)
	}
	// A service account token is reusable within its lifetime (no jti
	// replay check, as identity providers federating Kubernetes do).
	tok := mint(t, iss, Claims{})
	send(t, http.DefaultClient, u, req{form: federatedForm(tok)}).want(t, 200, "")
	send(t, http.DefaultClient, u, req{form: federatedForm(tok)}).want(t, 200, "")
	// Secret clients keep working on the same server.
	send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "")
	if s.ClientRequests(id) != 1 {
		t.Fatalf("ClientRequests(%s) = %d", id, s.ClientRequests(id))
	}
	// The keys were fetched once: discovery and JWKS.
	if iss.Fetches() != 2 {
		t.Fatalf("issuer served %d documents, want 2", iss.Fetches())
	}
}

func TestFederatedClientChecks(t *testing.T) {
	iss := newIssuer(t)
	other := newIssuer(t)
	s, u := federatedServer(t, iss, Options{FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}}})
	s.RegisterFederatedClient("reports", FederatedClient{Issuer: iss.URL, Subject: ServiceAccountSubject("team-b", "reports")})
	now := time.Now()
	foreign, err := iss.MintForeign(Claims{Subject: saSubject, Audience: []string{audience}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		form url.Values
		desc string
	}{
		{"signed by another key", federatedForm(foreign), "signature does not verify"},
		{"another audience", federatedForm(mint(t, iss, Claims{Audience: []string{"https://kubernetes.default.svc"}})), "not valid here"},
		{"expired", federatedForm(mint(t, iss, Claims{IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-2 * time.Minute)})), "not valid here"},
		{"not valid yet", federatedForm(mint(t, iss, Claims{IssuedAt: now, NotBefore: now.Add(10 * time.Minute), Expiry: now.Add(time.Hour)})), "not valid here"},
		{"issued in the future", federatedForm(mint(t, iss, Claims{IssuedAt: now.Add(10 * time.Minute)})), "not valid here"},
		{"unknown subject", federatedForm(mint(t, iss, Claims{Subject: ServiceAccountSubject("team-a", "other")})), "not a federated client"},
		{"client_id of another subject", federatedForm(mint(t, iss, Claims{}), "client_id", "reports"), "not the federated client"},
		{"wrong assertion type", federatedForm(mint(t, iss, Claims{}), "client_assertion_type", "urn:x"), "client_assertion_type"},
		{"untrusted issuer", federatedForm(mint(t, other, Claims{})), "assertion"},
		{"iss of a trusted issuer, signed elsewhere", federatedForm(mint(t, other, Claims{Issuer: iss.URL})), "signature does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, http.DefaultClient, u, req{form: tc.form}).want(t, 401, "invalid_client")
			if !strings.Contains(a.str("error_description"), tc.desc) {
				t.Fatalf("description %q, want %q", a.str("error_description"), tc.desc)
			}
			if strings.Contains(a.raw, tc.form.Get("client_assertion")) || strings.Contains(a.raw, strings.Split(tc.form.Get("client_assertion"), ".")[2]) {
				t.Fatal("the answer quotes the assertion")
			}
		})
	}
	if len(s.Issued()) != 0 {
		t.Fatal("a token was issued")
	}
}

func TestFederatedIssuerDocuments(t *testing.T) {
	t.Run("bearer token", func(t *testing.T) {
		iss := newIssuer(t)
		iss.RequireBearer("reader-token")
		opts := Options{FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}}}
		_, u := federatedServer(t, iss, opts)
		send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{}))}).want(t, 401, "invalid_client")
		opts.TrustedIssuers = []TrustedIssuer{{Issuer: iss.URL, Audience: audience, BearerToken: "reader-token"}}
		s := New(opts)
		send(t, http.DefaultClient, start(t, s), req{form: federatedForm(mint(t, iss, Claims{}))}).want(t, 200, "")
	})
	t.Run("key rotation", func(t *testing.T) {
		iss := newIssuer(t)
		_, u := federatedServer(t, iss, Options{FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}}})
		send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{}))}).want(t, 200, "")
		if err := iss.RotateKey(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(minKeyRefetch)
		// A new key ID makes the server read the JWKS again.
		send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{}))}).want(t, 200, "")
		if iss.Fetches() != 4 {
			t.Fatalf("issuer served %d documents, want 4", iss.Fetches())
		}
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		iss := newIssuer(t)
		// The documents are read from iss, but the tokens claim another
		// issuer URL: the document's issuer does not match.
		opts := Options{TrustedIssuers: []TrustedIssuer{{Issuer: "https://issuer.test", DiscoveryURL: iss.URL + wellKnownOpenID, Audience: audience}},
			FederatedClients: map[string]FederatedClient{"payments": {Issuer: "https://issuer.test", Subject: saSubject}}}
		u := start(t, New(opts))
		a := send(t, http.DefaultClient, u, req{form: federatedForm(mint(t, iss, Claims{Issuer: "https://issuer.test"}))}).want(t, 401, "invalid_client")
		if !strings.Contains(a.str("error_description"), "another issuer") {
			t.Fatalf("description %q", a.str("error_description"))
		}
	})
}

func exchangeForm(subject string, kv ...string) url.Values {
	f := url.Values{"grant_type": {GrantTypeTokenExchange}, "subject_token": {subject}, "subject_token_type": {TokenTypeJWT}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestTokenExchange(t *testing.T) {
	iss := newIssuer(t)
	s, u := federatedServer(t, iss, Options{Clients: clients(), FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}},
		ExchangePolicies: []ExchangePolicy{
			{Issuer: iss.URL, Subject: saSubject, Audiences: []string{"https://api.example"}, Scopes: []string{"read"}},
			{Issuer: iss.URL, Subject: ServiceAccountSubject("team-b", "reports"), Client: id},
		}})
	sub := mint(t, iss, Claims{})
	// A public exchange: no client authentication.
	a := send(t, http.DefaultClient, u, req{form: exchangeForm(sub, "audience", "https://api.example", "scope", "read")}).want(t, 200, "")
	if a.str("issued_token_type") != TokenTypeAccessToken || a.str("token_type") != "Bearer" || !s.Valid(a.str("access_token")) {
		t.Fatalf("answer %s", a.raw)
	}
	it := s.Issued()
	if last := it[len(it)-1]; last.Subject != saSubject || last.ClientID != "" || last.GrantType != GrantTypeTokenExchange || last.Audience != "https://api.example" || last.IssuedTokenType != TokenTypeAccessToken {
		t.Fatalf("issued %+v", last)
	}
	// With a secret, and with the federated assertion.
	send(t, http.DefaultClient, u, req{form: exchangeForm(sub), basic: []string{id, secret}}).want(t, 200, "")
	send(t, http.DefaultClient, u, req{form: exchangeForm(sub, "client_assertion_type", jwtBearerType, "client_assertion", mint(t, iss, Claims{}))}).want(t, 200, "")
	if s.ClientRequests("payments") != 1 || s.ClientRequests(id) != 1 || s.ClientRequests("") != 1 {
		t.Fatalf("ClientRequests: payments %d, %s %d, public %d", s.ClientRequests("payments"), id, s.ClientRequests(id), s.ClientRequests(""))
	}
	reports := mint(t, iss, Claims{Subject: ServiceAccountSubject("team-b", "reports")})
	errs := []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"audience not allowed", req{form: exchangeForm(sub, "audience", "https://other.example")}, 400, "invalid_target"},
		{"scope not allowed", req{form: exchangeForm(sub, "scope", "admin")}, 400, "invalid_scope"},
		{"subject token of no issuer", req{form: exchangeForm("not-a-jwt")}, 400, "invalid_request"},
		{"expired subject token", req{form: exchangeForm(mint(t, iss, Claims{IssuedAt: time.Now().Add(-3 * time.Hour), Expiry: time.Now().Add(-time.Hour)}))}, 400, "invalid_request"},
		{"missing subject_token_type", req{form: url.Values{"grant_type": {GrantTypeTokenExchange}, "subject_token": {sub}}}, 400, "invalid_request"},
		{"other subject_token_type", req{form: exchangeForm(sub, "subject_token_type", TokenTypeAccessToken)}, 400, "invalid_request"},
		{"other requested_token_type", req{form: exchangeForm(sub, "requested_token_type", "urn:ietf:params:oauth:token-type:saml2")}, 400, "invalid_request"},
		{"subject only for another client, public", req{form: exchangeForm(reports)}, 400, "unauthorized_client"},
		{"subject of no policy", req{form: exchangeForm(mint(t, iss, Claims{Subject: "system:serviceaccount:x:y"}))}, 400, "unauthorized_client"},
		{"a confidential client without its secret", req{form: exchangeForm(sub, "client_id", id)}, 401, "invalid_client"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, http.DefaultClient, u, tc.q).want(t, tc.status, tc.code)
			if strings.Contains(a.raw, sub) || strings.Contains(a.raw, strings.Split(sub, ".")[2]) {
				t.Fatal("the answer quotes the subject token")
			}
		})
	}
	// The policy for another client's subject works for that client.
	send(t, http.DefaultClient, u, req{form: exchangeForm(reports), basic: []string{id, secret}}).want(t, 200, "")
}

func TestTokenExchangeGrantTypeLiteral(t *testing.T) {
	iss := newIssuer(t)
	_, u := federatedServer(t, iss, Options{Clients: clients(), ExchangeGrantType: "TOKEN_EXCHANGE", ExchangePolicies: []ExchangePolicy{{Issuer: iss.URL, Subject: saSubject}}})
	f := exchangeForm(mint(t, iss, Claims{}))
	send(t, http.DefaultClient, u, req{form: f, basic: []string{id, secret}}).want(t, 400, "unsupported_grant_type")
	f.Set("grant_type", "TOKEN_EXCHANGE")
	send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
	// Without a trusted issuer or a policy there is no exchange grant.
	s := New(Options{Clients: clients()})
	send(t, http.DefaultClient, start(t, s), req{form: exchangeForm("x"), basic: []string{id, secret}}).want(t, 400, "unsupported_grant_type")
}

func TestFederationLogNeverShowsTokens(t *testing.T) {
	iss := newIssuer(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	s := New(Options{TrustedIssuers: []TrustedIssuer{{Issuer: iss.URL, Audience: audience}},
		FederatedClients: map[string]FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}},
		ExchangePolicies: []ExchangePolicy{{Issuer: iss.URL, Subject: saSubject}}})
	hs := httptest.NewServer(s.loggingHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})))
	defer hs.Close()
	assertion, subject := mint(t, iss, Claims{}), mint(t, iss, Claims{})
	expired := mint(t, iss, Claims{IssuedAt: time.Now().Add(-3 * time.Hour), Expiry: time.Now().Add(-time.Hour)})
	send(t, http.DefaultClient, hs.URL, req{form: federatedForm(assertion)}).want(t, 200, "")
	send(t, http.DefaultClient, hs.URL, req{form: federatedForm(expired)}).want(t, 401, "invalid_client")
	send(t, http.DefaultClient, hs.URL, req{form: exchangeForm(subject, "actor_token", assertion, "actor_token_type", TokenTypeJWT)}).want(t, 200, "")
	send(t, http.DefaultClient, hs.URL, req{form: exchangeForm(expired)}).want(t, 400, "invalid_request")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("log:\n%s", out)
	}
	leaks := []string{assertion, subject, expired}
	for _, tok := range []string{assertion, subject, expired} {
		leaks = append(leaks, strings.Split(tok, ".")[1], strings.Split(tok, ".")[2])
	}
	for _, it := range s.Issued() {
		leaks = append(leaks, it.AccessToken)
	}
	for _, l := range leaks {
		if strings.Contains(out, l) {
			t.Errorf("log leaks %q:\n%s", l, out)
		}
	}
}
