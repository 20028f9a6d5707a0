package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

const (
	testID     = "client-1"
	testSecret = "s3cret-Value_42"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testClient() *Client {
	return &Client{HTTPClient: NewHTTPClient(), Now: func() time.Time { return fixedNow }}
}

// startTokenServer runs a tokenserver with testID/testSecret registered and
// returns it with its token URL.
func startTokenServer(t *testing.T, opts tokenserver.Options) (*tokenserver.Server, string) {
	t.Helper()
	if opts.Clients == nil {
		opts.Clients = map[string]string{testID: testSecret}
	}
	srv := tokenserver.New(opts)
	u, stop := srv.Start()
	t.Cleanup(stop)
	return srv, u + "/token"
}

// startHandler serves h and counts the requests it gets.
func startHandler(t *testing.T, h http.HandlerFunc) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/token", &n
}

// reply answers every request with status, content type and body.
func reply(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hang reads the request and then waits until the client goes away (the
// server notices a closed connection only once the body has been read).
func hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func request(tokenURL string, m AuthMethod) Request {
	return Request{TokenURL: tokenURL, AuthMethod: m, ClientID: testID, ClientSecret: testSecret, Timeout: 5 * time.Second}
}

func mustError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("got a token, want an error")
	}
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("error %T %v is not an *oauth.Error", err, err)
	}
	return e
}

func TestAuthMethodsReachTheServerAsIntended(t *testing.T) {
	tests := []struct {
		name         string
		method       AuthMethod
		allowBasic   bool
		allowPost    bool
		wantAuth     string // as the server saw the last request
		wantRequests int
	}{
		{"ClientSecretBasic", AuthMethodBasic, false, false, tokenserver.AuthBasic, 1},
		{"ClientSecretPost", AuthMethodPost, false, false, tokenserver.AuthPost, 1},
		{"Auto uses Basic when accepted", AuthMethodAuto, false, false, tokenserver.AuthBasic, 1},
		{"empty method means Auto", "", true, false, tokenserver.AuthBasic, 1},
		{"Auto falls back to the body", AuthMethodAuto, false, true, tokenserver.AuthPost, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, tokenURL := startTokenServer(t, tokenserver.Options{AllowBasic: tt.allowBasic, AllowPost: tt.allowPost, ExpiresIn: 60})
			tok, err := testClient().Token(context.Background(), request(tokenURL, tt.method))
			if err != nil {
				t.Fatal(err)
			}
			if !srv.Valid(tok.AccessToken) {
				t.Fatalf("token %q was not issued by the server", tok.AccessToken)
			}
			if got := srv.Requests(); got != tt.wantRequests {
				t.Errorf("server got %d requests, want %d", got, tt.wantRequests)
			}
			last := srv.LastRequest()
			if last.AuthMethod != tt.wantAuth {
				t.Errorf("server saw auth method %q, want %q", last.AuthMethod, tt.wantAuth)
			}
			if last.Form.Get("grant_type") != "client_credentials" {
				t.Errorf("grant_type = %q", last.Form.Get("grant_type"))
			}
			switch tt.wantAuth {
			case tokenserver.AuthBasic:
				if strings.Contains(last.Body, testSecret) || last.Form.Has("client_secret") || last.Form.Has("client_id") {
					t.Errorf("Basic request body carries credentials: %q", last.Body)
				}
				if !strings.HasPrefix(last.Header.Get("Authorization"), "Basic ") {
					t.Errorf("Authorization = %q", last.Header.Get("Authorization"))
				}
			case tokenserver.AuthPost:
				if h := last.Header.Get("Authorization"); h != "" {
					t.Errorf("Post request has an Authorization header %q", h)
				}
				if last.Form.Get("client_id") != testID || last.Form.Get("client_secret") != testSecret {
					t.Errorf("Post form = %v", last.Form)
				}
			}
		})
	}
}

