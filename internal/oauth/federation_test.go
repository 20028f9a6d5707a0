package oauth

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokensync/tokensync/test/tokenserver"
)

const federatedAudience = "https://tokenserver.test"

var saSubject = tokenserver.ServiceAccountSubject("team-a", "payments")

// federated runs a token server that trusts a stand-in ServiceAccount
// issuer, and returns both with the token URL.
func federated(t *testing.T, opts tokenserver.Options) (*tokenserver.Server, *tokenserver.Issuer, string) {
	t.Helper()
	iss, err := tokenserver.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	opts.TrustedIssuers = []tokenserver.TrustedIssuer{{Issuer: iss.URL, Audience: federatedAudience}}
	if opts.FederatedClients == nil {
		opts.FederatedClients = map[string]tokenserver.FederatedClient{"payments": {Issuer: iss.URL, Subject: saSubject}}
	}
	if opts.Clients == nil {
		opts.Clients = map[string]string{testID: testSecret}
	}
	srv := tokenserver.New(opts)
	u, stop := srv.Start()
	t.Cleanup(stop)
	return srv, iss, u + "/token"
}

func saToken(t *testing.T, iss *tokenserver.Issuer, sub string) string {
	t.Helper()
	tok, err := iss.Mint(tokenserver.Claims{Subject: sub, Audience: []string{federatedAudience}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestServiceAccountAssertion(t *testing.T) {
	srv, iss, u := federated(t, tokenserver.Options{})
	c := &Client{HTTPClient: NewHTTPClient()}
	for _, clientID := range []string{"", "payments"} {
		sa := saToken(t, iss, saSubject)
		// A client secret, if the caller has one, is not sent.
		tok := mustToken(t, c, Request{TokenURL: u, AuthMethod: AuthMethodServiceAccountAssertion, ClientID: clientID, ClientSecret: testSecret, ClientAssertion: sa})
		if !srv.Valid(tok.AccessToken) {
			t.Fatal("the token was not issued by the server")
		}
		last := srv.LastRequest()
		if last.AuthMethod != tokenserver.AuthFederated || last.Form.Get("client_assertion") != sa || last.Form.Get("client_assertion_type") != clientAssertionType {
			t.Fatalf("auth %q form %v", last.AuthMethod, slicesOfKeys(last.Form))
		}
		if last.Form.Has("client_secret") || last.Header.Get("Authorization") != "" || last.Form.Get("client_id") != clientID || last.Form.Has("client_id") != (clientID != "") {
			t.Fatalf("client_id %q, secret sent %t, Authorization %q", last.Form.Get("client_id"), last.Form.Has("client_secret"), last.Header.Get("Authorization"))
		}
	}
	if n := srv.ClientRequests("payments"); n != 2 {
		t.Fatalf("ClientRequests = %d", n)
	}
	// A token of another service account is refused, and not quoted.
	other := saToken(t, iss, tokenserver.ServiceAccountSubject("team-a", "other"))
	e := mustFail(t, c, Request{TokenURL: u, AuthMethod: AuthMethodServiceAccountAssertion, ClientAssertion: other})
	if e.Kind != KindRejected || e.Code != "invalid_client" || strings.Contains(e.Error(), other) {
		t.Fatalf("got %v", e)
	}
	// Without the assertion nothing is sent.
	before := srv.Requests()
	if e := mustFail(t, c, Request{TokenURL: u, AuthMethod: AuthMethodServiceAccountAssertion, ClientID: "payments"}); e.Kind != KindConfig {
		t.Fatalf("no assertion: %v", e)
	}
	if srv.Requests() != before {
		t.Fatal("a request without an assertion was sent")
	}
}

func slicesOfKeys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}

func TestTokenExchange(t *testing.T) {
	srv, iss, u := federated(t, tokenserver.Options{})
	srv.AddExchangePolicy(tokenserver.ExchangePolicy{Issuer: iss.URL, Subject: saSubject, Audiences: []string{"https://api.example"}, Resources: []string{"https://api.example/v1"}, Scopes: []string{"read"}})
	c := &Client{HTTPClient: NewHTTPClient()}
	subject := saToken(t, iss, saSubject)
	base := Request{TokenURL: u, AuthMethod: AuthMethodNone, SubjectToken: subject, Audience: "https://api.example", Resources: []string{"https://api.example/v1"}, Scopes: []string{"read"}}

	// A public client: no client authentication; the defaults are the
	// RFC 8693 grant type and the JWT token type.
	tok := mustToken(t, c, base)
	if tok.IssuedTokenType != TokenTypeAccessToken || !srv.Valid(tok.AccessToken) {
		t.Fatalf("issued %q", tok.IssuedTokenType)
	}
	f := srv.LastRequest().Form
	if f.Get("grant_type") != GrantTypeTokenExchange || f.Get("subject_token") != subject || f.Get("subject_token_type") != TokenTypeJWT ||
		f.Get("audience") != "https://api.example" || f.Get("resource") != "https://api.example/v1" || f.Get("scope") != "read" ||
		f.Has("client_id") || f.Has("client_secret") || f.Has("actor_token") || f.Has("requested_token_type") {
		t.Fatalf("form keys %v", slicesOfKeys(f))
	}
	issued := srv.Issued()
	if last := issued[len(issued)-1]; last.Subject != saSubject || last.ClientID != "" {
		t.Fatalf("issued %+v", last)
	}

	// With a client secret (Basic) and with the ServiceAccount assertion.
	withSecret := base
	withSecret.AuthMethod, withSecret.ClientID, withSecret.ClientSecret = AuthMethodBasic, testID, testSecret
	withSecret.RequestedTokenType = TokenTypeAccessToken
	mustToken(t, c, withSecret)
	if last := srv.LastRequest(); last.AuthMethod != tokenserver.AuthBasic || last.Form.Get("requested_token_type") != TokenTypeAccessToken {
		t.Fatalf("auth %q", last.AuthMethod)
	}
	withSA := base
	withSA.AuthMethod, withSA.ClientAssertion = AuthMethodServiceAccountAssertion, saToken(t, iss, saSubject)
	mustToken(t, c, withSA)
	if last := srv.LastRequest(); last.AuthMethod != tokenserver.AuthFederated || srv.ClientRequests("payments") != 1 {
		t.Fatalf("auth %q", last.AuthMethod)
	}

	// RFC 8693 section 2.2.2 errors are rejections with their code.
	for _, tc := range []struct {
		name string
		edit func(*Request)
		code string
	}{
		{"audience not allowed", func(r *Request) { r.Audience = "https://other.example" }, "invalid_target"},
		{"resource not allowed", func(r *Request) { r.Resources = []string{"https://other.example/"} }, "invalid_target"},
		{"unusable subject token", func(r *Request) { r.SubjectToken = "opaque-subject-Token_123" }, "invalid_request"},
		{"other subject token type", func(r *Request) { r.SubjectTokenType = TokenTypeAccessToken }, "invalid_request"},
		{"scope not allowed", func(r *Request) { r.Scopes = []string{"admin"} }, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			tc.edit(&req)
			e := mustFail(t, c, req)
			if e.Kind != KindRejected || e.Code != tc.code || e.StatusCode != 400 {
				t.Fatalf("got %v", e)
			}
			assertClean(t, e.Error(), req.SubjectToken, subject)
		})
	}
}

func TestTokenExchangeGrantTypeLiteralAndActor(t *testing.T) {
	srv, iss, u := federated(t, tokenserver.Options{ExchangeGrantType: "TOKEN_EXCHANGE"})
	srv.AddExchangePolicy(tokenserver.ExchangePolicy{Issuer: iss.URL, Subject: saSubject})
	c := &Client{HTTPClient: NewHTTPClient()}
	req := Request{TokenURL: u, AuthMethod: AuthMethodNone, GrantType: "TOKEN_EXCHANGE", SubjectToken: saToken(t, iss, saSubject), ActorToken: saToken(t, iss, saSubject)}
	mustToken(t, c, req)
	f := srv.LastRequest().Form
	if f.Get("grant_type") != "TOKEN_EXCHANGE" || f.Get("actor_token") != req.ActorToken || f.Get("actor_token_type") != TokenTypeJWT {
		t.Fatalf("grant_type %q actor_token_type %q", f.Get("grant_type"), f.Get("actor_token_type"))
	}
	// The standard literal is refused by this server.
	req.GrantType = ""
	if e := mustFail(t, c, req); e.Code != "invalid_client" {
		t.Fatalf("standard literal: %v", e)
	}
}

func TestTokenExchangeConfigErrorsSendNothing(t *testing.T) {
	u, n := startHandler(t, reply(200, "application/json", `{"access_token":"a"}`))
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"exchange grant without a subject token", Request{TokenURL: u, ClientID: "c", ClientSecret: "s", GrantType: GrantTypeTokenExchange}},
		{"actor token type without an actor token", Request{TokenURL: u, AuthMethod: AuthMethodNone, SubjectToken: "s", ActorTokenType: TokenTypeJWT}},
		{"extra subject_token", Request{TokenURL: u, ClientID: "c", ClientSecret: "s", ExtraParams: map[string]string{"subject_token": "x"}}},
		{"extra actor_token", Request{TokenURL: u, ClientID: "c", ClientSecret: "s", ExtraParams: map[string]string{"actor_token": "x"}}},
		{"extra subject_token_type with a subject token", Request{TokenURL: u, AuthMethod: AuthMethodNone, SubjectToken: "s", ExtraParams: map[string]string{"subject_token_type": "x"}}},
		{"extra requested_token_type with RequestedTokenType", Request{TokenURL: u, AuthMethod: AuthMethodNone, SubjectToken: "s", RequestedTokenType: TokenTypeJWT, ExtraParams: map[string]string{"requested_token_type": "x"}}},
		{"no client id with a secret", Request{TokenURL: u, ClientSecret: "s", SubjectToken: "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e := mustFail(t, testClient(), tc.req); e.Kind != KindConfig {
				t.Fatalf("got %v", e)
			}
		})
	}
	// Without a subject token the type parameters are ordinary extras.
	mustToken(t, testClient(), Request{TokenURL: u, ClientID: "c", ClientSecret: "s", ExtraParams: map[string]string{"requested_token_type": "x"}})
	if n.Load() != 1 {
		t.Fatalf("%d requests sent", n.Load())
	}
}

