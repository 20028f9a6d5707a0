package oauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

const (
	trickyID     = "client:id/with+plus and space"
	trickySecret = "s3cr:et/with+plus and space=="
)

func newServer(t *testing.T, opts tokenserver.Options) (*tokenserver.Server, string) {
	t.Helper()
	srv := tokenserver.New(opts)
	u, stop := srv.Start()
	t.Cleanup(stop)
	return srv, u + "/token"
}

// handlerServer serves a hand-written token endpoint.
func handlerServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/token"
}

func request(tokenURL string, m AuthMethod) Request {
	return Request{TokenURL: tokenURL, AuthMethod: m, ClientID: trickyID, ClientSecret: trickySecret}
}

func TestAuthMethodsReachTheServerAsIntended(t *testing.T) {
	for _, tc := range []struct {
		method AuthMethod
		opts   tokenserver.Options
		want   string
	}{
		{AuthMethodBasic, tokenserver.Options{AllowBasic: true}, "basic"},
		{AuthMethodPost, tokenserver.Options{AllowPost: true}, "post"},
		{AuthMethodAuto, tokenserver.Options{AllowBasic: true}, "basic"},
		// Auto falls back to body credentials when Basic is refused.
		{AuthMethodAuto, tokenserver.Options{AllowPost: true}, "post"},
	} {
		t.Run(fmt.Sprintf("%s against %s-only", tc.method, tc.want), func(t *testing.T) {
			tc.opts.Clients = map[string]string{trickyID: trickySecret}
			tc.opts.ExpiresIn = 3600
			srv, u := newServer(t, tc.opts)
			tok, err := (&Client{}).Token(context.Background(), request(u, tc.method))
			if err != nil {
				t.Fatal(err)
			}
			last := srv.LastRequest()
			if last.AuthMethod != tc.want || last.ClientID != trickyID {
				t.Fatalf("server saw auth %q client %q", last.AuthMethod, last.ClientID)
			}
			if tc.want == "basic" && last.Form.Has("client_secret") {
				t.Fatal("Basic request carried the secret in the body too")
			}
			if tc.want == "post" && last.Header.Get("Authorization") != "" {
				t.Fatal("body-credentials request carried an Authorization header")
			}
			if last.Form.Get("grant_type") != "client_credentials" {
				t.Fatalf("grant_type = %q", last.Form.Get("grant_type"))
			}
			if tok.AccessToken != srv.Issued()[len(srv.Issued())-1].AccessToken || tok.TokenType != "Bearer" || tok.ExpiresIn != time.Hour {
				t.Fatalf("token = %+v", tok)
			}
		})
	}
}

func TestBasicCredentialsAreURLEncoded(t *testing.T) {
	var header string
	u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	})
	if _, err := (&Client{}).Token(context.Background(), request(u, AuthMethodBasic)); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header, "Basic "))
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6749 section 2.3.1: each part form-urlencoded before joining with ':'.
	want := url.QueryEscape(trickyID) + ":" + url.QueryEscape(trickySecret)
	if string(raw) != want {
		t.Fatalf("Basic credentials = %q, want %q", raw, want)
	}
	id, secret, _ := strings.Cut(string(raw), ":")
	gotID, _ := url.QueryUnescape(id)
	gotSecret, _ := url.QueryUnescape(secret)
	if gotID != trickyID || gotSecret != trickySecret {
		t.Fatal("credentials do not decode back exactly")
	}
}