func TestAutoFallbackOnlyAfterRefusal(t *testing.T) {
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		wantKind     ErrorKind
		wantRequests int32
	}{
		{"401 is retried with body credentials", reply(401, "application/json", `{"error":"invalid_client"}`), KindRejected, 2},
		{"400 is retried with body credentials", reply(400, "application/json", `{"error":"invalid_request"}`), KindRejected, 2},
		{"503 is not", reply(503, "text/html", "<html>down</html>"), KindTransient, 1},
		{"429 is not", reply(429, "application/json", `{"error":"slow_down"}`, "Retry-After", "5"), KindTransient, 1},
		{"a redirect is not", reply(302, "", "", "Location", "https://elsewhere.example/token"), KindRejected, 1},
		{"a bad 2xx is not", reply(200, "application/json", `{}`), KindInvalidResponse, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL, n := startHandler(t, tt.handler)
			_, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodAuto))
			e := mustError(t, err)
			if e.Kind != tt.wantKind {
				t.Errorf("Kind = %s, want %s (%v)", e.Kind, tt.wantKind, e)
			}
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if tt.wantRequests == 2 && !strings.Contains(e.Error(), "then ClientSecretPost") {
				t.Errorf("message does not tell about the fallback: %v", e)
			}
		})
	}
}

func TestBasicCredentialsAreURLEncoded(t *testing.T) {
	const id = "my:client/id+1 two%3A"
	const secret = "pa:ss/wo+rd with spaces&=é%"
	srv, tokenURL := startTokenServer(t, tokenserver.Options{Clients: map[string]string{id: secret}, AllowBasic: true})
	req := Request{TokenURL: tokenURL, AuthMethod: AuthMethodBasic, ClientID: id, ClientSecret: secret}
	if _, err := testClient().Token(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	last := srv.LastRequest()
	if last.ClientID != id {
		t.Errorf("server decoded client id %q, want %q", last.ClientID, id)
	}
	// The raw Basic user and password are the form-encoded id and secret.
	r := &http.Request{Header: last.Header}
	user, pass, ok := r.BasicAuth()
	if !ok || user != url.QueryEscape(id) || pass != url.QueryEscape(secret) {
		t.Errorf("Basic credentials %q:%q, want %q:%q", user, pass, url.QueryEscape(id), url.QueryEscape(secret))
	}
	if strings.Count(user+pass, ":") != 0 {
		t.Errorf("a ':' survived encoding: %q:%q", user, pass)
	}
}

func TestRequestParameters(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Request)
		check func(t *testing.T, form url.Values)
	}{
		{"scopes are space-joined", func(r *Request) { r.Scopes = []string{"wallets:read", "wallets:write", "openid"} }, func(t *testing.T, f url.Values) {
			if got := f.Get("scope"); got != "wallets:read wallets:write openid" {
				t.Errorf("scope = %q", got)
			}
		}},
		{"no scopes, no scope parameter", func(r *Request) {}, func(t *testing.T, f url.Values) {
			if f.Has("scope") || f.Has("audience") {
				t.Errorf("form = %v", f)
			}
		}},
		{"audience and extra parameters", func(r *Request) {
			r.Audience = "https://api.example.com"
			r.ExtraParams = map[string]string{"product": "urn:x", "tenant": "a b&c"}
		}, func(t *testing.T, f url.Values) {
			if f.Get("audience") != "https://api.example.com" || f.Get("product") != "urn:x" || f.Get("tenant") != "a b&c" {
				t.Errorf("form = %v", f)
			}
		}},
		{"extra scope without Scopes", func(r *Request) { r.ExtraParams = map[string]string{"scope": "x y"} }, func(t *testing.T, f url.Values) {
			if f.Get("scope") != "x y" {
				t.Errorf("form = %v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, tokenURL := startTokenServer(t, tokenserver.Options{})
			req := request(tokenURL, AuthMethodBasic)
			tt.edit(&req)
			if _, err := testClient().Token(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			form := srv.LastRequest().Form
			if form.Get("grant_type") != "client_credentials" {
				t.Errorf("grant_type = %q", form.Get("grant_type"))
			}
			tt.check(t, form)
		})
	}
}

func TestExpiresIn(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        time.Duration
	}{
		{"number", "application/json", `{"access_token":"a","expires_in":3600}`, time.Hour},
		{"numeric string", "application/json", `{"access_token":"a","expires_in":"3600"}`, time.Hour},
		{"missing", "application/json", `{"access_token":"a"}`, 0},
		{"null", "application/json", `{"access_token":"a","expires_in":null}`, 0},
		{"zero", "application/json", `{"access_token":"a","expires_in":0}`, 0},
		{"negative", "application/json", `{"access_token":"a","expires_in":-30}`, 0},
		{"negative string", "application/json", `{"access_token":"a","expires_in":"-30"}`, 0},
		{"huge is capped like x/oauth2 does", "application/json", `{"access_token":"a","expires_in":99999999999}`, maxExpiresIn},
		{"form-encoded answer", "application/x-www-form-urlencoded", `access_token=a&expires_in=120`, 2 * time.Minute},
		{"JSON without content-type (Go sniffs text/plain)", "", `{"access_token":"a","expires_in":60}`, time.Minute},
		{"JSON labelled text/plain, string expires_in", "text/plain; charset=utf-8", `{"access_token":"a","expires_in":"60"}`, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL, _ := startHandler(t, reply(200, tt.contentType, tt.body))
			tok, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodBasic))
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != tt.want {
				t.Errorf("ExpiresIn = %v, want %v", tok.ExpiresIn, tt.want)
			}
		})
	}
	t.Run("tokenserver number and string", func(t *testing.T) {
		for _, asString := range []bool{false, true} {
			_, tokenURL := startTokenServer(t, tokenserver.Options{ExpiresIn: 90, ExpiresInAsString: asString})
			tok, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodAuto))
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != 90*time.Second {
				t.Errorf("asString=%v: ExpiresIn = %v", asString, tok.ExpiresIn)
			}
		}
	})
}