// No message may contain a client assertion, subject or actor token,
// raw or form-encoded, whatever the endpoint echoes.
func TestErrorsNeverContainAssertionsOrExchangedTokens(t *testing.T) {
	const assertion, subject, actor = "sa-Assertion/Value+1 x", "subject-Token/Value+2 y", "actor-Token/Value+3 z"
	echo := func(status int, ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(b))
			body := strings.NewReplacer("$BODY", string(b), "$SUB", form.Get("subject_token"), "$ACT", form.Get("actor_token"), "$SA", form.Get("client_assertion")).Replace(body)
			reply(status, ct, body)(w, r)
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"description echoes the body", echo(400, "application/json", `{"error":"invalid_request","error_description":"got $BODY"}`)},
		{"description echoes the tokens", echo(400, "application/json", `{"error":"invalid_target","error_description":"$SUB / $ACT / $SA"}`)},
		{"code echoes the subject token", echo(400, "application/json", `{"error":"$SUB"}`)},
		{"HTML page", echo(502, "text/html", `<p>$BODY</p>`)},
		{"200 without a token", echo(200, "application/json", `{"subject":"$SUB"}`)},
	} {
		for _, m := range []AuthMethod{AuthMethodServiceAccountAssertion, AuthMethodNone, AuthMethodAuto} {
			t.Run(tc.name+"/"+string(m), func(t *testing.T) {
				u, _ := startHandler(t, tc.handler)
				req := Request{TokenURL: u, AuthMethod: m, ClientID: testID, ClientSecret: testSecret, ClientAssertion: assertion, SubjectToken: subject, ActorToken: actor}
				e := mustError(t, func() error { _, err := testClient().Token(context.Background(), req); return err }())
				for _, s := range []string{assertion, subject, actor} {
					assertClean(t, e.Error(), s, s)
					assertClean(t, e.Code+" "+e.Description, s, s)
				}
			})
		}
	}
	t.Run("timeout", func(t *testing.T) {
		u, _ := startHandler(t, hang)
		req := Request{TokenURL: u + "?subject=" + url.QueryEscape(subject), AuthMethod: AuthMethodNone, SubjectToken: subject, Timeout: 50e6}
		e := mustError(t, func() error { _, err := testClient().Token(context.Background(), req); return err }())
		assertClean(t, e.Error(), subject, subject)
	})
}