func TestScopesAudienceAndExtraParams(t *testing.T) {
	srv, u := newServer(t, tokenserver.Options{Clients: map[string]string{trickyID: trickySecret}, ExpiresIn: 60})
	req := request(u, AuthMethodPost)
	req.Scopes = []string{"wallets:read", "wallets:write"}
	req.Audience = "https://api.example.com"
	req.ExtraParams = map[string]string{"resource_id": "42"}
	tok, err := (&Client{}).Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	f := srv.LastRequest().Form
	if f.Get("scope") != "wallets:read wallets:write" || f.Get("audience") != "https://api.example.com" || f.Get("resource_id") != "42" {
		t.Fatalf("form = %v", redactForm(f))
	}
	if strings.Join(tok.Scopes, " ") != "wallets:read wallets:write" {
		t.Fatalf("granted scopes = %v", tok.Scopes)
	}

	// No scopes: no scope parameter at all.
	req.Scopes = nil
	if _, err := (&Client{}).Token(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if srv.LastRequest().Form.Has("scope") {
		t.Fatal("scope sent without scopes")
	}
}

func redactForm(f url.Values) url.Values {
	c := url.Values{}
	for k, v := range f {
		if k != "client_secret" {
			c[k] = v
		}
	}
	return c
}

func TestExpiresInForms(t *testing.T) {
	for _, tc := range []struct {
		body string
		want time.Duration
	}{
		{`{"access_token":"x","expires_in":3600}`, time.Hour},
		{`{"access_token":"x","expires_in":"3600"}`, time.Hour},
		{`{"access_token":"x","expires_in":864000}`, 240 * time.Hour},
		{`{"access_token":"x"}`, 0},
		{`{"access_token":"x","expires_in":0}`, 0},
		{`{"access_token":"x","expires_in":-5}`, 0},
	} {
		t.Run(tc.body, func(t *testing.T) {
			u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.body)
			})
			tok, err := (&Client{}).Token(context.Background(), request(u, AuthMethodBasic))
			if err != nil {
				t.Fatal(err)
			}
			if tok.ExpiresIn != tc.want {
				t.Fatalf("ExpiresIn = %v, want %v", tok.ExpiresIn, tc.want)
			}
		})
	}
}

