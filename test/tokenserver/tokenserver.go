// Package tokenserver is a configurable OAuth 2.0 token endpoint
// (client-credentials grant, RFC 6749 section 4.4) for unit, integration and
// end-to-end tests and the demo. It records what it received and issued, and
// can be told to fail.
//
// Options make it speak the dialects of real providers: a fixed path and
// grant_type literal, the password and refresh_token grants, JWT access and
// ID tokens, JSON request bodies, wrapped responses, required headers,
// resources and audience, discovery documents (OpenID Connect or RFC 8414),
// SCA challenges, and the private_key_jwt (RFC 7523) and tls_client_auth
// (RFC 8705) client authentication methods. With TrustedIssuers it also
// verifies JWTs of an OpenID Connect issuer (Kubernetes ServiceAccount
// tokens) against the issuer's published keys, for federated client
// authentication and the token-exchange grant (RFC 8693); see
// federation.go, and Issuer for a stand-in issuer. The zero Options is a
// plain client-credentials endpoint on any path. Beyond the standard
// library it uses go-jose, for the federated JWTs only.
package tokenserver

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value of every field keeps the
// plain client-credentials behaviour.
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
	// when both are false. They do not affect private_key_jwt and
	// tls_client_auth, which ClientKeys and TLSClientAuth enable.
	AllowBasic, AllowPost bool
	// AllowedScopes, when non-nil, refuses any other requested scope with
	// 400 invalid_scope.
	AllowedScopes []string

	// Path, when set, is the only path of the token endpoint (for example
	// "/auth/brands/liberty/token"); other paths get 404, except the
	// discovery document. Empty means any path.
	Path string
	// GrantType is the grant_type literal of the client-credentials grant,
	// compared exactly; default "client_credentials".
	GrantType string

	// Users, when non-nil, enables the resource-owner password grant: the
	// username and password parameters are checked against this map (400
	// invalid_grant when wrong). The client is authenticated as usual.
	Users map[string]string
	// PasswordGrantType is the grant_type literal of the password grant;
	// default "password".
	PasswordGrantType string

	// IssueRefreshTokens adds a refresh_token ("rt_" and random) to every
	// successful response and enables the refresh_token grant. Refresh
	// tokens rotate: each use issues a new one and spends the one used.
	IssueRefreshTokens bool
	// RefreshExpiresIn is the refresh token lifetime in seconds, sent as
	// refresh_expires_in; 0 means no expiry and no refresh_expires_in.
	RefreshExpiresIn int
	// RefreshGrantType is the grant_type literal of the refresh grant;
	// default "refresh_token".
	RefreshGrantType string

	// IDTokens adds an id_token (an HS256 JWT) to successful responses.
	IDTokens bool
	// JWTAccessTokens issues access tokens that are JWTs (RFC 9068 style,
	// HS256 with a random per-server key) instead of opaque strings.
	// expires_in is still governed by ExpiresIn.
	JWTAccessTokens bool
	// JWTLifetime is the lifetime in seconds behind the exp claim of JWT
	// access and ID tokens; default 600.
	JWTLifetime int

	// AcceptJSON also accepts application/json request bodies: an object
	// whose values are strings or arrays of strings (arrays are repeated
	// parameters). Anything else is 400 invalid_request.
	AcceptJSON bool
	// RequireJSON refuses form bodies with 400 invalid_request; it implies
	// AcceptJSON.
	RequireJSON bool

	// ResponseWrapper, when set (for example "data"), wraps successful
	// bodies: {"status":"success","data":{...token fields...}}. Errors stay
	// flat RFC 6749 section 5.2 objects.
	ResponseWrapper string

	// RequiredHeaders maps header names to the exact value every token
	// request must carry; otherwise 400 invalid_request naming the header.
	RequiredHeaders map[string]string
	// RequiredResources, when non-nil, requires at least one resource
	// parameter (RFC 8707), each one in this list; otherwise 400
	// invalid_target.
	RequiredResources []string
	// RequiredAudience, when set, requires an audience parameter with
	// exactly this value; otherwise 400 invalid_request.
	RequiredAudience string

	// Discovery selects the metadata document served: "" for none,
	// "openid" for GET /.well-known/openid-configuration, "oauth" for GET
	// /.well-known/oauth-authorization-server (RFC 8414) only.
	Discovery string

	// SCAChallenge answers every token request whose client authenticates
	// with 401, WWW-Authenticate: SCA ... and {"error":"access_denied"},
	// as a bank asking for strong customer authentication would.
	SCAChallenge bool

	// ClientKeys maps client ids to public keys (*rsa.PublicKey,
	// *ecdsa.PublicKey on P-256 or P-384, ed25519.PublicKey) and enables
	// private_key_jwt client authentication (RFC 7523, OpenID Connect Core
	// section 9) with RS256, PS256, ES256, ES384 and EdDSA assertions.
	ClientKeys map[string]crypto.PublicKey
	// TLSClientAuth maps client ids to the subject Common Name of their
	// certificate and enables tls_client_auth (RFC 8705): a request with
	// client_id and no other credentials is authenticated by the TLS
	// client certificate. See StartTLS.
	TLSClientAuth map[string]string

	// TrustedIssuers are the issuers whose JWTs (Kubernetes ServiceAccount
	// tokens, say) the server verifies against their published keys, for
	// FederatedClients and ExchangePolicies. See federation.go.
	TrustedIssuers []TrustedIssuer
	// FederatedClients maps client ids to the issuer and subject of the
	// JWT they authenticate with, as client_assertion (RFC 7523 section
	// 2.2). More with RegisterFederatedClient.
	FederatedClients map[string]FederatedClient
	// ExchangePolicies enable the token-exchange grant (RFC 8693) for
	// subject tokens of trusted issuers. More with AddExchangePolicy.
	ExchangePolicies []ExchangePolicy
	// ExchangeGrantType is the grant_type literal of token exchanges;
	// default urn:ietf:params:oauth:grant-type:token-exchange.
	ExchangeGrantType string
	// ExchangeOwnTokens lets the unexpired access tokens this server issued
	// be exchanged (subject_token_type
	// urn:ietf:params:oauth:token-type:access_token): chained exchanges.
	// The token issued records Subject "token-of:<client>".
	ExchangeOwnTokens bool

	// Now is the clock for issuing and expiry checks; default time.Now.
	Now func() time.Time
}

