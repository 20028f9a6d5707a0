//go:build e2e

package dot_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/dot"
	"github.com/tokensync/tokensync/test/testutil"
)

const (
	clientID = "dot-test-client"
	// RFC 6749 section 2.3.1 form-urlencodes every one of these characters.
	secret  = "s3cr:et/with+plus and space"
	rotated = "r0tated+secret: 100% new/"
)

type tokenResponse struct {
	status int
	header http.Header
	raw    string
	body   struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
	}
}

func post(t *testing.T, tokenURL, contentType, body string, edit func(*http.Request)) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tokenResponse{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &tr.body); err != nil {
		t.Fatalf("token endpoint answered %d %q: %v", resp.StatusCode, b, err)
	}
	return tr
}

// form posts an application/x-www-form-urlencoded token request.
func form(t *testing.T, srv *dot.Server, v url.Values, edit func(*http.Request)) tokenResponse {
	t.Helper()
	return post(t, srv.TokenURL, "application/x-www-form-urlencoded", v.Encode(), edit)
}

// basic sets client credentials as RFC 6749 section 2.3.1 says: each
// form-urlencoded, then HTTP Basic.
func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// rawAuthorization sets "Basic base64(userpass)" with userpass as given.
func rawAuthorization(scheme, userpass string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Authorization", scheme+" "+base64.StdEncoding.EncodeToString([]byte(userpass)))
	}
}

func clientCredentials(scope string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return v
}

func wantToken(t *testing.T, tr tokenResponse, scope string, expiresIn int) string {
	t.Helper()
	if tr.status != http.StatusOK || tr.body.AccessToken == "" || tr.body.TokenType != "Bearer" ||
		tr.body.Scope != scope || tr.body.ExpiresIn != expiresIn {
		t.Fatalf("want a Bearer token with scope %q expiring in %d, got %d %s", scope, expiresIn, tr.status, tr.raw)
	}
	return tr.body.AccessToken
}

// wantError checks the toolkit's exact error body.
func wantError(t *testing.T, tr tokenResponse, status int, code string) {
	t.Helper()
	if want := fmt.Sprintf(`{"error": %q}`, code); tr.status != status || tr.raw != want {
		t.Fatalf("want %d %s, got %d %s", status, want, tr.status, tr.raw)
	}
}

