package tokenserver

import (
	"bytes"
	"encoding/json"
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

const (
	id     = "app"
	secret = "s3cret"
)

type call struct {
	method string
	form   url.Values
	basic  []string // id, secret, already encoded as the client sends them
	ctype  string
}

func post(form url.Values) call { return call{method: http.MethodPost, form: form} }

func (c call) withBasic(user, pass string) call { c.basic = []string{user, pass}; return c }

func creds(f url.Values) url.Values {
	f.Set("client_id", id)
	f.Set("client_secret", secret)
	return f
}

func grant() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

type answer struct {
	status int
	header http.Header
	json   map[string]any
	raw    string
}

func do(t *testing.T, s *Server, c call) answer {
	t.Helper()
	var body io.Reader
	if c.form != nil {
		body = strings.NewReader(c.form.Encode())
	}
	r := httptest.NewRequest(c.method, "/token", body)
	switch {
	case c.ctype != "":
		r.Header.Set("Content-Type", c.ctype)
	case c.form != nil:
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.basic != nil {
		r.SetBasicAuth(c.basic[0], c.basic[1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &a.json)
	return a
}

func TestTokenRequests(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		call       call
		wantStatus int
		wantError  string
	}{
		{"post credentials", Options{}, post(creds(grant())), 200, ""},
		{"basic credentials", Options{}, post(grant()).withBasic(id, secret), 200, ""},
		{"wrong secret", Options{}, post(grant()).withBasic(id, "nope"), 401, "invalid_client"},
		{"unknown client", Options{}, post(grant()).withBasic("who", secret), 401, "invalid_client"},
		{"no credentials", Options{}, post(grant()), 401, "invalid_client"},
		{"basic refused when only post allowed", Options{AllowPost: true}, post(grant()).withBasic(id, secret), 401, "invalid_client"},
		{"post refused when only basic allowed", Options{AllowBasic: true}, post(creds(grant())), 401, "invalid_client"},
		{"both methods at once", Options{}, post(creds(grant())).withBasic(id, secret), 400, "invalid_request"},
		{"malformed basic encoding", Options{}, post(grant()).withBasic("%zz", secret), 401, "invalid_client"},
		{"GET", Options{}, call{method: http.MethodGet}, 405, "invalid_request"},
		{"JSON body", Options{}, call{method: http.MethodPost, form: creds(grant()), ctype: "application/json"}, 400, "invalid_request"},
		{"missing grant_type", Options{}, post(creds(url.Values{})), 400, "invalid_request"},
		{"other grant_type", Options{}, post(creds(url.Values{"grant_type": {"password"}})), 400, "unsupported_grant_type"},
		{"allowed scopes", Options{AllowedScopes: []string{"a", "b"}}, post(creds(url.Values{"grant_type": {"client_credentials"}, "scope": {"b a"}})), 200, ""},
		{"scope not allowed", Options{AllowedScopes: []string{"a"}}, post(creds(url.Values{"grant_type": {"client_credentials"}, "scope": {"a admin"}})), 400, "invalid_scope"},
		{"no scope with AllowedScopes", Options{AllowedScopes: []string{}}, post(creds(grant())), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Clients = map[string]string{id: secret}
			s := New(tt.opts)
			a := do(t, s, tt.call)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.status, tt.wantStatus, a.raw)
			}
			if s.Requests() != 1 {
				t.Errorf("Requests() = %d", s.Requests())
			}
			if tt.wantError != "" {
				if a.json["error"] != tt.wantError || a.json["error_description"] == "" {
					t.Errorf("body %s, want error %q", a.raw, tt.wantError)
				}
				if a.header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
				}
				if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without WWW-Authenticate: Basic")
				}
				if len(s.Issued()) != 0 {
					t.Error("a token was issued")
				}
				return
			}
			tok, _ := a.json["access_token"].(string)
			if !strings.HasPrefix(tok, "tst_") || a.json["token_type"] != "Bearer" || a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("answer %s %v", a.raw, a.header)
			}
			if _, ok := a.json["expires_in"]; ok {
				t.Error("expires_in sent with ExpiresIn 0")
			}
			if !s.Valid(tok) || s.Valid(tok+"x") {
				t.Error("Valid() is wrong")
			}
		})
	}
}