// x/oauth2 refuses the whole response when expires_in is not an integer;
// these document that (a caveat) and check the message names the field.
func TestUnusableExpiresInIsInvalidResponse(t *testing.T) {
	for _, v := range []string{`3600.5`, `"3600.5"`, `""`, `"soon"`, `true`} {
		t.Run(v, func(t *testing.T) {
			tokenURL, _ := startHandler(t, reply(200, "application/json", `{"access_token":"tst_leak","expires_in":`+v+`}`))
			_, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodBasic))
			e := mustError(t, err)
			if e.Kind != KindInvalidResponse || e.StatusCode != 200 {
				t.Errorf("Kind %s status %d, want InvalidResponse 200", e.Kind, e.StatusCode)
			}
			if !strings.Contains(e.Description, "expires_in") || strings.Contains(e.Error(), "tst_leak") {
				t.Errorf("message = %q", e.Error())
			}
		})
	}
}

func TestTokenFields(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantType   string
		wantScopes []string
	}{
		{"defaults", `{"access_token":"a"}`, "Bearer", nil},
		{"lower-case bearer is normalised", `{"access_token":"a","token_type":"bearer"}`, "Bearer", nil},
		{"other types kept", `{"access_token":"a","token_type":"DPoP"}`, "DPoP", nil},
		{"granted scope", `{"access_token":"a","scope":"read  write"}`, "Bearer", []string{"read", "write"}},
		{"empty granted scope", `{"access_token":"a","scope":""}`, "Bearer", nil},
		{"scope as array", `{"access_token":"a","scope":["read","write"]}`, "Bearer", []string{"read", "write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL, _ := startHandler(t, reply(200, "application/json", tt.body))
			tok, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodBasic))
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "a" || tok.TokenType != tt.wantType || !slices.Equal(tok.Scopes, tt.wantScopes) || !tok.ReceivedAt.Equal(fixedNow) {
				t.Errorf("token = %+v, want type %q scopes %q received %v", tok, tt.wantType, tt.wantScopes, fixedNow)
			}
		})
	}
}

func TestGrantedScopesFromTokenServer(t *testing.T) {
	_, tokenURL := startTokenServer(t, tokenserver.Options{AllowedScopes: []string{"a", "b"}})
	req := request(tokenURL, AuthMethodPost)
	req.Scopes = []string{"a", "b"}
	tok, err := testClient().Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Scopes, []string{"a", "b"}) || tok.ExpiresIn != 0 {
		t.Errorf("token = %+v", tok)
	}
}

type errorCase struct {
	name        string
	handler     http.HandlerFunc
	wantKind    ErrorKind
	wantStatus  int
	wantCode    string
	wantDesc    string // substring of Description
	wantRetry   time.Duration
	notInErrMsg []string
}