// Client authentication methods in RecordedRequest.AuthMethod.
const (
	AuthBasic         = "basic"           // HTTP Basic header
	AuthPost          = "post"            // client_id/client_secret in the body
	AuthPrivateKeyJWT = "private_key_jwt" // client_assertion signed by the client's key
	AuthTLSClient     = "tls_client_auth" // client_id in the body, TLS client certificate
	AuthNone          = ""                // none of these
)

// Discovery document paths.
const (
	wellKnownOpenID = "/.well-known/openid-configuration"
	wellKnownOAuth  = "/.well-known/oauth-authorization-server"
)

// RecordedRequest is what a token request carried, for assertions. It
// holds the credentials as sent; do not log it.
type RecordedRequest struct {
	Method     string
	Path       string
	Form       url.Values  // the body parameters, form or JSON (including client_secret for AuthPost)
	JSON       bool        // the body was parsed as JSON
	AuthMethod string      // AuthBasic, AuthPost, AuthPrivateKeyJWT, AuthTLSClient or AuthNone
	ClientID   string      // decoded client id (for private_key_jwt, client_id or else the assertion's iss)
	Header     http.Header // request headers (including Authorization)
	Body       string      // raw request body

	// AssertionHeader is the decoded JWS header of client_assertion (alg,
	// kid, ...) for AuthPrivateKeyJWT, even when the assertion was refused.
	AssertionHeader map[string]any
	// ClientCertCN is the subject Common Name of the TLS client
	// certificate, if one was presented.
	ClientCertCN string
}