func TestBasicCredentialsAreFormDecoded(t *testing.T) {
	const weirdID, weirdSecret = "a:b/c+d e", "p:w/+ %é"
	s := New(Options{Clients: map[string]string{weirdID: weirdSecret}})
	a := do(t, s, post(grant()).withBasic(url.QueryEscape(weirdID), url.QueryEscape(weirdSecret)))
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	last := s.LastRequest()
	if last.ClientID != weirdID || last.AuthMethod != AuthBasic {
		t.Errorf("recorded %q via %q", last.ClientID, last.AuthMethod)
	}
}

func TestResponseShape(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want any
	}{
		{"number", Options{ExpiresIn: 3600}, float64(3600)},
		{"string", Options{ExpiresIn: 3600, ExpiresInAsString: true}, "3600"},
		{"negative", Options{ExpiresIn: -5}, float64(-5)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Clients = map[string]string{id: secret}
			tt.opts.TokenType = "DPoP"
			s := New(tt.opts)
			f := grant()
			f.Set("scope", "x y")
			a := do(t, s, post(creds(f)))
			if a.json["expires_in"] != tt.want || a.json["token_type"] != "DPoP" || a.json["scope"] != "x y" {
				t.Errorf("answer %s", a.raw)
			}
			it := s.Issued()
			if len(it) != 1 || it[0].ClientID != id || !slices.Equal(it[0].Scopes, []string{"x", "y"}) || it[0].ExpiresIn != tt.opts.ExpiresIn || it[0].AccessToken != a.json["access_token"] {
				t.Errorf("Issued() = %+v", it)
			}
		})
	}
}

func TestValidFollowsTheServerClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{Clients: map[string]string{id: secret}, ExpiresIn: 60})
	s.now = func() time.Time { return now }
	tok := do(t, s, post(creds(grant()))).json["access_token"].(string)
	s.SetExpiresIn(0)
	forever := do(t, s, post(creds(grant()))).json["access_token"].(string)
	now = now.Add(59 * time.Second)
	if !s.Valid(tok) {
		t.Error("expired early")
	}
	now = now.Add(time.Second)
	if s.Valid(tok) {
		t.Error("still valid at expiry")
	}
	if !s.Valid(forever) {
		t.Error("a token without expires_in expired")
	}
}

func TestSetClientSecretRotates(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}})
	s.SetClientSecret(id, "new")
	if a := do(t, s, post(grant()).withBasic(id, secret)); a.status != 401 {
		t.Errorf("old secret: %d", a.status)
	}
	if a := do(t, s, post(grant()).withBasic(id, "new")); a.status != 200 {
		t.Errorf("new secret: %d", a.status)
	}
	s.SetClientSecret("second", "x")
	if a := do(t, s, post(grant()).withBasic("second", "x")); a.status != 200 {
		t.Errorf("new client: %d", a.status)
	}
}

func TestRegisterClientForgetsAnEarlierClientOfThatID(t *testing.T) {
	s := New(Options{Clients: map[string]string{"other": "o"}, IssueRefreshTokens: true})
	s.RegisterClient(id, secret)
	first := do(t, s, post(grant()).withBasic(id, secret))
	other := do(t, s, post(grant()).withBasic("other", "o"))
	if first.status != 200 || other.status != 200 {
		t.Fatalf("statuses %d, %d", first.status, other.status)
	}
	s.RegisterClient(id, "new")
	if got := s.Issued(); len(got) != 1 || got[0].ClientID != "other" {
		t.Fatalf("issued after re-registering: %+v", got)
	}
	if s.Valid(first.json["access_token"].(string)) {
		t.Error("a token of the earlier client is still valid")
	}
	if !s.Valid(other.json["access_token"].(string)) {
		t.Error("another client's token was forgotten")
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.json["refresh_token"].(string)}}
	if a := do(t, s, post(refresh).withBasic(id, "new")); a.status != 400 {
		t.Errorf("refresh token of the earlier client: %d, want 400", a.status)
	}
	if a := do(t, s, post(grant()).withBasic(id, secret)); a.status != 401 {
		t.Errorf("old secret: %d", a.status)
	}
}

