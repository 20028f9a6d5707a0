package tokenserver

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// reply is an HTTP answer, its body decoded when it is JSON.
type reply struct {
	status int
	header http.Header
	json   map[string]any
	raw    string
}

// req is an HTTP request to send: a form body unless body is set.
type req struct {
	method string // default POST
	path   string // default /token
	form   url.Values
	body   string // raw body, sent with ctype
	ctype  string
	basic  []string
	header map[string]string
}

// start serves s over HTTP for the test.
func start(t *testing.T, s *Server) string {
	t.Helper()
	u, stop := s.Start()
	t.Cleanup(stop)
	return u
}

// send makes one HTTP request to base with client.
func send(t *testing.T, client *http.Client, base string, q req) reply {
	t.Helper()
	method, path := q.method, q.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/token"
	}
	body, ctype := q.body, q.ctype
	if q.form != nil {
		body = q.form.Encode()
		if ctype == "" {
			ctype = "application/x-www-form-urlencoded"
		}
	}
	r, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if q.basic != nil {
		r.SetBasicAuth(q.basic[0], q.basic[1])
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// want fails unless a has status and, for an error, the error code.
func (a reply) want(t *testing.T, status int, code string) reply {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	if code != "" && a.json["error"] != code {
		t.Fatalf("error %v, want %q: %s", a.json["error"], code, a.raw)
	}
	return a
}

func (a reply) str(key string) string { s, _ := a.json[key].(string); return s }

func clients() map[string]string { return map[string]string{id: secret} }

// withGrant is creds(grant()) plus more parameters, in pairs.
func withGrant(kv ...string) url.Values {
	f := creds(grant())
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

// jwtParts decodes a JWT without verifying it.
func jwtParts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	j, err := parseJWS(tok)
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	return j.header, j.claims
}

func TestPath(t *testing.T) {
	const path = "/digitalwallets/v1/auth/brands/liberty/token"
	s := New(Options{Clients: clients(), Path: path})
	u := start(t, s)
	send(t, http.DefaultClient, u, req{path: path, form: creds(grant())}).want(t, 200, "")
	s.FailNext(1, 503, "down", nil)
	for _, other := range []string{"/token", path + "/", "/digitalwallets/v1/auth/brands/other/token"} {
		send(t, http.DefaultClient, u, req{path: other, form: creds(grant())}).want(t, 404, "")
		if s.LastRequest().Path != other {
			t.Errorf("LastRequest().Path = %q", s.LastRequest().Path)
		}
	}
	// The wrong paths did not use up the injected failure.
	send(t, http.DefaultClient, u, req{path: path, form: creds(grant())}).want(t, 503, "")
	if s.Requests() != 5 || len(s.Issued()) != 1 {
		t.Errorf("Requests() = %d, issued %d", s.Requests(), len(s.Issued()))
	}
}

func TestGrantTypeLiteral(t *testing.T) {
	s := New(Options{Clients: clients(), GrantType: "CLIENT_CREDENTIALS"})
	u := start(t, s)
	f := creds(url.Values{"grant_type": {"CLIENT_CREDENTIALS"}})
	send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
	if it := s.Issued(); it[0].GrantType != "CLIENT_CREDENTIALS" {
		t.Errorf("GrantType %q", it[0].GrantType)
	}
	for _, gt := range []string{"client_credentials", "Client_Credentials", "password", "refresh_token"} {
		a := send(t, http.DefaultClient, u, req{form: creds(url.Values{"grant_type": {gt}})}).want(t, 400, "unsupported_grant_type")
		if !strings.Contains(a.str("error_description"), "CLIENT_CREDENTIALS") {
			t.Errorf("description %q does not name the accepted literal", a.str("error_description"))
		}
	}
	// The default literal is recorded too.
	d := New(Options{Clients: clients()})
	send(t, http.DefaultClient, start(t, d), req{form: creds(grant())}).want(t, 200, "")
	if d.Issued()[0].GrantType != "client_credentials" {
		t.Errorf("GrantType %q", d.Issued()[0].GrantType)
	}
}

func TestPasswordGrant(t *testing.T) {
	const user, pass = "alice", "pa:ss/w+rd é"
	for _, literal := range []string{"", "PASSWORD"} {
		t.Run("literal "+literal, func(t *testing.T) {
			s := New(Options{Clients: clients(), Users: map[string]string{user: pass}, PasswordGrantType: literal, JWTAccessTokens: true})
			u := start(t, s)
			gt := or(literal, "password")
			f := creds(url.Values{"grant_type": {gt}, "username": {user}, "password": {pass}, "scope": {"read"}})
			a := send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
			if _, claims := jwtParts(t, a.str("access_token")); claims["sub"] != user || claims["client_id"] != id {
				t.Errorf("claims %v: want the user as sub", claims)
			}
			if it := s.Issued(); len(it) != 1 || it[0].GrantType != gt || it[0].ClientID != id || !slices.Equal(it[0].Scopes, []string{"read"}) {
				t.Errorf("Issued() = %+v", it)
			}

			bad := cloneValues(f)
			bad.Set("password", "wrong-password")
			a = send(t, http.DefaultClient, u, req{form: bad}).want(t, 400, "invalid_grant")
			bad.Set("username", "mallory")
			send(t, http.DefaultClient, u, req{form: bad}).want(t, 400, "invalid_grant")
			if strings.Contains(a.raw, "wrong-password") {
				t.Errorf("the password is quoted: %s", a.raw)
			}
			noUser := cloneValues(f)
			noUser.Del("username")
			send(t, http.DefaultClient, u, req{form: noUser}).want(t, 400, "invalid_request")
			// The client is authenticated as for client credentials.
			wrongClient := cloneValues(f)
			wrongClient.Set("client_secret", "nope")
			send(t, http.DefaultClient, u, req{form: wrongClient}).want(t, 401, "invalid_client")
			// The client-credentials grant still works.
			send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "")
			if literal != "" {
				f.Set("grant_type", "password")
				send(t, http.DefaultClient, u, req{form: f}).want(t, 400, "unsupported_grant_type")
			}
		})
	}
}

func TestRefreshTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	step := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	s := New(Options{Clients: map[string]string{id: secret, "other": "x"}, IssueRefreshTokens: true, RefreshExpiresIn: 1800,
		RefreshGrantType: "REFRESH_TOKEN", ExpiresIn: 300, Now: clock})
	u := start(t, s)
	refresh := func(clientID, clientSecret, rt string) reply {
		return send(t, http.DefaultClient, u, req{form: url.Values{"grant_type": {"REFRESH_TOKEN"}, "refresh_token": {rt}, "client_id": {clientID}, "client_secret": {clientSecret}}})
	}

	first := send(t, http.DefaultClient, u, req{form: withGrant("scope", "a b", "resource", "https://r.example/", "audience", "api")}).want(t, 200, "")
	rt := first.str("refresh_token")
	if !strings.HasPrefix(rt, "rt_") || len(rt) < 40 || first.json["refresh_expires_in"] != float64(1800) {
		t.Fatalf("answer %s", first.raw)
	}
	if it := s.Issued()[0]; it.RefreshToken != rt || it.GrantType != "client_credentials" {
		t.Errorf("Issued()[0] = %+v", it)
	}

	// Another client cannot use it, and trying does not spend it.
	refresh("other", "x", rt).want(t, 400, "invalid_grant")
	// The standard literal is not this server's.
	send(t, http.DefaultClient, u, req{form: creds(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})}).want(t, 400, "unsupported_grant_type")

	step(time.Minute)
	second := refresh(id, secret, rt).want(t, 200, "")
	rt2 := second.str("refresh_token")
	if rt2 == "" || rt2 == rt || second.str("access_token") == first.str("access_token") || second.str("scope") != "a b" {
		t.Fatalf("refresh answer %s", second.raw)
	}
	it := s.Issued()[1]
	if it.GrantType != "REFRESH_TOKEN" || it.RefreshToken != rt2 || !slices.Equal(it.Scopes, []string{"a", "b"}) ||
		!slices.Equal(it.Resources, []string{"https://r.example/"}) || it.Audience != "api" || !it.IssuedAt.Equal(clock()) {
		t.Errorf("refresh issued %+v: want the original grant's scope, resource and audience", it)
	}
	// Rotation: the used token is spent.
	a := refresh(id, secret, rt).want(t, 400, "invalid_grant")
	if strings.Contains(a.raw, rt) {
		t.Errorf("the refresh token is quoted: %s", a.raw)
	}
	// A narrower scope is fine, a wider one is not.
	f := creds(url.Values{"grant_type": {"REFRESH_TOKEN"}, "refresh_token": {rt2}, "scope": {"a admin"}})
	send(t, http.DefaultClient, u, req{form: f}).want(t, 400, "invalid_scope")
	f.Set("scope", "a")
	third := send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
	if third.str("scope") != "a" {
		t.Errorf("scope %q", third.str("scope"))
	}

	// Expiry, by the server's clock.
	rt3 := third.str("refresh_token")
	step(1799 * time.Second)
	rt4 := refresh(id, secret, rt3).want(t, 200, "").str("refresh_token")
	step(1800 * time.Second)
	refresh(id, secret, rt4).want(t, 400, "invalid_grant")

	// Revocation.
	rt5 := send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "").str("refresh_token")
	s.RevokeRefreshTokens()
	refresh(id, secret, rt5).want(t, 400, "invalid_grant")
	send(t, http.DefaultClient, u, req{form: creds(url.Values{"grant_type": {"REFRESH_TOKEN"}})}).want(t, 400, "invalid_request")
}

func TestRefreshTokensWithoutExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := New(Options{Clients: clients(), IssueRefreshTokens: true, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	u := start(t, s)
	a := send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "")
	if _, ok := a.json["refresh_expires_in"]; ok || a.str("refresh_token") == "" {
		t.Fatalf("answer %s", a.raw)
	}
	mu.Lock()
	now = now.Add(10 * 365 * 24 * time.Hour)
	mu.Unlock()
	send(t, http.DefaultClient, u, req{form: creds(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.str("refresh_token")}})}).want(t, 200, "")

	// Without IssueRefreshTokens there is neither a refresh token nor the grant.
	plain := New(Options{Clients: clients()})
	pu := start(t, plain)
	if a := send(t, http.DefaultClient, pu, req{form: creds(grant())}).want(t, 200, ""); a.json["refresh_token"] != nil || a.json["id_token"] != nil {
		t.Errorf("answer %s", a.raw)
	}
	send(t, http.DefaultClient, pu, req{form: creds(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_x"}})}).want(t, 400, "unsupported_grant_type")
}

func TestJWTAccessTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for _, tt := range []struct {
		name     string
		lifetime int
		wantExp  int64
	}{{"default lifetime", 0, 600}, {"ten days", 864000, 864000}} {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Clients: clients(), JWTAccessTokens: true, JWTLifetime: tt.lifetime, Now: clock})
			u := start(t, s)
			a := send(t, http.DefaultClient, u, req{form: withGrant("scope", "x y")}).want(t, 200, "")
			if _, ok := a.json["expires_in"]; ok {
				t.Error("expires_in sent with ExpiresIn 0")
			}
			tok := a.str("access_token")
			header, claims := jwtParts(t, tok)
			if header["alg"] != "HS256" || header["typ"] != "at+jwt" || len(header) != 2 {
				t.Errorf("header %v", header)
			}
			want := map[string]any{"iss": u, "sub": id, "client_id": id, "iat": float64(now.Unix()), "exp": float64(now.Unix() + tt.wantExp), "scope": "x y"}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if jti, _ := claims["jti"].(string); len(jti) < 20 {
				t.Errorf("jti %v", claims["jti"])
			}
			// HS256 with the server's key.
			i := strings.LastIndex(tok, ".")
			mac := hmac.New(sha256.New, s.jwtKey)
			mac.Write([]byte(tok[:i]))
			if base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) != tok[i+1:] {
				t.Error("the signature is not HS256 with the server key")
			}
			// Valid follows exp when ExpiresIn is 0.
			if !s.Valid(tok) {
				t.Error("not valid when issued")
			}
			mu.Lock()
			now = now.Add(time.Duration(tt.wantExp) * time.Second)
			mu.Unlock()
			if s.Valid(tok) {
				t.Error("valid at exp")
			}
			mu.Lock()
			now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			mu.Unlock()
		})
	}
	t.Run("ExpiresIn governs", func(t *testing.T) {
		s := New(Options{Clients: clients(), JWTAccessTokens: true, ExpiresIn: 60, Now: clock})
		a := send(t, http.DefaultClient, start(t, s), req{form: creds(grant())}).want(t, 200, "")
		if a.json["expires_in"] != float64(60) {
			t.Errorf("answer %s", a.raw)
		}
		if _, claims := jwtParts(t, a.str("access_token")); claims["exp"] != float64(now.Unix()+600) || claims["scope"] != nil {
			t.Errorf("claims %v", claims)
		}
		mu.Lock()
		now = now.Add(60 * time.Second)
		mu.Unlock()
		if s.Valid(a.str("access_token")) {
			t.Error("valid after expires_in")
		}
	})
}

func TestIDTokens(t *testing.T) {
	s := New(Options{Clients: clients(), IDTokens: true})
	u := start(t, s)
	a := send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "")
	header, claims := jwtParts(t, a.str("id_token"))
	if header["alg"] != "HS256" || claims["iss"] != u || claims["sub"] != id || claims["aud"] != id || claims["exp"] == nil || claims["iat"] == nil {
		t.Errorf("id_token %v %v", header, claims)
	}
	if strings.Count(a.str("access_token"), ".") != 0 {
		t.Error("the access token is a JWT without JWTAccessTokens")
	}
}

func TestJSONBodies(t *testing.T) {
	s := New(Options{Clients: clients(), AcceptJSON: true, AllowedScopes: []string{"r", "w"}})
	u := start(t, s)
	body := `{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","scope":"r w","resource":["https://a.example/","https://b.example/"]}`
	for _, ctype := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		send(t, http.DefaultClient, u, req{body: body, ctype: ctype}).want(t, 200, "")
		last := s.LastRequest()
		if !last.JSON || last.AuthMethod != AuthPost || last.ClientID != id || !slices.Equal(last.Form["resource"], []string{"https://a.example/", "https://b.example/"}) ||
			last.Form.Get("scope") != "r w" || last.Body != body {
			t.Errorf("%s: LastRequest() = %+v", ctype, last)
		}
	}
	if it := s.Issued(); !slices.Equal(it[0].Resources, []string{"https://a.example/", "https://b.example/"}) {
		t.Errorf("resources %v", it[0].Resources)
	}
	// Basic credentials with a JSON body.
	send(t, http.DefaultClient, u, req{body: `{"grant_type":"client_credentials"}`, ctype: "application/json", basic: []string{id, secret}}).want(t, 200, "")
	if last := s.LastRequest(); !last.JSON || last.AuthMethod != AuthBasic || last.Form.Has("client_secret") {
		t.Errorf("LastRequest() = %+v", last)
	}
	// Forms still work.
	send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 200, "")
	if s.LastRequest().JSON {
		t.Error("a form recorded as JSON")
	}
	n := len(s.Issued())
	for _, bad := range []string{
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","expires":3600}`,
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","x":{"a":"b"}}`,
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","x":null}`,
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","x":["a",null]}`,
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","x":[["a"]]}`,
		`{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret","x":true}`,
		`[{"grant_type":"client_credentials"}]`,
		`null`,
		`{"grant_type":`,
		``,
	} {
		a := send(t, http.DefaultClient, u, req{body: bad, ctype: "application/json"}).want(t, 400, "invalid_request")
		if strings.Contains(a.raw, secret) || !s.LastRequest().JSON {
			t.Errorf("%s: %s", bad, a.raw)
		}
	}
	send(t, http.DefaultClient, u, req{body: "grant_type=client_credentials", ctype: "text/plain"}).want(t, 400, "invalid_request")
	if len(s.Issued()) != n {
		t.Error("a token was issued for a bad body")
	}
}