var httpDate = fixedNow.Add(2 * time.Minute).Format(http.TimeFormat)

func errorCases() []errorCase {
	return []errorCase{
		{name: "invalid_client 401", handler: reply(401, "application/json", `{"error":"invalid_client","error_description":"Client authentication failed"}`, "WWW-Authenticate", "Basic"),
			wantKind: KindRejected, wantStatus: 401, wantCode: "invalid_client", wantDesc: "Client authentication failed"},
		{name: "invalid_scope 400", handler: reply(400, "application/json;charset=UTF-8", `{"error":"invalid_scope","error_description":"scope \"admin\" not allowed"}`),
			wantKind: KindRejected, wantStatus: 400, wantCode: "invalid_scope", wantDesc: `scope "admin" not allowed`},
		{name: "unauthorized_client 400", handler: reply(400, "application/json", `{"error":"unauthorized_client"}`),
			wantKind: KindRejected, wantStatus: 400, wantCode: "unauthorized_client"},
		{name: "form-encoded error", handler: reply(400, "application/x-www-form-urlencoded", `error=invalid_grant&error_description=nope`),
			wantKind: KindRejected, wantStatus: 400, wantCode: "invalid_grant", wantDesc: "nope"},
		{name: "other 4xx without a body", handler: reply(403, "", ""),
			wantKind: KindRejected, wantStatus: 403, wantDesc: "empty body"},
		{name: "404 HTML page", handler: reply(404, "text/html", "<html><body>Not Found tst_secretish</body></html>"),
			wantKind: KindRejected, wantStatus: 404, wantDesc: "non-JSON body (content-type text/html, 49 bytes)", notInErrMsg: []string{"<html", "Not Found"}},
		{name: "error code in a 200", handler: reply(200, "application/json", `{"error":"invalid_client"}`),
			wantKind: KindRejected, wantStatus: 200, wantCode: "invalid_client"},
		{name: "non-JSON 200", handler: reply(200, "text/html", "<html>login page tst_abc</html>"),
			wantKind: KindInvalidResponse, wantStatus: 200, wantDesc: "non-JSON body (content-type text/html", notInErrMsg: []string{"<html", "login"}},
		{name: "200 without access_token", handler: reply(200, "application/json", `{"token_type":"Bearer","token":"tst_abc","expires_in":60}`),
			wantKind: KindInvalidResponse, wantStatus: 200, wantDesc: "no access_token"},
		{name: "JSON without access_token sent as text/plain", handler: reply(200, "text/plain", `{"token":"tst_abc"}`),
			wantKind: KindInvalidResponse, wantStatus: 200, wantDesc: "must send application/json"},
		{name: "JSON error sent as text/plain", handler: reply(401, "text/plain", `{"error":"invalid_client","error_description":"bad"}`),
			wantKind: KindRejected, wantStatus: 401, wantCode: "invalid_client", wantDesc: "bad"},
		{name: "JSON error in a 200 sent as text/plain", handler: reply(200, "text/plain", `{"error":"invalid_scope"}`),
			wantKind: KindRejected, wantStatus: 200, wantCode: "invalid_scope"},
		{name: "200 with a non-string access_token", handler: reply(200, "application/json", `{"access_token":12345}`),
			wantKind: KindInvalidResponse, wantStatus: 200, wantDesc: "access_token is not a string"},
		{name: "200 with a JSON array", handler: reply(200, "application/json", `["tst_abc"]`),
			wantKind: KindInvalidResponse, wantStatus: 200, wantDesc: "not a JSON object"},
		{name: "HTML 502", handler: reply(502, "text/html; charset=utf-8", "<html><h1>502 Bad Gateway</h1>nginx</html>"),
			wantKind: KindTransient, wantStatus: 502, wantDesc: "non-JSON body (content-type text/html", notInErrMsg: []string{"<h1>", "nginx"}},
		{name: "503 Retry-After seconds", handler: reply(503, "", "", "Retry-After", "30"),
			wantKind: KindTransient, wantStatus: 503, wantRetry: 30 * time.Second},
		{name: "429 Retry-After HTTP-date", handler: reply(429, "application/json", `{"error":"slow_down"}`, "Retry-After", httpDate),
			wantKind: KindTransient, wantStatus: 429, wantCode: "slow_down", wantRetry: 2 * time.Minute},
		{name: "429 Retry-After in the past", handler: reply(429, "", "", "Retry-After", fixedNow.Add(-time.Hour).Format(http.TimeFormat)),
			wantKind: KindTransient, wantStatus: 429},
		{name: "503 Retry-After garbage", handler: reply(503, "", "", "Retry-After", "soon"),
			wantKind: KindTransient, wantStatus: 503},
		{name: "503 Retry-After huge is capped", handler: reply(503, "", "", "Retry-After", "99999999999999"),
			wantKind: KindTransient, wantStatus: 503, wantRetry: 24 * time.Hour},
		{name: "408", handler: reply(408, "", ""), wantKind: KindTransient, wantStatus: 408},
		{name: "500 server_error", handler: reply(500, "application/json", `{"error":"server_error"}`),
			wantKind: KindTransient, wantStatus: 500, wantCode: "server_error"},
		{name: "400 temporarily_unavailable", handler: reply(400, "application/json", `{"error":"temporarily_unavailable"}`),
			wantKind: KindTransient, wantStatus: 400, wantCode: "temporarily_unavailable"},
		{name: "500 JSON without error code", handler: reply(500, "application/json", `{"message":"boom"}`),
			wantKind: KindTransient, wantStatus: 500, wantDesc: "JSON body without an OAuth error code", notInErrMsg: []string{"boom"}},
		{name: "redirect 302", handler: reply(302, "", "", "Location", "https://user:pw@idp.example.com/oauth/token?x=1"),
			wantKind: KindRejected, wantStatus: 302, wantDesc: "token endpoint redirected to https://idp.example.com/oauth/token; set tokenURL to the final URL", notInErrMsg: []string{"pw", "x=1"}},
		{name: "redirect 308 relative", handler: reply(308, "", "", "Location", "/v2/token"),
			wantKind: KindRejected, wantStatus: 308, wantDesc: "/v2/token; set tokenURL to the final URL"},
		{name: "description is cleaned and truncated", handler: reply(400, "application/json", `{"error":"invalid_request","error_description":"bad\u0000\u001b[31m\nthing `+strings.Repeat("x", 1000)+`"}`),
			wantKind: KindRejected, wantStatus: 400, wantCode: "invalid_request", wantDesc: "bad[31m thing xxx"},
	}
}