// IssuedToken is a token the server issued.
type IssuedToken struct {
	AccessToken string
	ClientID    string
	Scopes      []string
	ExpiresIn   int // seconds; 0 for none
	IssuedAt    time.Time
	// GrantType is the grant_type literal of the request.
	GrantType string
	// RefreshToken is the refresh token issued with it, if any.
	RefreshToken string
	// Resources are the resource parameters (RFC 8707) of the request, or
	// those of the original grant for a refresh without them.
	Resources []string
	// Audience is the audience parameter, inherited likewise.
	Audience string
	// Subject is who the token is for: the client, the user of a password
	// grant, or the sub of a token exchange's subject token.
	Subject string
	// IssuedTokenType is the issued_token_type of a token exchange's
	// answer; empty for other grants.
	IssuedTokenType string
}

type failure struct {
	status int
	body   string
	header http.Header
}

// refreshGrant is what a live refresh token stands for.
type refreshGrant struct {
	clientID  string
	subject   string // the client id, or the user of a password grant
	scopes    []string
	resources []string
	audience  string
	expiresAt time.Time // zero for never
}

// Server is an http.Handler answering token requests (on any path unless
// Options.Path is set) and, with Options.Discovery, a metadata document.
type Server struct {
	mu        sync.Mutex
	opts      Options
	clients   map[string]string
	fail      []failure
	requests  int
	discovery int
	last      RecordedRequest
	issued    []IssuedToken
	refresh   map[string]refreshGrant // live refresh tokens
	jtis      map[string]bool         // assertion iss and jti seen
	jwtKey    []byte                  // HS256 key of issued JWTs
	now       func() time.Time
	fed       *federation                // nil without TrustedIssuers
	federated map[string]FederatedClient // federated clients by id
	policies  []ExchangePolicy
	perClient map[string]int // token requests by authenticated client id
}

// New returns a Server. It panics when opts.Discovery is not "", "openid"
// or "oauth".
func New(opts Options) *Server {
	switch opts.Discovery {
	case "", "openid", "oauth":
	default:
		panic(fmt.Sprintf("tokenserver: Discovery %q is not \"\", \"openid\" or \"oauth\"", opts.Discovery))
	}
	s := &Server{opts: opts, clients: map[string]string{}, refresh: map[string]refreshGrant{}, jtis: map[string]bool{}, now: time.Now,
		federated: maps.Clone(opts.FederatedClients), policies: slices.Clone(opts.ExchangePolicies), perClient: map[string]int{}}
	if s.federated == nil {
		s.federated = map[string]FederatedClient{}
	}
	for k, v := range opts.Clients {
		s.clients[k] = v
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	s.fed = newFederation(opts, s.now)
	s.opts.FederatedClients, s.opts.ExchangePolicies = nil, nil
	s.opts.Clients = nil
	s.opts.AllowedScopes = slices.Clone(opts.AllowedScopes)
	s.opts.RequiredResources = slices.Clone(opts.RequiredResources)
	s.opts.Users = maps.Clone(opts.Users)
	s.opts.RequiredHeaders = maps.Clone(opts.RequiredHeaders)
	s.opts.ClientKeys = maps.Clone(opts.ClientKeys)
	s.opts.TLSClientAuth = maps.Clone(opts.TLSClientAuth)
	s.opts.AcceptJSON = opts.AcceptJSON || opts.RequireJSON
	s.jwtKey = make([]byte, 32)
	_, _ = rand.Read(s.jwtKey) // never fails (crypto/rand)
	return s
}

// SetClientSecret registers a client or changes its secret (a rotation:
// what was issued to it is kept).
func (s *Server) SetClientSecret(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
}

// RegisterClient registers client id with secret as a new client: the
// tokens issued to an earlier client of that id are forgotten (no longer
// listed by Issued, nor Valid) and its refresh tokens revoked. Tests that
// count the tokens of a client id register it this way, so that a repeated
// run (go test -count=2) against one server starts from none.
func (s *Server) RegisterClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = secret
	s.issued = slices.DeleteFunc(s.issued, func(it IssuedToken) bool { return it.ClientID == id })
	maps.DeleteFunc(s.refresh, func(_ string, g refreshGrant) bool { return g.clientID == id })
}

