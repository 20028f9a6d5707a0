// Package tokenserver is a configurable OAuth 2.0 token endpoint
// (client-credentials grant) for tests and the demo. It records what it
// received and issued, and can be told to fail.
package tokenserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// Clients maps client ids to secrets.
	Clients map[string]string
	// ExpiresIn is the token lifetime in seconds; 0 omits expires_in.
	ExpiresIn int
	// ExpiresInAsString sends expires_in as a JSON string.
	ExpiresInAsString bool
	// TokenType defaults to "Bearer".
	TokenType string
	// AllowBasic and AllowPost select the accepted client authentication
	// methods; both are accepted when both are false.
	AllowBasic, AllowPost bool
	// AllowedScopes, when non-nil, refuses other scopes with invalid_scope.
	AllowedScopes []string
}

// RecordedRequest is what a token request carried.
type RecordedRequest struct {
	Form       url.Values
	AuthMethod string // "basic", "post" or ""
	ClientID   string
	Header     http.Header
}

// IssuedToken is a token the server issued.
type IssuedToken struct {
	AccessToken string
	ClientID    string
	Scopes      []string
	ExpiresIn   int
	IssuedAt    time.Time
}

type failure struct {
	status int
	body   string
	header http.Header
}

// Server is an http.Handler serving the token endpoint at any path.
type Server struct {
	mu       sync.Mutex
	opts     Options
	clients  map[string]string
	fail     []failure
	requests int
	last     RecordedRequest
	issued   []IssuedToken
}

// New returns a Server.
func New(opts Options) *Server {
	s := &Server{opts: opts, clients: map[string]string{}}
	for k, v := range opts.Clients {
		s.clients[k] = v
	}
	return s
}

// SetClientSecret registers a client or changes its secret.
func (s *Server) SetClientSecret(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// SetExpiresIn changes the lifetime of tokens issued from now on.
func (s *Server) SetExpiresIn(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ExpiresIn = seconds
}

// FailNext makes the next n token requests get this response.
func (s *Server) FailNext(n int, status int, body string, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, body: body, header: header})
	}
}

// Requests is the number of token requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// LastRequest is the last token request received.
func (s *Server) LastRequest() RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Issued lists the tokens issued, oldest first.
func (s *Server) Issued() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Valid reports whether token was issued here and has not expired.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.issued {
		if it.AccessToken == token {
			return it.ExpiresIn == 0 || time.Since(it.IssuedAt) < time.Duration(it.ExpiresIn)*time.Second
		}
	}
	return false
}

// Start serves the Server on a loopback httptest server; the token endpoint
// is url + "/token".
func (s *Server) Start() (string, func()) {
	ts := httptest.NewServer(s)
	return ts.URL, ts.Close
}

// ListenAndServe serves the Server on addr, logging one line per request
// (never a secret or a token) to log.
func ListenAndServe(addr string, opts Options, log io.Writer) error {
	s := New(opts)
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.ServeHTTP(rec, r)
		fmt.Fprintf(log, "%s %s %s -> %d\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path, rec.status)
	}))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// ServeHTTP implements the token endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "token requests must use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unparseable form body")
		return
	}
	rec := RecordedRequest{Form: r.PostForm, Header: r.Header.Clone()}
	id, secret, hasBasic := r.BasicAuth()
	if hasBasic {
		rec.AuthMethod = "basic"
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			s.last = rec
			oauthError(w, http.StatusUnauthorized, "invalid_client", "malformed Basic credentials")
			return
		}
	} else if r.PostForm.Has("client_id") {
		rec.AuthMethod = "post"
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	rec.ClientID = id
	s.last = rec

	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		for k, vs := range f.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
		return
	}

	allowBasic := s.opts.AllowBasic || !s.opts.AllowPost
	allowPost := s.opts.AllowPost || !s.opts.AllowBasic
	switch {
	case rec.AuthMethod == "":
		oauthError(w, http.StatusUnauthorized, "invalid_client", "no client authentication")
		return
	case rec.AuthMethod == "basic" && !allowBasic, rec.AuthMethod == "post" && !allowPost:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication method not supported")
		return
	}
	if want, ok := s.clients[id]; !ok || want != secret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported", gt))
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if s.opts.AllowedScopes != nil {
		for _, sc := range scopes {
			if !slices.Contains(s.opts.AllowedScopes, sc) {
				oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is not allowed", sc))
				return
			}
		}
	}

	tok := newToken()
	s.issued = append(s.issued, IssuedToken{AccessToken: tok, ClientID: id, Scopes: scopes, ExpiresIn: s.opts.ExpiresIn, IssuedAt: time.Now()})
	body := map[string]any{"access_token": tok, "token_type": s.tokenType()}
	if s.opts.ExpiresIn > 0 {
		if s.opts.ExpiresInAsString {
			body["expires_in"] = fmt.Sprint(s.opts.ExpiresIn)
		} else {
			body["expires_in"] = s.opts.ExpiresIn
		}
	}
	if len(scopes) > 0 {
		body["scope"] = strings.Join(scopes, " ")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) tokenType() string {
	if s.opts.TokenType != "" {
		return s.opts.TokenType
	}
	return "Bearer"
}

func newToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "tst_" + base64.RawURLEncoding.EncodeToString(b)
}
