package tokenserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Federation: the server accepts JWTs minted by a trusted OpenID Connect
// issuer, such as Kubernetes ServiceAccount tokens from the TokenRequest
// API, the way a real identity provider does. It fetches the issuer's
// /.well-known/openid-configuration and the JWKS it names (jwks_uri),
// checks the signature with go-jose, then iss, aud, exp, nbf and iat, and
// maps sub (system:serviceaccount:<namespace>:<name> for Kubernetes) to a
// registered client or exchange policy. Two uses:
//
//   - federated client authentication (RFC 7523 section 2.2): the JWT is
//     the client_assertion, and FederatedClients says which client it
//     authenticates;
//   - token exchange (RFC 8693): the JWT is the subject_token (and
//     optionally the actor_token), and ExchangePolicies say what it may be
//     exchanged for.

// Token-exchange identifiers (RFC 8693).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// AuthFederated is RecordedRequest.AuthMethod for a client that
// authenticated with a JWT of a trusted issuer.
const AuthFederated = "federated_jwt"

// TrustedIssuer is an issuer whose JWTs the server verifies.
type TrustedIssuer struct {
	// Issuer is the iss the JWTs carry and the discovery document names.
	Issuer string
	// DiscoveryURL is where the discovery document is read; Issuer +
	// "/.well-known/openid-configuration" when empty.
	DiscoveryURL string
	// Audience is the aud the JWTs must hold (among others); required.
	Audience string
	// RootCAs verify the issuer's https endpoints; system roots when nil.
	RootCAs *x509.CertPool
	// BearerToken, when set, is sent to read the discovery document and
	// the JWKS, for an issuer (a kube-apiserver) that does not serve them
	// anonymously.
	BearerToken string
	// Leeway is the clock skew allowed on exp, nbf and iat; one minute
	// when zero, none when negative.
	Leeway time.Duration
}

// FederatedClient is a client that authenticates with a JWT of Issuer
// whose sub is Subject.
type FederatedClient struct {
	Issuer, Subject string
}

// ExchangePolicy lets JWTs of Issuer with sub Subject be exchanged (RFC
// 8693) for an access token.
type ExchangePolicy struct {
	Issuer, Subject string
	// Client, when set, is the only client that may make the exchange,
	// authenticated by any method; empty allows any client, and public
	// exchanges without client authentication.
	Client string
	// Audiences and Resources, when non-nil, are the only audience and
	// resource values that may be requested; others get invalid_target.
	Audiences, Resources []string
	// Scopes, when non-nil, are the only scopes that may be requested;
	// others get invalid_scope.
	Scopes []string
}

// federation verifies JWTs of trusted issuers; safe for concurrent use.
type federation struct {
	now     func() time.Time
	mu      sync.Mutex
	issuers map[string]TrustedIssuer
	keys    map[string]*issuerKeys
}

type issuerKeys struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

// keyRefresh is how long a JWKS is reused; a key ID not in it is looked
// for afresh after minKeyRefetch.
const (
	keyRefresh    = 5 * time.Minute
	minKeyRefetch = time.Second
)

// federatedAlgorithms are the signature algorithms accepted in issuers'
// JWTs (asymmetric only: an HMAC key cannot be published).
var federatedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// verifiedJWT is a JWT of a trusted issuer whose signature and times were
// checked, or why it was refused.
type verifiedJWT struct {
	issuer  string
	subject string
	err     error // the check that failed; never quotes the token
}

// trusts reports whether raw claims (unverified) an issuer this server
// trusts, and which.
func (f *federation) trusts(raw string) (string, bool) {
	if f == nil {
		return "", false
	}
	tok, err := jwt.ParseSigned(raw, federatedAlgorithms)
	if err != nil {
		return "", false
	}
	var c jwt.Claims
	if tok.UnsafeClaimsWithoutVerification(&c) != nil {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.issuers[c.Issuer]
	return c.Issuer, ok
}

// verify checks raw, a JWT claiming a trusted issuer, fetching the issuer's
// keys when needed (so: never with Server.mu held).
func (f *federation) verify(ctx context.Context, raw string) verifiedJWT {
	iss, ok := f.trusts(raw)
	if !ok {
		return verifiedJWT{err: errors.New("the JWT's iss is not a trusted issuer")}
	}
	tok, err := jwt.ParseSigned(raw, federatedAlgorithms)
	if err != nil {
		return verifiedJWT{err: errors.New("the JWT does not parse")}
	}
	f.mu.Lock()
	ti := f.issuers[iss]
	f.mu.Unlock()
	kid := ""
	if len(tok.Headers) > 0 {
		kid = tok.Headers[0].KeyID
	}
	keys, err := f.keySet(ctx, ti, kid)
	if err != nil {
		return verifiedJWT{issuer: iss, err: err}
	}
	var c jwt.Claims
	if err := tok.Claims(keys, &c); err != nil {
		return verifiedJWT{issuer: iss, err: errors.New("the JWT's signature does not verify with the issuer's keys")}
	}
	leeway := ti.Leeway
	switch {
	case leeway == 0:
		leeway = jwt.DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	if c.Expiry == nil {
		return verifiedJWT{issuer: iss, err: errors.New("the JWT has no exp")}
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: ti.Issuer, AnyAudience: jwt.Audience{ti.Audience}, Time: f.now()}, leeway); err != nil {
		return verifiedJWT{issuer: iss, err: fmt.Errorf("the JWT is not valid here: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose/jwt: "))}
	}
	if c.Subject == "" {
		return verifiedJWT{issuer: iss, err: errors.New("the JWT has no sub")}
	}
	return verifiedJWT{issuer: iss, subject: c.Subject}
}