// SetExpiresIn changes the lifetime of tokens issued from now on.
func (s *Server) SetExpiresIn(seconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ExpiresIn = seconds
}

// SetSCAChallenge turns Options.SCAChallenge on or off for the requests
// to come.
func (s *Server) SetSCAChallenge(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.SCAChallenge = on
}

// RevokeRefreshTokens invalidates every refresh token issued so far.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// FailNext makes the next n token requests get this response, whatever
// they carry (after being counted and recorded). A nil header is fine; when
// it has no Content-Type, application/json is sent for a JSON body and the
// sniffed type (as net/http would) otherwise. Requests to a path other than
// Options.Path and discovery requests do not use them up.
func (s *Server) FailNext(n int, status int, body string, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, body: body, header: header.Clone()})
	}
}

// Requests is the number of token requests received: every request but
// /healthz (of ListenAndServe) and discovery requests, including those to
// a wrong path.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// DiscoveryRequests is the number of requests for a /.well-known metadata
// document received while Options.Discovery is set, served or not.
func (s *Server) DiscoveryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovery
}

// LastRequest is the last token request received.
func (s *Server) LastRequest() RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last
	r.Form = cloneValues(r.Form)
	r.Header = r.Header.Clone()
	r.AssertionHeader = maps.Clone(r.AssertionHeader)
	return r
}

// Issued lists the tokens issued, oldest first.
func (s *Server) Issued() []IssuedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.issued)
	for i := range out {
		out[i].Scopes = slices.Clone(out[i].Scopes)
		out[i].Resources = slices.Clone(out[i].Resources)
	}
	return out
}

// Valid reports whether token was issued here and has not expired by the
// server's clock: after ExpiresIn seconds, or for a JWT issued without
// expires_in at its exp claim; never for an opaque token without expires_in.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.validLocked(token)
	return ok
}

// validLocked returns the issued token token, when it has not expired.
func (s *Server) validLocked(token string) (IssuedToken, bool) {
	for _, it := range s.issued {
		if it.AccessToken != token {
			continue
		}
		if it.ExpiresIn != 0 {
			return it, s.now().Before(it.IssuedAt.Add(time.Duration(it.ExpiresIn) * time.Second))
		}
		if exp, ok := jwtExpiry(token); ok {
			return it, s.now().Before(exp)
		}
		return it, true
	}
	return IssuedToken{}, false
}

// Start serves the Server on a loopback httptest server. The token endpoint
// is url + "/token" (any path works, unless Options.Path is set: then url +
// Options.Path); stop closes the server.
func (s *Server) Start() (url string, stop func()) {
	ts := httptest.NewServer(s)
	return ts.URL, ts.Close
}

// ListenAndServe serves a new Server with opts on addr until it fails. The
// token endpoint is /token (any path but /healthz works, unless opts.Path
// is set). It writes one line per request to log: method, path, client id
// and result; never a secret or a token.
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

// ServeHTTP implements the token endpoint and the discovery document.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r)
}