func TestRequireJSON(t *testing.T) {
	s := New(Options{Clients: clients(), RequireJSON: true})
	u := start(t, s)
	a := send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 400, "invalid_request")
	if a.str("error_description") != "the body must be application/json" {
		t.Errorf("description %q", a.str("error_description"))
	}
	if s.LastRequest().JSON || s.LastRequest().Form.Get("client_id") != id {
		t.Errorf("LastRequest() = %+v", s.LastRequest())
	}
	send(t, http.DefaultClient, u, req{body: `{"grant_type":"client_credentials","client_id":"app","client_secret":"s3cret"}`, ctype: "application/json"}).want(t, 200, "")
	// Without AcceptJSON, JSON stays refused and is not parsed.
	plain := New(Options{Clients: clients()})
	send(t, http.DefaultClient, start(t, plain), req{body: `{"grant_type":"client_credentials"}`, ctype: "application/json"}).want(t, 400, "invalid_request")
	if last := plain.LastRequest(); last.JSON || len(last.Form) != 0 {
		t.Errorf("LastRequest() = %+v", last)
	}
}

func TestResponseWrapper(t *testing.T) {
	s := New(Options{Clients: clients(), ResponseWrapper: "data", ExpiresIn: 120, IssueRefreshTokens: true, RefreshExpiresIn: 900})
	u := start(t, s)
	a := send(t, http.DefaultClient, u, req{form: withGrant("scope", "x")}).want(t, 200, "")
	data, _ := a.json["data"].(map[string]any)
	if len(a.json) != 2 || a.json["status"] != "success" || data == nil {
		t.Fatalf("answer %s", a.raw)
	}
	if data["access_token"] != s.Issued()[0].AccessToken || data["token_type"] != "Bearer" || data["expires_in"] != float64(120) ||
		data["scope"] != "x" || data["refresh_token"] != s.Issued()[0].RefreshToken || data["refresh_expires_in"] != float64(900) {
		t.Errorf("data %v", data)
	}
	if a.header.Get("Content-Type") != "application/json" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", a.header)
	}
	e := send(t, http.DefaultClient, u, req{form: creds(url.Values{})}).want(t, 400, "invalid_request")
	if e.json["status"] != nil || e.json["data"] != nil {
		t.Errorf("error not flat: %s", e.raw)
	}
}

func TestRequiredHeaders(t *testing.T) {
	s := New(Options{Clients: clients(), RequiredHeaders: map[string]string{"x-api-version": "2024-01", "X-Tenant": "t1"}})
	u := start(t, s)
	all := map[string]string{"X-Api-Version": "2024-01", "X-Tenant": "t1"}
	send(t, http.DefaultClient, u, req{form: creds(grant()), header: all}).want(t, 200, "")
	for _, tt := range []struct {
		header map[string]string
		names  string
	}{
		{map[string]string{"X-Tenant": "t1"}, "X-Api-Version"},
		{map[string]string{"X-Api-Version": "2024-02", "X-Tenant": "t1"}, "X-Api-Version"},
		{map[string]string{"X-Api-Version": "2024-01"}, "X-Tenant"},
	} {
		a := send(t, http.DefaultClient, u, req{form: creds(grant()), header: tt.header}).want(t, 400, "invalid_request")
		d := a.str("error_description")
		if !strings.Contains(d, tt.names) || strings.Contains(d, "2024") || strings.Contains(d, "t1") {
			t.Errorf("description %q: want the header name, not a value", d)
		}
	}
	if len(s.Issued()) != 1 {
		t.Errorf("issued %d", len(s.Issued()))
	}
}

func TestRequiredResourcesAndAudience(t *testing.T) {
	s := New(Options{Clients: clients(), RequiredResources: []string{"https://r1.example/", "https://r2.example/"}})
	u := start(t, s)
	send(t, http.DefaultClient, u, req{form: creds(grant())}).want(t, 400, "invalid_target")
	send(t, http.DefaultClient, u, req{form: withGrant("resource", "https://r1.example/", "resource", "https://evil.example/")}).want(t, 400, "invalid_target")
	send(t, http.DefaultClient, u, req{form: withGrant("resource", "https://r2.example/", "resource", "https://r1.example/")}).want(t, 200, "")
	if it := s.Issued(); len(it) != 1 || !slices.Equal(it[0].Resources, []string{"https://r2.example/", "https://r1.example/"}) {
		t.Errorf("Issued() = %+v", it)
	}
	none := New(Options{Clients: clients(), RequiredResources: []string{}})
	send(t, http.DefaultClient, start(t, none), req{form: withGrant("resource", "https://r1.example/")}).want(t, 400, "invalid_target")

	a := New(Options{Clients: clients(), RequiredAudience: "https://api.example"})
	au := start(t, a)
	send(t, http.DefaultClient, au, req{form: creds(grant())}).want(t, 400, "invalid_request")
	send(t, http.DefaultClient, au, req{form: withGrant("audience", "https://api.example/")}).want(t, 400, "invalid_request")
	send(t, http.DefaultClient, au, req{form: withGrant("audience", "https://api.example")}).want(t, 200, "")
	if it := a.Issued(); len(it) != 1 || it[0].Audience != "https://api.example" || it[0].Resources != nil {
		t.Errorf("Issued() = %+v", it)
	}
}

