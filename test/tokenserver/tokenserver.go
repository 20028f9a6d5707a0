// Package tokenserver is a configurable OAuth 2.0 token endpoint
// (client-credentials grant, RFC 6749 section 4.4) for unit, integration and
// end-to-end tests and the demo. It records what it received and issued, and
// can be told to fail. It uses the standard library only.
package tokenserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	// Negative values are sent as they are (for testing clients).
	ExpiresIn int
	// ExpiresInAsString sends expires_in as a JSON string ("3600").
	ExpiresInAsString bool
	// TokenType defaults to "Bearer".
	TokenType string
	// AllowBasic and AllowPost select the accepted client authentication
	// methods (client_secret_basic, client_secret_post); both are accepted
	// when both are false.
	AllowBasic, AllowPost bool
	// AllowedScopes, when non-nil, refuses any other requested scope with
	// 400 invalid_scope.
	AllowedScopes []string
}

// Client authentication methods in RecordedRequest.AuthMethod.
const (
	AuthBasic = "basic" // HTTP Basic header
	AuthPost  = "post"  // client_id/client_secret in the form body
	AuthNone  = ""      // neither
)

// RecordedRequest is what a token request carried, for assertions. It
// holds the credentials as sent; do not log it.
type RecordedRequest struct {
	Method     string
	Path       string
	Form       url.Values  // the POST form (including client_secret for AuthPost)
	AuthMethod string      // AuthBasic, AuthPost or AuthNone
	ClientID   string      // decoded client id
	Header     http.Header // request headers (including Authorization)
	Body       string      // raw request body
}

// IssuedToken is a token the server issued.
type IssuedToken struct {
	AccessToken string
	ClientID    string
	Scopes      []string
	ExpiresIn   int // seconds; 0 for none
	IssuedAt    time.Time
}

type failure struct {
	status int
	body   string
	header http.Header
}

// Server is an http.Handler answering token requests on any path.
type Server struct {
	mu       sync.Mutex
	opts     Options
	clients  map[string]string
	fail     []failure
	requests int
	last     RecordedRequest
	issued   []IssuedToken
	now      func() time.Time
}

// New returns a Server.
func New(opts Options) *Server {
	s := &Server{opts: opts, clients: map[string]string{}, now: time.Now}
	for k, v := range opts.Clients {
		s.clients[k] = v
	}
	s.opts.Clients = nil
	s.opts.AllowedScopes = slices.Clone(opts.AllowedScopes)
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

// FailNext makes the next n token requests get this response, whatever
// they carry (after being counted and recorded). A nil header is fine; when
// it has no Content-Type, application/json is sent for a JSON body and the
// sniffed type (as net/http would) otherwise.
func (s *Server) FailNext(n int, status int, body string, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, body: body, header: header.Clone()})
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
	r := s.last
	r.Form = cloneValues(r.Form)
	r.Header = r.Header.Clone()
	return r
}

// Issued lists the tokens issued, oldest first.
func (s *Server) Issued() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.issued)
	for i := range out {
		out[i].Scopes = slices.Clone(out[i].Scopes)
	}
	return out
}

// Valid reports whether token was issued here and has not expired by the
// server's clock.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.issued {
		if it.AccessToken == token {
			return it.ExpiresIn == 0 || s.now().Before(it.IssuedAt.Add(time.Duration(it.ExpiresIn)*time.Second))
		}
	}
	return false
}

// Start serves the Server on a loopback httptest server. The token endpoint
// is url + "/token" (any path works); stop closes the server.
func (s *Server) Start() (url string, stop func()) {
	ts := httptest.NewServer(s)
	return ts.URL, ts.Close
}

// ListenAndServe serves a new Server with opts on addr until it fails. The
// token endpoint is /token (any path but /healthz works). It writes one
// line per request to log: method, path, client id and result; never a
// secret or a token.
func ListenAndServe(addr string, opts Options, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	srv := &http.Server{Addr: addr, Handler: New(opts).loggingHandler(log), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// loggingHandler serves s with /healthz and one log line per token request.
func (s *Server) loggingHandler(log io.Writer) http.Handler {
	var logMu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		clientID, result := s.serve(w, r)
		if clientID == "" {
			clientID = "-"
		}
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(log, "%s %s %s client_id=%q %s\n", time.Now().UTC().Format(time.RFC3339), printable(r.Method), printable(r.URL.Path), clientID, result)
	})
}