func TestFailNext(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}})
	s.FailNext(2, 503, "<html>down</html>", http.Header{"Retry-After": {"7"}})
	s.FailNext(1, 429, `{"error":"slow_down"}`, nil)
	want := []struct {
		status int
		ctype  string
	}{{503, "text/html; charset=utf-8"}, {503, "text/html; charset=utf-8"}, {429, "application/json"}, {200, "application/json"}}
	for i, w := range want {
		a := do(t, s, post(creds(grant())))
		if a.status != w.status || a.header.Get("Content-Type") != w.ctype {
			t.Errorf("request %d: %d %q, want %d %q", i, a.status, a.header.Get("Content-Type"), w.status, w.ctype)
		}
		if w.status == 503 && (a.header.Get("Retry-After") != "7" || a.raw != "<html>down</html>") {
			t.Errorf("request %d: %v %q", i, a.header, a.raw)
		}
	}
	if s.Requests() != 4 || len(s.Issued()) != 1 {
		t.Errorf("Requests() = %d, issued %d", s.Requests(), len(s.Issued()))
	}
}

func TestLastRequestRecordsWhatWasSent(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}})
	f := creds(grant())
	f.Set("audience", "api")
	do(t, s, post(f))
	last := s.LastRequest()
	if last.Method != "POST" || last.Path != "/token" || last.AuthMethod != AuthPost || last.ClientID != id ||
		last.Form.Get("audience") != "api" || last.Header.Get("Content-Type") == "" || !strings.Contains(last.Body, "audience=api") {
		t.Errorf("LastRequest() = %+v", last)
	}
	last.Form.Set("audience", "mutated")
	if s.LastRequest().Form.Get("audience") != "api" {
		t.Error("LastRequest shares its form")
	}
}

func TestTokensAreRandom(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}})
	seen := map[string]bool{}
	for range 50 {
		tok := do(t, s, post(creds(grant()))).json["access_token"].(string)
		if seen[tok] || len(tok) < 40 {
			t.Fatalf("token %q repeated or short", tok)
		}
		seen[tok] = true
	}
}

func TestStartServesOverHTTP(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}, ExpiresIn: 5})
	u, stop := s.Start()
	defer stop()
	resp, err := http.PostForm(u+"/token", creds(grant()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || !s.Valid(body["access_token"].(string)) {
		t.Errorf("%d %v", resp.StatusCode, body)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := New(Options{Clients: map[string]string{id: secret}})
	u, stop := s.Start()
	defer stop()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(u+"/token", creds(grant()))
			if err == nil {
				resp.Body.Close()
			}
			_ = s.Issued()
			_ = s.LastRequest()
		}()
	}
	wg.Wait()
	if s.Requests() != 20 || len(s.Issued()) != 20 {
		t.Errorf("Requests() = %d, issued %d", s.Requests(), len(s.Issued()))
	}
}

func TestLogNeverShowsSecretsOrTokens(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	s := New(Options{Clients: map[string]string{id: secret}})
	h := s.loggingHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()

	for _, f := range []url.Values{creds(grant()), {"client_id": {id}, "client_secret": {"wrong-" + secret}, "grant_type": {"client_credentials"}}} {
		resp, err := http.PostForm(ts.URL+"/token", f)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `POST /token client_id="app" issued`) || !strings.Contains(lines[1], "invalid_client") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, s.Issued()[0].AccessToken) {
		t.Errorf("log leaks:\n%s", out)
	}
	if s.Requests() != 2 {
		t.Errorf("/healthz counted as a token request")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