func TestErrorResponses(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL, n := startHandler(t, tt.handler)
			_, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodPost))
			e := mustError(t, err)
			if e.Kind != tt.wantKind || e.StatusCode != tt.wantStatus || e.Code != tt.wantCode || e.RetryAfter != tt.wantRetry {
				t.Errorf("got Kind=%s Status=%d Code=%q RetryAfter=%v, want %s %d %q %v (%v)",
					e.Kind, e.StatusCode, e.Code, e.RetryAfter, tt.wantKind, tt.wantStatus, tt.wantCode, tt.wantRetry, e)
			}
			if !strings.Contains(e.Description, tt.wantDesc) {
				t.Errorf("Description = %q, want it to contain %q", e.Description, tt.wantDesc)
			}
			if len(e.Description) > maxDescription+3 {
				t.Errorf("Description is %d bytes long", len(e.Description))
			}
			for _, s := range tt.notInErrMsg {
				if strings.Contains(e.Error(), s) {
					t.Errorf("Error() %q contains %q", e.Error(), s)
				}
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d requests, want 1 (redirects must not be followed)", got)
			}
		})
	}
}

func TestErrorMessageFormat(t *testing.T) {
	tokenURL, _ := startHandler(t, reply(401, "application/json", `{"error":"invalid_client","error_description":"Client authentication failed"}`))
	_, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodBasic))
	if got, want := err.Error(), "token endpoint returned 401: invalid_client: Client authentication failed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("reconcile: %w", err)
	if e, ok := AsError(wrapped); !ok || e.Code != "invalid_client" {
		t.Errorf("AsError(wrapped) = %v, %v", e, ok)
	}
	if _, ok := AsError(errors.New("x")); ok {
		t.Error("AsError accepted a plain error")
	}
}