func TestDiscovery(t *testing.T) {
	for _, tt := range []struct {
		kind, served, missing string
	}{
		{"openid", wellKnownOpenID, wellKnownOAuth},
		{"oauth", wellKnownOAuth, wellKnownOpenID},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			s := New(Options{Clients: clients(), Discovery: tt.kind, Path: "/oauth2/token", AllowPost: true, ClientKeys: map[string]crypto.PublicKey{}})
			u := start(t, s)
			a := send(t, http.DefaultClient, u, req{method: http.MethodGet, path: tt.served}).want(t, 200, "")
			if a.json["issuer"] != u || a.json["token_endpoint"] != u+"/oauth2/token" || a.header.Get("Content-Type") != "application/json" {
				t.Errorf("document %s", a.raw)
			}
			if got := a.json["grant_types_supported"]; !jsonStrings(got, "client_credentials") {
				t.Errorf("grant_types_supported %v", got)
			}
			if got := a.json["token_endpoint_auth_methods_supported"]; !jsonStrings(got, "client_secret_post", "private_key_jwt") {
				t.Errorf("token_endpoint_auth_methods_supported %v", got)
			}
			send(t, http.DefaultClient, u, req{method: http.MethodGet, path: tt.missing}).want(t, 404, "")
			send(t, http.DefaultClient, u, req{path: tt.served, form: creds(grant())}).want(t, 405, "")
			send(t, http.DefaultClient, u, req{path: "/oauth2/token", form: creds(grant())}).want(t, 200, "")
			if s.DiscoveryRequests() != 3 || s.Requests() != 1 {
				t.Errorf("DiscoveryRequests() = %d, Requests() = %d", s.DiscoveryRequests(), s.Requests())
			}
		})
	}
	t.Run("default path and more grants", func(t *testing.T) {
		s := New(Options{Clients: clients(), Discovery: "openid", GrantType: "CLIENT_CREDENTIALS", Users: map[string]string{}, IssueRefreshTokens: true, TLSClientAuth: map[string]string{}})
		u := start(t, s)
		a := send(t, http.DefaultClient, u, req{method: http.MethodGet, path: wellKnownOpenID}).want(t, 200, "")
		if a.json["token_endpoint"] != u+"/token" ||
			!jsonStrings(a.json["grant_types_supported"], "CLIENT_CREDENTIALS", "password", "refresh_token") ||
			!jsonStrings(a.json["token_endpoint_auth_methods_supported"], "client_secret_basic", "client_secret_post", "tls_client_auth") {
			t.Errorf("document %s", a.raw)
		}
	})
	t.Run("over TLS", func(t *testing.T) {
		ca, err := NewCA("test CA")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.ServerCert("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		s := New(Options{Clients: clients(), Discovery: "oauth"})
		u, stop := s.StartTLS(cert, nil)
		defer stop()
		if !strings.HasPrefix(u, "https://") {
			t.Fatalf("url %q", u)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
		a := send(t, c, u, req{method: http.MethodGet, path: wellKnownOAuth}).want(t, 200, "")
		if a.json["issuer"] != u || a.json["token_endpoint"] != u+"/token" {
			t.Errorf("document %s", a.raw)
		}
	})
	t.Run("none", func(t *testing.T) {
		// Without Discovery the well-known paths are token endpoints, as any path.
		s := New(Options{Clients: clients()})
		u := start(t, s)
		send(t, http.DefaultClient, u, req{method: http.MethodGet, path: wellKnownOpenID}).want(t, 405, "invalid_request")
		if s.DiscoveryRequests() != 0 || s.Requests() != 1 {
			t.Errorf("DiscoveryRequests() = %d, Requests() = %d", s.DiscoveryRequests(), s.Requests())
		}
	})
	t.Run("invalid", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("New accepted Discovery \"oidc\"")
			}
		}()
		New(Options{Discovery: "oidc"})
	})
}

// jsonStrings reports whether v is a JSON array of exactly want.
func jsonStrings(v any, want ...string) bool {
	arr, _ := v.([]any)
	got := make([]string, 0, len(arr))
	for _, e := range arr {
		s, _ := e.(string)
		got = append(got, s)
	}
	return slices.Equal(got, want)
}

func TestSCAChallenge(t *testing.T) {
	s := New(Options{Clients: clients(), SCAChallenge: true, AllowBasic: true})
	u := start(t, s)
	a := send(t, http.DefaultClient, u, req{form: grant(), basic: []string{id, secret}}).want(t, 401, "access_denied")
	if len(a.json) != 1 || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("body %s", a.raw)
	}
	ch := a.header.Get("WWW-Authenticate")
	const prefix = `SCA realm="Authentication" auth-param1="`
	if !strings.HasPrefix(ch, prefix) || !strings.HasSuffix(ch, `"`) || len(a.header.Values("WWW-Authenticate")) != 1 {
		t.Fatalf("WWW-Authenticate %q", ch)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(ch, prefix), `"`))
	if err != nil || !json.Valid(raw) || !bytes.HasPrefix(raw, []byte("{")) {
		t.Errorf("auth-param1 is not base64 JSON: %q %v", raw, err)
	}
	// A client that does not authenticate gets the usual invalid_client.
	b := send(t, http.DefaultClient, u, req{form: grant(), basic: []string{id, "wrong"}}).want(t, 401, "invalid_client")
	if !strings.HasPrefix(b.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("WWW-Authenticate %q", b.header.Get("WWW-Authenticate"))
	}
	s.SetSCAChallenge(false)
	send(t, http.DefaultClient, u, req{form: grant(), basic: []string{id, secret}}).want(t, 200, "")
	s.SetSCAChallenge(true)
	send(t, http.DefaultClient, u, req{form: grant(), basic: []string{id, secret}}).want(t, 401, "access_denied")
	if len(s.Issued()) != 1 || s.Requests() != 4 {
		t.Errorf("issued %d, requests %d", len(s.Issued()), s.Requests())
	}
}