func start(t *testing.T, opts dot.Options) (*dot.Server, *testutil.SyncBuffer) {
	t.Helper()
	if err := dot.Available(); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	opts.Stderr = logs
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := dot.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return srv, logs
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	srv, logs := start(t, dot.Options{})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.TokenURL != srv.URL+"/o/token/" {
		t.Fatalf("URL %q, TokenURL %q", srv.URL, srv.TokenURL)
	}
	if err := srv.CreateApplication(ctx, clientID, secret); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateApplication(ctx, clientID, "again"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("creating an application twice: %v", err)
	}

	var basicToken string
	t.Run("BasicFormURLEncoded", func(t *testing.T) {
		// Scope defaults to read write admin; lifetime to 36000 s.
		basicToken = wantToken(t, form(t, srv, clientCredentials(""), basic(clientID, secret)), "read write admin", 36000)
		// A space may be encoded as %20 instead of '+': unquote_plus decodes both.
		pct := url.QueryEscape(clientID) + ":" + strings.ReplaceAll(url.QueryEscape(secret), "+", "%20")
		wantToken(t, form(t, srv, clientCredentials("read"), rawAuthorization("Basic", pct)), "read", 36000)
	})

	t.Run("BasicDecoding", func(t *testing.T) {
		// Unencoded, the '+' in the secret is decoded to a space: rejected.
		tr := form(t, srv, clientCredentials(""), rawAuthorization("Basic", clientID+":"+secret))
		wantError(t, tr, http.StatusUnauthorized, "invalid_client")
		if got := tr.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_client"` {
			t.Errorf("WWW-Authenticate: %q", got)
		}
		// The scheme must be spelled "Basic".
		userpass := url.QueryEscape(clientID) + ":" + url.QueryEscape(secret)
		wantError(t, form(t, srv, clientCredentials(""), rawAuthorization("basic", userpass)), http.StatusUnauthorized, "invalid_client")
		// Without '+' or '%', a raw secret would pass: ':' splits only once.
		if err := srv.CreateApplication(ctx, "raw-client", "colon:slash/ space"); err != nil {
			t.Fatal(err)
		}
		wantToken(t, form(t, srv, clientCredentials("read"), rawAuthorization("Basic", "raw-client:colon:slash/ space")), "read", 36000)
	})

	t.Run("BodyCredentials", func(t *testing.T) {
		v := clientCredentials("read write admin")
		v.Set("client_id", clientID)
		v.Set("client_secret", secret)
		tok := wantToken(t, form(t, srv, v, nil), "read write admin", 36000)
		if scope, err := srv.CheckToken(ctx, tok); err != nil || scope != "read write admin" {
			t.Fatalf("CheckToken: %q, %v", scope, err)
		}
		// Basic is tried first; when it fails the body is tried.
		wantToken(t, form(t, srv, v, basic(clientID, "wrong")), "read write admin", 36000)
	})

	t.Run("CheckToken", func(t *testing.T) {
		if scope, err := srv.CheckToken(ctx, basicToken); err != nil || scope != "read write admin" {
			t.Fatalf("CheckToken: %q, %v", scope, err)
		}
		if _, err := srv.CheckToken(ctx, "not-a-token"); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("CheckToken accepted a bogus token: %v", err)
		}
		// /api/hello/ needs scope read.
		tok := wantToken(t, form(t, srv, clientCredentials("write"), basic(clientID, secret)), "write", 36000)
		if _, err := srv.CheckToken(ctx, tok); err == nil {
			t.Fatal("CheckToken accepted a token without scope read")
		}
	})

	t.Run("InvalidScope", func(t *testing.T) {
		wantError(t, form(t, srv, clientCredentials("read bogus"), basic(clientID, secret)), http.StatusBadRequest, "invalid_scope")
	})

	t.Run("InvalidClient", func(t *testing.T) {
		wantError(t, form(t, srv, clientCredentials(""), basic(clientID, secret+"x")), http.StatusUnauthorized, "invalid_client")
		wantError(t, form(t, srv, clientCredentials(""), basic("no-such-client", secret)), http.StatusUnauthorized, "invalid_client")
		v := clientCredentials("")
		v.Set("client_id", clientID)
		v.Set("client_secret", "wrong")
		wantError(t, form(t, srv, v, nil), http.StatusUnauthorized, "invalid_client")
	})

	t.Run("ApplicationScopes", func(t *testing.T) {
		if err := srv.CreateApplication(ctx, "reader", secret, "read"); err != nil {
			t.Fatal(err)
		}
		wantToken(t, form(t, srv, clientCredentials(""), basic("reader", secret)), "read", 36000)
		wantError(t, form(t, srv, clientCredentials("read write"), basic("reader", secret)), http.StatusBadRequest, "invalid_scope")
		if err := srv.CreateApplication(ctx, "bogus-scopes", secret, "read", "bogus"); err == nil {
			t.Fatal("an application was created with an unknown scope")
		}
	})

	t.Run("Introspection", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/o/introspect/",
			strings.NewReader(url.Values{"token": {basicToken}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		basic(clientID, secret)(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var got struct {
			Active   bool   `json:"active"`
			Scope    string `json:"scope"`
			ClientID string `json:"client_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || !got.Active ||
			got.Scope != "read write admin" || got.ClientID != clientID {
			t.Fatalf("introspection: %d %+v %v", resp.StatusCode, got, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, srv.TokenURL, strings.NewReader(clientCredentials("read").Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				basic(clientID, secret)(req)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- resp.Status
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("RotateSecret", func(t *testing.T) {
		if err := srv.RotateSecret(ctx, clientID, rotated); err != nil {
			t.Fatal(err)
		}
		wantError(t, form(t, srv, clientCredentials(""), basic(clientID, secret)), http.StatusUnauthorized, "invalid_client")
		tok := wantToken(t, form(t, srv, clientCredentials("read"), basic(clientID, rotated)), "read", 36000)
		if _, err := srv.CheckToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// Tokens issued with the old secret stay valid.
		if _, err := srv.CheckToken(ctx, basicToken); err != nil {
			t.Fatal(err)
		}
		if err := srv.RotateSecret(ctx, "no-such-client", rotated); err == nil {
			t.Fatal("rotated the secret of a client that does not exist")
		}
	})

	t.Run("Log", func(t *testing.T) {
		log := logs.String()
		if !strings.Contains(log, `"POST /o/token/ HTTP/1.1" 200`) {
			t.Errorf("the server log has no token request:\n%s", log)
		}
		for _, s := range []string{secret, url.QueryEscape(secret), rotated, url.QueryEscape(rotated), "colon:slash/ space", basicToken} {
			if strings.Contains(log, s) {
				t.Errorf("the server log contains %q", s)
			}
		}
	})

	t.Run("Stop", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "http://"), time.Second); err == nil {
			_ = c.Close()
			t.Fatal("the server still listens after Stop")
		}
	})
}

func TestJSONBackend(t *testing.T) {
	ctx := context.Background()
	srv, _ := start(t, dot.Options{JSONBackend: true, AccessTokenExpireSeconds: 120})
	if err := srv.CreateApplication(ctx, clientID, secret); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     clientID,
		"client_secret": secret,
		"scope":         "read write",
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := wantToken(t, post(t, srv.TokenURL, "application/json", string(body), nil), "read write", 120)
	if scope, err := srv.CheckToken(ctx, tok); err != nil || scope != "read write" {
		t.Fatalf("CheckToken: %q, %v", scope, err)
	}
	// Basic with a JSON body.
	wantToken(t, post(t, srv.TokenURL, "application/json", `{"grant_type": "client_credentials"}`, basic(clientID, secret)), "read write admin", 120)
	// JSONOAuthLibCore reads only JSON: a form body has no grant_type.
	wantError(t, form(t, srv, clientCredentials(""), basic(clientID, secret)), http.StatusBadRequest, "unsupported_grant_type")
}

func TestAvailable(t *testing.T) {
	t.Setenv("DOT_PYTHON", "/nonexistent/python3")
	err := dot.Available()
	if err == nil || !strings.Contains(err.Error(), "hack/install-oauth-server.sh") {
		t.Fatalf("Available with a missing interpreter: %v", err)
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		t.Setenv("DOT_PYTHON", "")
		if err := dot.Available(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCountTokens counts the access tokens issued to a client at the
// server: what the e2e tests of shared tokens check.
func TestCountTokens(t *testing.T) {
	ctx := context.Background()
	srv, _ := start(t, dot.Options{})
	if err := srv.CreateApplication(ctx, "counted", "c0unted secret"); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.CountTokens(ctx, "counted"); err != nil || n != 0 {
		t.Fatalf("before any request: %d, %v", n, err)
	}
	for range 2 {
		wantToken(t, form(t, srv, clientCredentials("read"), basic("counted", "c0unted secret")), "read", 36000)
	}
	// A refused request issues nothing.
	wantError(t, form(t, srv, clientCredentials("read"), basic("counted", "wrong")), http.StatusUnauthorized, "invalid_client")
	if n, err := srv.CountTokens(ctx, "counted"); err != nil || n != 2 {
		t.Fatalf("after two token requests: %d, %v", n, err)
	}
	if n, err := srv.CountTokens(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("unknown client: %d, %v", n, err)
	}
}