func TestUnparseableExpiresInIsAnInvalidResponse(t *testing.T) {
	u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"x","expires_in":"soon"}`)
	})
	_, err := (&Client{}).Token(context.Background(), request(u, AuthMethodBasic))
	if e, ok := AsError(err); !ok || e.Kind != KindInvalidResponse {
		t.Fatalf("error = %v, want InvalidResponse", err)
	}
}

func TestExpiresInAsStringFromServer(t *testing.T) {
	_, u := newServer(t, tokenserver.Options{Clients: map[string]string{trickyID: trickySecret}, ExpiresIn: 120, ExpiresInAsString: true})
	tok, err := (&Client{}).Token(context.Background(), request(u, AuthMethodBasic))
	if err != nil || tok.ExpiresIn != 2*time.Minute {
		t.Fatalf("tok %+v err %v", tok, err)
	}
}

func TestErrors(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		status   int
		ctype    string
		body     string
		header   http.Header
		kind     ErrorKind
		code     string
		desc     string
		retry    time.Duration
		notInMsg string
	}{
		{name: "invalid_client", status: 401, ctype: "application/json",
			body: `{"error":"invalid_client","error_description":"Client authentication failed"}`,
			kind: KindRejected, code: "invalid_client", desc: "Client authentication failed"},
		{name: "invalid_scope", status: 400, ctype: "application/json",
			body: `{"error":"invalid_scope","error_description":"scope \"admin\" is not allowed"}`,
			kind: KindRejected, code: "invalid_scope", desc: `scope "admin" is not allowed`},
		{name: "unauthorized_client", status: 400, ctype: "application/json",
			body: `{"error":"unauthorized_client"}`, kind: KindRejected, code: "unauthorized_client"},
		{name: "non-JSON 200", status: 200, ctype: "text/html", body: `<html>welcome</html>`, kind: KindInvalidResponse, notInMsg: "welcome"},
		{name: "200 without access_token", status: 200, ctype: "application/json", body: `{"token_type":"Bearer","expires_in":60}`, kind: KindInvalidResponse},
		{name: "HTML 502 page", status: 502, ctype: "text/html", body: `<html><body>Bad gateway from nginx</body></html>`, kind: KindTransient, notInMsg: "nginx"},
		{name: "503 with Retry-After seconds", status: 503, ctype: "text/plain", body: "busy", header: http.Header{"Retry-After": {"120"}}, kind: KindTransient, retry: 2 * time.Minute},
		{name: "429 with Retry-After date", status: 429, ctype: "application/json", body: `{"error":"slow_down"}`,
			header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, kind: KindTransient, code: "slow_down", retry: 90 * time.Second},
		{name: "redirect not followed", status: 302, header: http.Header{"Location": {"https://elsewhere.example.com/token?x=1"}}, kind: KindRejected, desc: "redirected to https://elsewhere.example.com/token"},
		{name: "other 4xx", status: 404, ctype: "text/plain", body: "not found", kind: KindRejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redirectTarget := 0
			u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/token" {
					redirectTarget++
				}
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := (&Client{Now: func() time.Time { return now }}).Token(context.Background(), request(u, AuthMethodBasic))
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.Kind != tc.kind || e.Code != tc.code || (tc.desc != "" && !strings.Contains(e.Description, tc.desc)) {
				t.Fatalf("error = %+v (%q)", e, e.Error())
			}
			if e.RetryAfter != tc.retry {
				t.Fatalf("RetryAfter = %v, want %v", e.RetryAfter, tc.retry)
			}
			if tc.notInMsg != "" && strings.Contains(e.Error(), tc.notInMsg) {
				t.Fatalf("message quotes the body: %q", e.Error())
			}
			if redirectTarget != 0 {
				t.Fatal("redirect was followed")
			}
			assertNoSecret(t, e.Error())
		})
	}
}

func assertNoSecret(t *testing.T, msg string) {
	t.Helper()
	for _, s := range []string{trickySecret, url.QueryEscape(trickySecret), "tst_"} {
		if strings.Contains(msg, s) {
			t.Fatalf("message %q leaks %q", msg, s)
		}
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	defer close(release)
	req := request(u, AuthMethodBasic)
	req.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := (&Client{}).Token(context.Background(), req)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v with a 200ms timeout", took)
	}
	e, ok := AsError(err)
	if !ok || e.Kind != KindTransient {
		t.Fatalf("error = %v, want a transient *Error", err)
	}
	assertNoSecret(t, e.Error())
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = (&Client{}).Token(context.Background(), request("http://"+addr+"/token", AuthMethodBasic))
	e, ok := AsError(err)
	if !ok || e.Kind != KindTransient || e.StatusCode != 0 {
		t.Fatalf("error = %v, want a transient *Error", err)
	}
	assertNoSecret(t, e.Error())
}

func TestSuccessfulTokenIsNotInErrorsOfLaterFailures(t *testing.T) {
	srv, u := newServer(t, tokenserver.Options{Clients: map[string]string{trickyID: trickySecret}, ExpiresIn: 60})
	tok, err := (&Client{}).Token(context.Background(), request(u, AuthMethodPost))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, 500, `{"error":"server_error","error_description":"echo `+tok.AccessToken+`"}`, http.Header{"Content-Type": {"application/json"}})
	_, err = (&Client{}).Token(context.Background(), request(u, AuthMethodPost))
	e, _ := AsError(err)
	if e == nil || e.Kind != KindTransient {
		t.Fatalf("error = %v", err)
	}
	// The description is the server's own text; it is quoted, but capped.
	if len(e.Description) > 256 {
		t.Fatalf("description not capped: %d bytes", len(e.Description))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, req := range []Request{
		{TokenURL: "/relative", ClientID: "x"},
		{TokenURL: "ftp://host/token", ClientID: "x"},
		{TokenURL: "https://user:pw@host/token", ClientID: "x"},
		{TokenURL: "https://host/token", ClientID: ""},
		{TokenURL: "https://host/token", ClientID: "x", AuthMethod: "Digest"},
	} {
		_, err := (&Client{}).Token(context.Background(), req)
		e, ok := AsError(err)
		if !ok || e.Kind != KindConfig {
			t.Errorf("%+v: error = %v, want KindConfig", req, err)
		}
		if e != nil && strings.Contains(e.Error(), "pw") {
			t.Errorf("message leaks userinfo: %q", e.Error())
		}
	}
}

func TestRedactedURL(t *testing.T) {
	if got := RedactedURL("https://u:p@host:8443/o/token/?client_secret=x#frag"); got != "https://host:8443/o/token/" {
		t.Fatalf("RedactedURL = %q", got)
	}
}

func TestHTTPClientPolicy(t *testing.T) {
	hc := NewHTTPClient()
	tr := hc.Transport.(*http.Transport)
	if tr.TLSClientConfig.MinVersion < 0x0303 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Fatal("TLS policy: want TLS 1.2+ with verification")
	}
	if tr.Proxy == nil {
		t.Fatal("proxy from environment not set")
	}
	// A large body is cut by x/oauth2's 1 MiB cap rather than read whole.
	u := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`)
	})
	_, err := (&Client{HTTPClient: hc}).Token(context.Background(), request(u, AuthMethodBasic))
	if e, ok := AsError(err); !ok || e.Kind != KindInvalidResponse {
		t.Fatalf("2 MiB body: error = %v, want InvalidResponse", err)
	}
}