// keySet returns the issuer's JWKS, fetched afresh when older than
// keyRefresh or when it lacks kid.
func (f *federation) keySet(ctx context.Context, ti TrustedIssuer, kid string) (*jose.JSONWebKeySet, error) {
	now := time.Now()
	f.mu.Lock()
	k := f.keys[ti.Issuer]
	f.mu.Unlock()
	if k != nil && now.Sub(k.fetched) < keyRefresh && (kid == "" || len(k.set.Key(kid)) > 0 || now.Sub(k.fetched) < minKeyRefetch) {
		return &k.set, nil
	}
	set, err := fetchKeys(ctx, ti)
	if err != nil {
		if k != nil {
			return &k.set, nil
		}
		return nil, err
	}
	f.mu.Lock()
	f.keys[ti.Issuer] = &issuerKeys{set: set, fetched: now}
	f.mu.Unlock()
	return &set, nil
}

// fetchKeys reads the issuer's discovery document and then its JWKS.
func fetchKeys(ctx context.Context, ti TrustedIssuer) (jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hc := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ti.RootCAs, MinVersion: tls.VersionTLS12}},
		// The documents are read where they are; no redirect is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	discovery := ti.DiscoveryURL
	if discovery == "" {
		discovery = strings.TrimSuffix(ti.Issuer, "/") + wellKnownOpenID
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, hc, discovery, ti.BearerToken, &doc); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("the issuer's discovery document: %w", err)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(ti.Issuer, "/") || doc.JWKSURI == "" {
		return jose.JSONWebKeySet{}, errors.New("the issuer's discovery document names another issuer or no jwks_uri")
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, hc, doc.JWKSURI, ti.BearerToken, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("the issuer's JWKS: %w", err)
	}
	return set, nil
}

func getJSON(ctx context.Context, hc *http.Client, u, bearer string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errors.New("bad URL")
	}
	// A kube-apiserver serves its JWKS as application/jwk-set+json only.
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot be fetched from %s", req.URL.Redacted())
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	if json.Unmarshal(body, v) != nil {
		return errors.New("is not JSON")
	}
	return nil
}

// newFederation returns nil when opts trust no issuer.
func newFederation(opts Options, now func() time.Time) *federation {
	if len(opts.TrustedIssuers) == 0 {
		return nil
	}
	f := &federation{now: now, issuers: map[string]TrustedIssuer{}, keys: map[string]*issuerKeys{}}
	for _, ti := range opts.TrustedIssuers {
		f.issuers[ti.Issuer] = ti
	}
	return f
}

// verifyParams verifies, before Server.mu is taken, the JWTs of trusted
// issuers among the client_assertion, subject_token and actor_token
// parameters.
func (s *Server) verifyParams(ctx context.Context, p params) map[string]verifiedJWT {
	if s.fed == nil {
		return nil
	}
	out := map[string]verifiedJWT{}
	for _, name := range []string{"client_assertion", "subject_token", "actor_token"} {
		raw := p.values.Get(name)
		if raw == "" {
			continue
		}
		if _, ok := s.fed.trusts(raw); ok || name != "client_assertion" {
			out[name] = s.fed.verify(ctx, raw)
		}
	}
	return out
}