// assertion builds a signed client assertion; mutate edits claims and
// header before signing.
func assertion(t *testing.T, key crypto.Signer, alg, clientID, aud string, mutate func(header, claims map[string]any)) string {
	t.Helper()
	now := time.Now()
	header := map[string]any{"alg": alg, "typ": "JWT", "kid": "k1"}
	claims := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": newToken("")}
	if mutate != nil {
		mutate(header, claims)
	}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(signJWS(t, key, alg, []byte(input)))
}

// signJWS signs input as JWS alg requires.
func signJWS(t *testing.T, key crypto.Signer, alg string, input []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	switch alg {
	case "RS256":
		d := sha256.Sum256(input)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	case "PS256":
		d := sha256.Sum256(input)
		sig, err = key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	case "ES256", "ES384":
		var d []byte
		if alg == "ES256" {
			s := sha256.Sum256(input)
			d = s[:]
		} else {
			s := sha512.Sum384(input)
			d = s[:]
		}
		k := key.(*ecdsa.PrivateKey)
		r, s, e := ecdsa.Sign(rand.Reader, k, d)
		size := (k.Curve.Params().BitSize + 7) / 8
		sig, err = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...), e
	case "EdDSA":
		sig, err = key.Sign(rand.Reader, input, crypto.Hash(0))
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// unsigned is a JWS with an empty signature.
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func assertionForm(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearerType}, "client_assertion": {a}}
}

func TestPrivateKeyJWT(t *testing.T) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			key, keyPEM, err := GenerateClientKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatal("the key is not PKCS#8 PEM")
			} else if parsed, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil || !parsed.(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) {
				t.Fatalf("the PEM is not the key: %v", err)
			}
			s := New(Options{Clients: clients(), ClientKeys: map[string]crypto.PublicKey{"jwt-client": key.Public()}, AllowBasic: true})
			u := start(t, s)
			f := assertionForm(assertion(t, key, alg, "jwt-client", u+"/token", nil))
			send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
			last := s.LastRequest()
			if last.AuthMethod != AuthPrivateKeyJWT || last.ClientID != "jwt-client" || last.AssertionHeader["alg"] != alg || last.AssertionHeader["kid"] != "k1" {
				t.Errorf("LastRequest() = %+v", last)
			}
			if it := s.Issued(); it[0].ClientID != "jwt-client" {
				t.Errorf("issued to %q", it[0].ClientID)
			}
			// The issuer as aud, in an array, with client_id.
			f = assertionForm(assertion(t, key, alg, "jwt-client", "", func(_, c map[string]any) { c["aud"] = []string{"https://other.example", u} }))
			f.Set("client_id", "jwt-client")
			send(t, http.DefaultClient, u, req{form: f}).want(t, 200, "")
			// Secret-based clients still work on the same server.
			send(t, http.DefaultClient, u, req{form: grant(), basic: []string{id, secret}}).want(t, 200, "")
		})
	}
}