// serve answers one request and returns the client id it claimed and a
// one-word-ish result for logs. Neither ever holds a credential.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (clientID, result string) {
	if s.isDiscoveryPath(r.URL.Path) {
		return "", s.serveDiscovery(w, r)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	// JWTs of trusted issuers are verified first: that may fetch keys.
	p := s.parseParams(r.Header.Get("Content-Type"), body)
	verified := s.verifyParams(r.Context(), p)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	rec := RecordedRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
	s.last = rec
	if err != nil {
		return "", oauthError(w, http.StatusBadRequest, "invalid_request", "request body too large or unreadable")
	}
	rec.Form, rec.JSON = p.values, p.json
	c := s.credentials(r, p.values)
	rec.AuthMethod, rec.ClientID, rec.ClientCertCN = c.method, c.id, c.certCN
	if c.assertion != nil {
		rec.AssertionHeader = c.assertion.header
	}
	s.last = rec
	id := c.id

	if s.opts.Path != "" && r.URL.Path != s.opts.Path {
		http.NotFound(w, r)
		return id, "not found"
	}
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		return id, f.write(w)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return id, oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "token requests must use POST")
	}
	resp, e := s.token(r, p, c, verified)
	if e != nil {
		return id, e.write(w)
	}
	writeJSON(w, http.StatusOK, resp)
	return id, "issued"
}

// write sends an injected failure and returns the log result.
func (f failure) write(w http.ResponseWriter) string {
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
	return fmt.Sprintf("injected failure %d", status)
}

// token checks a POST to the token endpoint, with s.mu held, and returns
// the response body of the token it issued.
func (s *Server) token(r *http.Request, p params, c credentials, verified map[string]verifiedJWT) (map[string]any, *reqError) {
	if e := s.checkBody(r, p); e != nil {
		return nil, e
	}
	if c.err != nil {
		return nil, c.err
	}
	if e := s.checkHeaders(r); e != nil {
		return nil, e
	}
	id, e := s.authenticate(r, p.values, c, verified)
	if e != nil {
		return nil, e
	}
	s.perClient[id]++
	if s.opts.SCAChallenge {
		return nil, scaChallenge()
	}
	g, e := s.checkGrant(id, p.values, verified)
	if e != nil {
		return nil, e
	}
	return s.issue(r, g)
}

// checkHeaders enforces Options.RequiredHeaders. The description names the
// header, never the value expected or received.
func (s *Server) checkHeaders(r *http.Request) *reqError {
	for _, name := range slices.Sorted(maps.Keys(s.opts.RequiredHeaders)) {
		if r.Header.Get(name) != s.opts.RequiredHeaders[name] {
			return badRequest("invalid_request", fmt.Sprintf("header %s is missing or has the wrong value", http.CanonicalHeaderKey(name)))
		}
	}
	return nil
}

// tokenGrant is what a token is issued for.
type tokenGrant struct {
	grantType string // the literal received
	clientID  string
	subject   string // the client, or the user of a password grant
	scopes    []string
	resources []string
	audience  string
	refresh   string // the refresh token used, spent on success
	exchange  bool   // a token exchange (RFC 8693)
}