// checkFederated authenticates a client by a verified JWT of a trusted
// issuer, with s.mu held. Descriptions name the failed check, never the
// JWT.
func (s *Server) checkFederated(form map[string][]string, v verifiedJWT) (string, *reqError) {
	if v.err != nil {
		return "", unauthorized("client_assertion: " + v.err.Error())
	}
	var ids []string
	for id, fc := range s.federated {
		if fc.Issuer == v.issuer && fc.Subject == v.subject {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	want := ""
	if vs := form["client_id"]; len(vs) > 0 {
		want = vs[0]
	}
	switch {
	case len(ids) == 0:
		return "", unauthorized("the assertion's subject is not a federated client")
	case want != "" && !slices.Contains(ids, want):
		return "", unauthorized("client_id is not the federated client of the assertion's subject")
	case want != "":
		return want, nil
	case len(ids) > 1:
		return "", badRequest("invalid_request", "the assertion's subject is several clients: send client_id")
	}
	return ids[0], nil
}

// checkExchange checks an RFC 8693 token exchange by the authenticated
// client id (empty for a public client, which only policies for any client
// allow), with s.mu held, and returns the token's grant.
func (s *Server) checkExchange(id string, form map[string][]string, verified map[string]verifiedJWT, g tokenGrant) (tokenGrant, *reqError) {
	get := func(k string) string {
		if vs := form[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	if get("subject_token") == "" || get("subject_token_type") == "" {
		return g, badRequest("invalid_request", "a token exchange needs subject_token and subject_token_type")
	}
	if get("subject_token_type") == TokenTypeAccessToken && s.opts.ExchangeOwnTokens {
		it, ok := s.validLocked(get("subject_token"))
		if !ok {
			return g, badRequest("invalid_grant", "the subject_token is not an unexpired token of this server")
		}
		g.subject, g.exchange = "token-of:"+it.ClientID, true
		return g, nil
	}
	if t := get("subject_token_type"); t != TokenTypeJWT && t != TokenTypeIDToken {
		return g, badRequest("invalid_request", "subject_token_type must be "+TokenTypeJWT+" or "+TokenTypeIDToken)
	}
	if rt := get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken && rt != TokenTypeJWT {
		return g, badRequest("invalid_request", "requested_token_type must be "+TokenTypeAccessToken+" or "+TokenTypeJWT)
	}
	sub, ok := verified["subject_token"]
	switch {
	case !ok:
		return g, badRequest("invalid_request", "the subject_token is not a JWT of a trusted issuer")
	case sub.err != nil:
		return g, badRequest("invalid_request", "subject_token: "+sub.err.Error())
	}
	if get("actor_token") != "" {
		if act, ok := verified["actor_token"]; !ok || act.err != nil || get("actor_token_type") == "" {
			return g, badRequest("invalid_request", "the actor_token is not a valid JWT of a trusted issuer with an actor_token_type")
		}
	}
	var policy *ExchangePolicy
	for i, p := range s.policies {
		if p.Issuer == sub.issuer && p.Subject == sub.subject && (p.Client == "" || p.Client == id) {
			policy = &s.policies[i]
			break
		}
	}
	if policy == nil {
		return g, badRequest("unauthorized_client", "no exchange policy allows this subject for this client")
	}
	if policy.Audiences != nil && g.audience != "" && !slices.Contains(policy.Audiences, g.audience) {
		return g, badRequest("invalid_target", "the audience is not allowed for this subject")
	}
	if policy.Resources != nil {
		for _, res := range g.resources {
			if !slices.Contains(policy.Resources, res) {
				return g, badRequest("invalid_target", "a resource is not allowed for this subject")
			}
		}
	}
	if policy.Scopes != nil {
		for _, sc := range strings.Fields(get("scope")) {
			if !slices.Contains(policy.Scopes, sc) {
				return g, badRequest("invalid_scope", fmt.Sprintf("scope %q is not allowed for this subject", sc))
			}
		}
	}
	g.subject = sub.subject
	g.exchange = true
	return g, nil
}

// exchangeGrantType is the grant_type literal of token exchanges.
func (s *Server) exchangeGrantType() string {
	return or(s.opts.ExchangeGrantType, GrantTypeTokenExchange)
}

// RegisterFederatedClient registers client id as one that authenticates
// with a JWT of fc.Issuer (a trusted issuer) whose sub is fc.Subject. An
// earlier client of that id is forgotten, with what was issued to it, as
// RegisterClient does.
func (s *Server) RegisterFederatedClient(id string, fc FederatedClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.federated[id] = fc
	delete(s.clients, id)
	s.issued = slices.DeleteFunc(s.issued, func(it IssuedToken) bool { return it.ClientID == id })
}

// AddExchangePolicy allows one more kind of token exchange.
func (s *Server) AddExchangePolicy(p ExchangePolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies = append(s.policies, p)
}

// ClientRequests is the number of token requests in which client id
// authenticated (by any method), whatever their outcome after that; ""
// counts public token exchanges.
func (s *Server) ClientRequests(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perClient[id]
}