func TestPrivateKeyJWTChecks(t *testing.T) {
	key, _, _ := GenerateClientKey("ES256")
	other, _, _ := GenerateClientKey("ES256")
	rsaKey, _, _ := GenerateClientKey("RS256")
	edKey, _, _ := GenerateClientKey("EdDSA")
	s := New(Options{Clients: clients(), ClientKeys: map[string]crypto.PublicKey{"jwt-client": key.Public(), "rsa-client": rsaKey.Public(), "ed-client": edKey.Public()}})
	u := start(t, s)
	aud := u + "/token"
	good := func() string { return assertion(t, key, "ES256", "jwt-client", aud, nil) }

	for _, tt := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		desc   string
	}{
		{"wrong key", assertionForm(assertion(t, other, "ES256", "jwt-client", aud, nil)), 401, "invalid_client", "signature"},
		{"other client's key", assertionForm(assertion(t, rsaKey, "RS256", "jwt-client", aud, nil)), 401, "invalid_client", "does not fit"},
		{"EdDSA key, ES256 header", assertionForm(assertion(t, edKey, "EdDSA", "ed-client", aud, func(h, _ map[string]any) { h["alg"] = "ES256" })), 401, "invalid_client", "does not fit"},
		{"RS256 signature as PS256", assertionForm(assertion(t, rsaKey, "RS256", "rsa-client", aud, func(h, _ map[string]any) { h["alg"] = "PS256" })), 401, "invalid_client", "signature"},
		{"alg none", assertionForm(unsigned(map[string]any{"alg": "none"}, map[string]any{"iss": "jwt-client", "sub": "jwt-client", "aud": aud, "exp": time.Now().Add(time.Minute).Unix(), "jti": "n1"})), 401, "invalid_client", "not supported"},
		{"alg HS256", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(h, _ map[string]any) { h["alg"] = "HS256" })), 401, "invalid_client", "not supported"},
		{"iss is not sub", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { c["sub"] = "someone" })), 401, "invalid_client", "sub"},
		{"no iss", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { delete(c, "iss") })), 401, "invalid_client", "iss"},
		{"unknown client", assertionForm(assertion(t, key, "ES256", "stranger", aud, nil)), 401, "invalid_client", "iss"},
		{"secret client", assertionForm(assertion(t, key, "ES256", id, aud, nil)), 401, "invalid_client", "iss"},
		{"wrong aud", assertionForm(assertion(t, key, "ES256", "jwt-client", "https://other.example/token", nil)), 401, "invalid_client", "aud"},
		{"no aud", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { delete(c, "aud") })), 401, "invalid_client", "aud"},
		{"expired", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() })), 401, "invalid_client", "expired"},
		{"no exp", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { delete(c, "exp") })), 401, "invalid_client", "exp"},
		{"string exp", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { c["exp"] = "soon" })), 401, "invalid_client", "exp"},
		{"nbf ahead", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), 401, "invalid_client", "nbf"},
		{"no jti", assertionForm(assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { delete(c, "jti") })), 401, "invalid_client", "jti"},
		{"not a JWS", assertionForm("not-a-jws"), 401, "invalid_client", "compact"},
		{"bad header", assertionForm("e30x." + strings.SplitN(good(), ".", 2)[1]), 401, "invalid_client", "header"},
		{"wrong assertion type", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:other"}, "client_assertion": {good()}}, 401, "invalid_client", "client_assertion_type"},
		{"no assertion", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {jwtBearerType}}, 401, "invalid_client", "missing"},
		{"client_id is not iss", func() url.Values { f := assertionForm(good()); f.Set("client_id", "rsa-client"); return f }(), 401, "invalid_client", "client_id"},
		{"with a secret too", func() url.Values { f := assertionForm(good()); f.Set("client_secret", secret); return f }(), 400, "invalid_request", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, http.DefaultClient, u, req{form: tt.form}).want(t, tt.status, tt.code)
			d := a.str("error_description")
			if !strings.Contains(d, tt.desc) || strings.Contains(d, "eyJ") || strings.Contains(a.raw, tt.form.Get("client_assertion")) && tt.form.Get("client_assertion") != "" {
				t.Errorf("description %q: want it to name %q and not quote the assertion", d, tt.desc)
			}
			if s.LastRequest().AuthMethod != AuthPrivateKeyJWT {
				t.Errorf("AuthMethod %q", s.LastRequest().AuthMethod)
			}
		})
	}

	t.Run("DER ECDSA signature", func(t *testing.T) {
		input := strings.Join(strings.Split(good(), ".")[:2], ".")
		d := sha256.Sum256([]byte(input))
		der, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
		a := send(t, http.DefaultClient, u, req{form: assertionForm(input + "." + base64.RawURLEncoding.EncodeToString(der))}).want(t, 401, "invalid_client")
		if !strings.Contains(a.str("error_description"), "r||s") {
			t.Errorf("description %q", a.str("error_description"))
		}
	})
	t.Run("replay", func(t *testing.T) {
		a := good()
		send(t, http.DefaultClient, u, req{form: assertionForm(a)}).want(t, 200, "")
		r := send(t, http.DefaultClient, u, req{form: assertionForm(a)}).want(t, 400, "invalid_client")
		if r.str("error_description") != "assertion replayed" {
			t.Errorf("description %q", r.str("error_description"))
		}
	})
	t.Run("exp an hour ahead", func(t *testing.T) {
		a := assertion(t, key, "ES256", "jwt-client", aud, func(_, c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() })
		send(t, http.DefaultClient, u, req{form: assertionForm(a)}).want(t, 200, "")
	})
	t.Run("header recorded and copied", func(t *testing.T) {
		send(t, http.DefaultClient, u, req{form: assertionForm(assertion(t, other, "ES256", "jwt-client", aud, nil))}).want(t, 401, "invalid_client")
		h := s.LastRequest().AssertionHeader
		if h["kid"] != "k1" {
			t.Fatalf("AssertionHeader %v", h)
		}
		h["kid"] = "changed"
		if s.LastRequest().AssertionHeader["kid"] != "k1" {
			t.Error("LastRequest shares its AssertionHeader")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		// Without ClientKeys an assertion is no credential.
		p := New(Options{Clients: clients()})
		send(t, http.DefaultClient, start(t, p), req{form: assertionForm(good())}).want(t, 401, "invalid_client")
		if p.LastRequest().AuthMethod != AuthNone {
			t.Errorf("AuthMethod %q", p.LastRequest().AuthMethod)
		}
	})
}