func TestRedirectNotFollowedEvenByACustomClient(t *testing.T) {
	target, hits := startHandler(t, reply(200, "application/json", `{"access_token":"tst_wrong"}`))
	tokenURL, _ := startHandler(t, reply(307, "", "", "Location", target))
	// http.Client{} follows redirects by default.
	c := &Client{HTTPClient: &http.Client{}}
	_, err := c.Token(context.Background(), request(tokenURL, AuthMethodPost))
	e := mustError(t, err)
	if e.Kind != KindRejected || !strings.Contains(e.Description, "redirected to "+target) {
		t.Errorf("got %v", e)
	}
	if hits.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"no response headers", hang},
		{"body stalls", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"tst_`)
			w.(http.Flusher).Flush()
			hang(w, r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokenURL, _ := startHandler(t, tt.handler)
			for _, m := range []AuthMethod{AuthMethodBasic, AuthMethodAuto} {
				req := request(tokenURL, m)
				req.Timeout = 300 * time.Millisecond
				start := time.Now()
				_, err := testClient().Token(context.Background(), req)
				took := time.Since(start)
				e := mustError(t, err)
				if e.Kind != KindTransient || !strings.Contains(e.Description, "within 300ms") {
					t.Errorf("%s: got %v", m, e)
				}
				if took < 250*time.Millisecond || took > 2*time.Second {
					t.Errorf("%s: took %v for a 300ms timeout", m, took)
				}
			}
		})
	}
}

func TestParentContextCanceled(t *testing.T) {
	tokenURL, _ := startHandler(t, hang)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := testClient().Token(ctx, request(tokenURL, AuthMethodBasic))
	e := mustError(t, err)
	if e.Kind != KindTransient || e.Description != "request canceled" || !errors.Is(e, context.Canceled) {
		t.Errorf("got %v", e)
	}
}

func TestConnectionFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/token?tenant=secret-tenant"
	ln.Close()

	reset, _ := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	})
	for _, tc := range []struct{ name, url string }{{"refused", refused}, {"reset", reset}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testClient().Token(context.Background(), request(tc.url, AuthMethodAuto))
			e := mustError(t, err)
			if e.Kind != KindTransient || e.StatusCode != 0 || e.Err == nil {
				t.Errorf("got Kind=%s Status=%d Err=%v", e.Kind, e.StatusCode, e.Err)
			}
			if strings.Contains(e.Error(), "secret-tenant") {
				t.Errorf("the query string leaked: %v", e)
			}
		})
	}
}