// checkGrant checks the grant parameters of a request from the authenticated
// client id.
func (s *Server) checkGrant(id string, form url.Values, verified map[string]verifiedJWT) (tokenGrant, *reqError) {
	gt := form.Get("grant_type")
	g := tokenGrant{grantType: gt, clientID: id, subject: id, resources: form["resource"], audience: form.Get("audience")}
	var granted *refreshGrant // the original grant of a refresh token
	switch {
	case gt == "":
		return g, badRequest("invalid_request", "missing grant_type")
	case gt == s.grantType():
	case s.opts.Users != nil && gt == s.passwordGrantType():
		user := form.Get("username")
		if user == "" || !form.Has("password") {
			return g, badRequest("invalid_request", "the password grant needs username and password")
		}
		if want, ok := s.opts.Users[user]; !ok || want != form.Get("password") {
			return g, badRequest("invalid_grant", "invalid resource owner credentials")
		}
		g.subject = user
	case s.opts.IssueRefreshTokens && gt == s.refreshGrantType():
		rt := form.Get("refresh_token")
		if rt == "" {
			return g, badRequest("invalid_request", "missing refresh_token")
		}
		st, ok := s.refresh[rt]
		if !ok || st.clientID != id || (!st.expiresAt.IsZero() && !s.now().Before(st.expiresAt)) {
			return g, badRequest("invalid_grant", "the refresh token is invalid, expired, revoked or was issued to another client")
		}
		granted, g.subject, g.refresh = &st, st.subject, rt
		if !form.Has("resource") {
			g.resources = st.resources
		}
		if !form.Has("audience") {
			g.audience = st.audience
		}
	case s.exchanges() && gt == s.exchangeGrantType():
		var e *reqError
		if g, e = s.checkExchange(id, form, verified, g); e != nil {
			return g, e
		}
	default:
		return g, badRequest("unsupported_grant_type", "grant_type must be one of "+strings.Join(s.grantTypes(), ", "))
	}

	if form.Has("scope") && strings.TrimSpace(form.Get("scope")) == "" {
		return g, badRequest("invalid_scope", "empty scope")
	}
	g.scopes = strings.Fields(form.Get("scope"))
	if granted != nil && !form.Has("scope") {
		g.scopes = slices.Clone(granted.scopes)
	}
	for _, sc := range g.scopes {
		if granted != nil && !slices.Contains(granted.scopes, sc) {
			return g, badRequest("invalid_scope", fmt.Sprintf("scope %q was not granted to this refresh token", sc))
		}
		if s.opts.AllowedScopes != nil && !slices.Contains(s.opts.AllowedScopes, sc) {
			return g, badRequest("invalid_scope", fmt.Sprintf("scope %q is not allowed", sc))
		}
	}
	if s.opts.RequiredResources != nil {
		if len(g.resources) == 0 {
			return g, badRequest("invalid_target", "at least one resource is required")
		}
		for _, res := range g.resources {
			if !slices.Contains(s.opts.RequiredResources, res) {
				return g, badRequest("invalid_target", fmt.Sprintf("resource %q is not accepted", res))
			}
		}
	}
	if s.opts.RequiredAudience != "" && g.audience != s.opts.RequiredAudience {
		return g, badRequest("invalid_request", "audience is missing or not accepted")
	}
	return g, nil
}

// issue records a token for g and returns the response body.
func (s *Server) issue(r *http.Request, g tokenGrant) (map[string]any, *reqError) {
	now := s.now()
	iss := issuer(r)
	tok := newToken("tst_")
	if s.opts.JWTAccessTokens {
		claims := map[string]any{"iss": iss, "sub": g.subject, "client_id": g.clientID, "iat": now.Unix(), "exp": now.Add(s.jwtLifetime()).Unix(), "jti": newToken("")}
		if len(g.scopes) > 0 {
			claims["scope"] = strings.Join(g.scopes, " ")
		}
		tok = s.signJWT("at+jwt", claims)
	}
	it := IssuedToken{AccessToken: tok, ClientID: g.clientID, Scopes: g.scopes, ExpiresIn: s.opts.ExpiresIn, IssuedAt: now,
		GrantType: g.grantType, Resources: slices.Clone(g.resources), Audience: g.audience, Subject: g.subject}
	resp := map[string]any{"access_token": tok, "token_type": s.tokenType()}
	if g.exchange {
		it.IssuedTokenType = TokenTypeAccessToken
		resp["issued_token_type"] = it.IssuedTokenType
	}
	if s.opts.ExpiresIn != 0 {
		if s.opts.ExpiresInAsString {
			resp["expires_in"] = fmt.Sprint(s.opts.ExpiresIn)
		} else {
			resp["expires_in"] = s.opts.ExpiresIn
		}
	}
	if len(g.scopes) > 0 {
		resp["scope"] = strings.Join(g.scopes, " ")
	}
	if s.opts.IssueRefreshTokens {
		if g.refresh != "" {
			delete(s.refresh, g.refresh) // rotation: spent
		}
		it.RefreshToken = newToken("rt_")
		st := refreshGrant{clientID: g.clientID, subject: g.subject, scopes: g.scopes, resources: it.Resources, audience: g.audience}
		if s.opts.RefreshExpiresIn != 0 {
			st.expiresAt = now.Add(time.Duration(s.opts.RefreshExpiresIn) * time.Second)
			resp["refresh_expires_in"] = s.opts.RefreshExpiresIn
		}
		s.refresh[it.RefreshToken] = st
		resp["refresh_token"] = it.RefreshToken
	}
	if s.opts.IDTokens {
		resp["id_token"] = s.signJWT("JWT", map[string]any{"iss": iss, "sub": g.subject, "aud": g.clientID, "iat": now.Unix(), "exp": now.Add(s.jwtLifetime()).Unix()})
	}
	s.issued = append(s.issued, it)
	if s.opts.ResponseWrapper != "" {
		resp = map[string]any{"status": "success", s.opts.ResponseWrapper: resp}
	}
	return resp, nil
}