// mtlsClient trusts ca and presents the client certificate, if any.
func mtlsClient(t *testing.T, ca *CA, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestTLSClientAuth(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.ServerCert("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	walletCert, walletKey, err := ca.ClientCert("wallet-client")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, _ := ca.ClientCert("someone-else")
	stranger, _ := NewCA("stranger CA")
	strangerCert, strangerKey, _ := stranger.ClientCert("wallet-client")

	s := New(Options{Clients: clients(), TLSClientAuth: map[string]string{"wallet": "wallet-client"}})
	u, stop := s.StartTLS(serverCert, ca.Pool())
	defer stop()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"wallet"}}

	send(t, mtlsClient(t, ca, walletCert, walletKey), u, req{form: form}).want(t, 200, "")
	last := s.LastRequest()
	if last.AuthMethod != AuthTLSClient || last.ClientID != "wallet" || last.ClientCertCN != "wallet-client" {
		t.Errorf("LastRequest() = %+v", last)
	}
	if it := s.Issued(); it[0].ClientID != "wallet" {
		t.Errorf("issued to %q", it[0].ClientID)
	}
	send(t, mtlsClient(t, ca, otherCert, otherKey), u, req{form: form}).want(t, 401, "invalid_client")
	if s.LastRequest().ClientCertCN != "someone-else" {
		t.Errorf("ClientCertCN %q", s.LastRequest().ClientCertCN)
	}
	send(t, mtlsClient(t, ca, nil, nil), u, req{form: form}).want(t, 401, "invalid_client")
	// A secret client is not a tls_client_auth client, certificate or not.
	send(t, mtlsClient(t, ca, walletCert, walletKey), u, req{form: url.Values{"grant_type": {"client_credentials"}, "client_id": {id}}}).want(t, 401, "invalid_client")
	// Secret-based clients work on the same server without a certificate.
	send(t, mtlsClient(t, ca, nil, nil), u, req{form: creds(grant())}).want(t, 200, "")
	if s.LastRequest().AuthMethod != AuthPost {
		t.Errorf("AuthMethod %q", s.LastRequest().AuthMethod)
	}
	// A certificate from another CA fails the handshake (sent even though
	// the server does not list its CA).
	strangerPair, err := tls.X509KeyPair(strangerCert, strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	forced := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &strangerPair, nil }}}}
	n := s.Requests()
	if resp, err := forced.PostForm(u+"/token", form); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate from another CA was accepted: %d", resp.StatusCode)
	}
	if s.Requests() != n {
		t.Error("a request with a certificate from another CA reached the handler")
	}
	// Over plain HTTP there is no certificate.
	p := New(Options{Clients: clients(), TLSClientAuth: map[string]string{"wallet": "wallet-client"}})
	send(t, http.DefaultClient, start(t, p), req{form: form}).want(t, 401, "invalid_client")
}

func TestPKI(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(ca.CertPEM)
	caCert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || !caCert.IsCA || caCert.Subject.CommonName != "test CA" || caCert.NotAfter.Sub(caCert.NotBefore) > 25*time.Hour {
		t.Fatalf("CA %v %v", caCert, err)
	}
	if _, ok := caCert.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key %T", caCert.PublicKey)
	}
	sc, err := ca.ServerCert("127.0.0.1", "localhost", "::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		if _, err := sc.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := sc.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "example.com"}); err == nil {
		t.Error("verified for another host")
	}
	certPEM, keyPEM, err := ca.ClientCert("wallet-client")
	if err != nil {
		t.Fatal(err)
	}
	if kb, _ := pem.Decode(keyPEM); kb == nil || kb.Type != "PRIVATE KEY" {
		t.Error("the client key is not PKCS#8 PEM")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || pair.Leaf.Subject.CommonName != "wallet-client" {
		t.Errorf("client certificate: %v", err)
	}
	if _, _, err := GenerateClientKey("HS256"); err == nil {
		t.Error("GenerateClientKey accepted HS256")
	}
	for alg, want := range map[string]string{"RS256": "*rsa.PrivateKey", "ES384": "*ecdsa.PrivateKey", "EdDSA": "ed25519.PrivateKey"} {
		k, _, err := GenerateClientKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		switch k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		default:
			t.Errorf("%s: %T, want %s", alg, k, want)
		}
	}
	// StartTLS refuses TLS 1.1.
	s := New(Options{Clients: clients()})
	u, stop := s.StartTLS(sc, nil)
	defer stop()
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Post(u+"/token", "application/x-www-form-urlencoded", strings.NewReader(creds(grant()).Encode())); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 accepted")
	}
}

func TestLogNeverShowsNewCredentials(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	key, _, _ := GenerateClientKey("ES256")
	const password = "pa55-word"
	s := New(Options{Clients: clients(), Users: map[string]string{"alice": password}, IssueRefreshTokens: true, JWTAccessTokens: true, IDTokens: true,
		ClientKeys: map[string]crypto.PublicKey{"jwt-client": key.Public()}, RequiredHeaders: map[string]string{"X-Key": "header-value"}})
	h := s.loggingHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	hs := httptest.NewServer(h)
	defer hs.Close()
	ts := hs.URL
	hdr := map[string]string{"X-Key": "header-value"}

	pw := creds(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}})
	rt := send(t, http.DefaultClient, ts, req{form: pw, header: hdr}).want(t, 200, "").str("refresh_token")
	pw.Set("password", "wrong-"+password)
	send(t, http.DefaultClient, ts, req{form: pw, header: hdr}).want(t, 400, "invalid_grant")
	send(t, http.DefaultClient, ts, req{form: creds(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), header: hdr}).want(t, 200, "")
	send(t, http.DefaultClient, ts, req{form: creds(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), header: hdr}).want(t, 400, "invalid_grant")
	a := assertion(t, key, "ES256", "jwt-client", ts+"/token", nil)
	send(t, http.DefaultClient, ts, req{form: assertionForm(a), header: hdr}).want(t, 200, "")
	send(t, http.DefaultClient, ts, req{form: assertionForm(a), header: hdr}).want(t, 400, "invalid_client")
	send(t, http.DefaultClient, ts, req{form: creds(grant())}).want(t, 400, "invalid_request")

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "\n"); n != 7 || !strings.Contains(out, `client_id="jwt-client" issued`) {
		t.Errorf("log:\n%s", out)
	}
	leaks := []string{secret, password, a, strings.Split(a, ".")[2], "header-value"}
	for _, it := range s.Issued() {
		leaks = append(leaks, it.AccessToken, it.RefreshToken)
	}
	for _, l := range leaks {
		if strings.Contains(out, l) {
			t.Errorf("log leaks %q:\n%s", l, out)
		}
	}
}