func TestTLSVerificationFailure(t *testing.T) {
	ts := httptest.NewUnstartedServer(reply(200, "application/json", `{"access_token":"a"}`))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
	ts.StartTLS()
	defer ts.Close()
	_, err := testClient().Token(context.Background(), request(ts.URL+"/token", AuthMethodBasic))
	e := mustError(t, err)
	if e.Kind != KindTransient || !strings.Contains(e.Description, "TLS certificate") {
		t.Errorf("got %v", e)
	}
	// With the server's CA trusted it works.
	c := &Client{HTTPClient: ts.Client()}
	if _, err := c.Token(context.Background(), request(ts.URL+"/token", AuthMethodBasic)); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsSendNothing(t *testing.T) {
	tokenURL, n := startHandler(t, reply(200, "application/json", `{"access_token":"a"}`))
	tests := []struct {
		name string
		edit func(*Request)
	}{
		{"unparseable URL", func(r *Request) { r.TokenURL = "http://[::1" }},
		{"relative URL", func(r *Request) { r.TokenURL = "/token" }},
		{"no scheme", func(r *Request) { r.TokenURL = "idp.example.com/token" }},
		{"ftp URL", func(r *Request) { r.TokenURL = "ftp://idp.example.com/token" }},
		{"user info", func(r *Request) { r.TokenURL = "https://u:" + testSecret + "@idp.example.com/token" }},
		{"fragment", func(r *Request) { r.TokenURL = tokenURL + "#x" }},
		{"unknown auth method", func(r *Request) { r.AuthMethod = "Digest" }},
		{"empty client id", func(r *Request) { r.ClientID = "" }},
		{"extra grant_type", func(r *Request) { r.ExtraParams = map[string]string{"grant_type": "password"} }},
		{"extra client_secret", func(r *Request) { r.ExtraParams = map[string]string{"client_secret": "x"} }},
		{"extra scope with Scopes", func(r *Request) { r.Scopes = []string{"a"}; r.ExtraParams = map[string]string{"scope": "b"} }},
		{"extra audience with Audience", func(r *Request) { r.Audience = "a"; r.ExtraParams = map[string]string{"audience": "b"} }},
		{"extra with empty name", func(r *Request) { r.ExtraParams = map[string]string{"": "b"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(tokenURL, AuthMethodAuto)
			tt.edit(&req)
			_, err := testClient().Token(context.Background(), req)
			e := mustError(t, err)
			if e.Kind != KindConfig || e.StatusCode != 0 {
				t.Errorf("got %s %v", e.Kind, e)
			}
			if strings.Contains(e.Error(), testSecret) {
				t.Errorf("message leaks the secret: %v", e)
			}
		})
	}
	if n.Load() != 0 {
		t.Errorf("%d requests sent for bad configurations", n.Load())
	}
}

// x/oauth2 reads at most 1 MiB of a token response; a larger one is cut
// and cannot be parsed.
func TestResponseBodyCappedAt1MiB(t *testing.T) {
	big := `{"access_token":"a","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	tokenURL, _ := startHandler(t, reply(200, "application/json", big))
	_, err := testClient().Token(context.Background(), request(tokenURL, AuthMethodBasic))
	e := mustError(t, err)
	if e.Kind != KindInvalidResponse || !strings.Contains(e.Description, "cut at 1048576 bytes") {
		t.Errorf("got %v", e)
	}
}

// No error message may contain the client secret (raw or URL-encoded) or a
// token from the response, whatever the endpoint sends back.
func TestErrorsNeverContainSecretsOrTokens(t *testing.T) {
	const secret = "Sup3r/Secret+Value with space"
	const tok = "tst_LeakedTokenValue123"
	echo := func(status int, ct, body string, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			body := strings.NewReplacer("$SECRET", secret, "$TOKEN", tok, "$BODY", string(b), "$AUTH", r.Header.Get("Authorization")).Replace(body)
			reply(status, ct, body, header...)(w, r)
		}
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"description echoes the secret", echo(401, "application/json", `{"error":"invalid_client","error_description":"secret $SECRET is wrong"}`)},
		{"description echoes the request", echo(400, "application/json", `{"error":"invalid_request","error_description":"got $BODY / $AUTH"}`)},
		{"error code echoes the secret", echo(400, "application/json", `{"error":"$SECRET"}`)},
		{"HTML page with secret and token", echo(502, "text/html", `<p>$SECRET $TOKEN $BODY</p>`)},
		{"text 500 with token", echo(500, "text/plain", `access_token=$TOKEN`)},
		{"200 HTML with token", echo(200, "text/html", `<p>$TOKEN</p>`)},
		{"200 bad expires_in with token", echo(200, "application/json", `{"access_token":"$TOKEN","expires_in":"$SECRET"}`)},
		{"200 non-string access_token", echo(200, "application/json", `{"access_token":["$TOKEN"]}`)},
		{"200 without access_token", echo(200, "application/json", `{"token":"$TOKEN","secret":"$SECRET"}`)},
		{"200 error code and token", echo(200, "application/json", `{"error":"invalid_scope","access_token":"$TOKEN"}`)},
		{"redirect carrying them", echo(302, "", "", "Location", "https://x.example/?t="+tok+"&s="+url.QueryEscape(secret))},
		{"429 with token body", echo(429, "application/json", `{"error":"slow_down","access_token":"$TOKEN"}`, "Retry-After", "1")},
	}
	for _, tc := range cases {
		for _, m := range []AuthMethod{AuthMethodBasic, AuthMethodPost, AuthMethodAuto} {
			t.Run(tc.name+"/"+string(m), func(t *testing.T) {
				tokenURL, _ := startHandler(t, tc.handler)
				req := request(tokenURL, m)
				req.ClientSecret = secret
				_, err := testClient().Token(context.Background(), req)
				e := mustError(t, err)
				assertClean(t, e.Error(), secret, tok)
				assertClean(t, e.Code+" "+e.Description, secret, tok)
			})
		}
	}
	// And the errors without a response.
	for _, tc := range errorCases() {
		t.Run("catalogue/"+tc.name, func(t *testing.T) {
			tokenURL, _ := startHandler(t, tc.handler)
			req := request(tokenURL, AuthMethodAuto)
			req.ClientSecret = secret
			_, err := testClient().Token(context.Background(), req)
			assertClean(t, mustError(t, err).Error(), secret, "tst_")
		})
	}
	t.Run("timeout", func(t *testing.T) {
		tokenURL, _ := startHandler(t, hang)
		req := request(tokenURL, AuthMethodPost)
		req.ClientSecret = secret
		req.Timeout = 50 * time.Millisecond
		_, err := testClient().Token(context.Background(), req)
		assertClean(t, mustError(t, err).Error(), secret, tok)
	})
	t.Run("issued tokens", func(t *testing.T) {
		srv, tokenURL := startTokenServer(t, tokenserver.Options{Clients: map[string]string{testID: secret}})
		c := testClient()
		req := request(tokenURL, AuthMethodBasic) // one request per failure
		req.ClientSecret = secret
		if _, err := c.Token(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		issued := srv.Issued()[0].AccessToken
		srv.FailNext(1, 500, "<html>"+issued+"</html>", nil)
		srv.FailNext(1, 400, `{"error":"invalid_request","error_description":"token `+issued+` is still valid"}`, nil)
		srv.FailNext(1, 401, `{"error":"invalid_client","error_description":"`+issued+`"}`, nil)
		var msg string
		for range 3 {
			_, err := c.Token(context.Background(), req)
			msg += mustError(t, err).Error() + "\n"
		}
		req.ClientSecret = "wrong-" + secret
		_, err := c.Token(context.Background(), req)
		msg += mustError(t, err).Error()
		for _, it := range srv.Issued() {
			assertClean(t, msg, secret, it.AccessToken)
		}
	})
}

func assertClean(t *testing.T, msg, secret, token string) {
	t.Helper()
	for _, s := range []string{secret, url.QueryEscape(secret), token} {
		if strings.Contains(msg, s) {
			t.Errorf("message %q contains %q", msg, s)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	srv, tokenURL := startTokenServer(t, tokenserver.Options{ExpiresIn: 60})
	c := &Client{}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := []AuthMethod{AuthMethodBasic, AuthMethodPost, AuthMethodAuto}[i%3]
			if _, err := c.Token(context.Background(), request(tokenURL, m)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(srv.Issued()); got != 20 {
		t.Errorf("%d tokens issued, want 20", got)
	}
}

func TestDefaultTimeout(t *testing.T) {
	if DefaultTimeout != 10*time.Second {
		t.Errorf("DefaultTimeout = %v", DefaultTimeout)
	}
}

func TestNewHTTPClient(t *testing.T) {
	hc := NewHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T", hc.Transport)
	}
	if tr.TLSClientConfig.MinVersion != 0x0303 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v", tr.TLSClientConfig)
	}
	if tr.Proxy == nil || tr.TLSHandshakeTimeout == 0 || tr.ResponseHeaderTimeout == 0 || tr.DialContext == nil || tr.MaxIdleConnsPerHost == 0 {
		t.Errorf("transport %+v", tr)
	}
	if err := hc.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v", err)
	}
}

func TestRedactedURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://idp.example.com/oauth/token", "https://idp.example.com/oauth/token"},
		{"https://user:pass@idp.example.com:8443/t?client_secret=x&a=b#frag", "https://idp.example.com:8443/t"},
		{"https://idp.example.com/t?", "https://idp.example.com/t"},
		{"http://[::1", "(unparseable URL)"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactedURL(tt.in); got != tt.want {
			t.Errorf("RedactedURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"120", 2 * time.Minute}, {" 7 ", 7 * time.Second},
		{fixedNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{fixedNow.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second},
		{fixedNow.Add(-time.Second).Format(http.TimeFormat), 0},
		{"1.5", 0}, {"tomorrow", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, fixedNow); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