// scaChallenge is the 401 of a bank asking for strong customer
// authentication: the parameters are base64 of an indented JSON object.
func scaChallenge() *reqError {
	param, _ := json.MarshalIndent(map[string]any{"challengeId": newToken("sca_"), "methods": []string{"OTP"}}, "", "  ")
	return &reqError{
		status:    http.StatusUnauthorized,
		code:      "access_denied",
		challenge: `SCA realm="Authentication" auth-param1="` + base64.StdEncoding.EncodeToString(param) + `"`,
	}
}

// reqError is an RFC 6749 section 5.2 error response.
type reqError struct {
	status    int
	code      string
	desc      string // omitted when empty
	challenge string // WWW-Authenticate of a 401; default Basic
}

func badRequest(code, desc string) *reqError {
	return &reqError{status: http.StatusBadRequest, code: code, desc: desc}
}

func unauthorized(desc string) *reqError {
	return &reqError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc}
}

// write sends e and returns its code.
func (e *reqError) write(w http.ResponseWriter) string {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	if e.desc == "" {
		writeJSON(w, e.status, map[string]string{"error": e.code})
		return e.code
	}
	return oauthError(w, e.status, e.code, e.desc)
}

// oauthError writes an RFC 6749 section 5.2 error and returns the code.
func oauthError(w http.ResponseWriter, status int, code, desc string) string {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	return code
}

// writeJSON writes v, uncacheable; a 401 without a challenge gets a Basic
// one.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="tokenserver"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) tokenType() string {
	if s.opts.TokenType != "" {
		return s.opts.TokenType
	}
	return "Bearer"
}

func (s *Server) grantType() string { return or(s.opts.GrantType, "client_credentials") }

func (s *Server) passwordGrantType() string { return or(s.opts.PasswordGrantType, "password") }

func (s *Server) refreshGrantType() string { return or(s.opts.RefreshGrantType, "refresh_token") }

// grantTypes lists the grant_type literals accepted.
func (s *Server) grantTypes() []string {
	out := []string{s.grantType()}
	if s.opts.Users != nil {
		out = append(out, s.passwordGrantType())
	}
	if s.opts.IssueRefreshTokens {
		out = append(out, s.refreshGrantType())
	}
	if s.exchanges() {
		out = append(out, s.exchangeGrantType())
	}
	return out
}

// exchanges reports whether token exchanges are enabled: a trusted issuer
// and at least one policy.
func (s *Server) exchanges() bool {
	return (s.fed != nil && len(s.policies) > 0) || s.opts.ExchangeOwnTokens
}

func (s *Server) jwtLifetime() time.Duration {
	if s.opts.JWTLifetime != 0 {
		return time.Duration(s.opts.JWTLifetime) * time.Second
	}
	return 600 * time.Second
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// baseURL is the scheme and host the request was sent to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// issuer is the iss of issued JWTs: the server URL, if the request names it.
func issuer(r *http.Request) string {
	if r.Host == "" {
		return "tokenserver"
	}
	return baseURL(r)
}

// newToken is prefix and 32 random bytes, base64url.
func newToken(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
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