// ServeHTTP implements the token endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r)
}

// serve answers one request and returns the client id it claimed and a
// one-word-ish result for logs.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (clientID, result string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	rec := RecordedRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
	s.last = rec
	if err != nil {
		return "", oauthError(w, http.StatusBadRequest, "invalid_request", "request body too large or unreadable")
	}
	form := url.Values{}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if form, err = url.ParseQuery(string(body)); err != nil {
			form = url.Values{}
		}
	}
	rec.Form = form

	id, secret, hasBasic := r.BasicAuth()
	var badBasic bool
	switch {
	case hasBasic:
		rec.AuthMethod = AuthBasic
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		badBasic = err1 != nil || err2 != nil
	case form.Has("client_id"):
		rec.AuthMethod = AuthPost
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	rec.ClientID = id
	s.last = rec

	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		for k, vs := range f.header {
			w.Header()[k] = vs
		}
		if w.Header().Get("Content-Type") == "" && f.body != "" {
			if json.Valid([]byte(f.body)) {
				w.Header().Set("Content-Type", "application/json")
			} else {
				w.Header().Set("Content-Type", http.DetectContentType([]byte(f.body)))
			}
		}
		status := f.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, f.body)
		return id, fmt.Sprintf("injected failure %d", status)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return id, oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "token requests must use POST")
	}
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return id, oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	if badBasic {
		return id, oauthError(w, http.StatusUnauthorized, "invalid_client", "malformed Basic credentials")
	}
	if hasBasic && form.Has("client_secret") {
		return id, oauthError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
	}

	allowBasic := s.opts.AllowBasic || !s.opts.AllowPost
	allowPost := s.opts.AllowPost || !s.opts.AllowBasic
	switch {
	case rec.AuthMethod == AuthNone:
		return id, oauthError(w, http.StatusUnauthorized, "invalid_client", "no client authentication")
	case rec.AuthMethod == AuthBasic && !allowBasic, rec.AuthMethod == AuthPost && !allowPost:
		return id, oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication method not supported")
	}
	if want, ok := s.clients[id]; !ok || want != secret {
		return id, oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return id, oauthError(w, http.StatusBadRequest, "invalid_request", "missing grant_type")
	default:
		return id, oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	if form.Has("scope") && strings.TrimSpace(form.Get("scope")) == "" {
		return id, oauthError(w, http.StatusBadRequest, "invalid_scope", "empty scope")
	}
	scopes := strings.Fields(form.Get("scope"))
	if s.opts.AllowedScopes != nil {
		for _, sc := range scopes {
			if !slices.Contains(s.opts.AllowedScopes, sc) {
				return id, oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q is not allowed", sc))
			}
		}
	}

	tok, err := newToken()
	if err != nil {
		return id, oauthError(w, http.StatusInternalServerError, "server_error", "cannot generate a token")
	}
	s.issued = append(s.issued, IssuedToken{AccessToken: tok, ClientID: id, Scopes: scopes, ExpiresIn: s.opts.ExpiresIn, IssuedAt: s.now()})
	resp := map[string]any{"access_token": tok, "token_type": s.tokenType()}
	if s.opts.ExpiresIn != 0 {
		if s.opts.ExpiresInAsString {
			resp["expires_in"] = fmt.Sprint(s.opts.ExpiresIn)
		} else {
			resp["expires_in"] = s.opts.ExpiresIn
		}
	}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
	return id, "issued"
}

// oauthError writes an RFC 6749 section 5.2 error and returns the code.
func oauthError(w http.ResponseWriter, status int, code, desc string) string {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="tokenserver"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	return code
}

func (s *Server) tokenType() string {
	if s.opts.TokenType != "" {
		return s.opts.TokenType
	}
	return "Bearer"
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("no randomness")
	}
	return "tst_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// printable replaces control characters so a log line stays one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
