// Package oauth requests OAuth 2.0 access tokens from token endpoints with
// the client-credentials grant (RFC 6749 section 4.4), using
// golang.org/x/oauth2/clientcredentials. It has no Kubernetes dependencies:
// it turns a Request into a Token, or into an *Error whose Kind tells the
// caller whether to retry.
package oauth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// AuthMethod is how the client authenticates to the token endpoint.
type AuthMethod string

const (
	// AuthMethodAuto sends HTTP Basic credentials and, when the endpoint
	// refuses them with a 4xx (or a 2xx carrying an error code), repeats
	// the request once with the credentials in the form body. Unlike
	// x/oauth2's own auto-detection it does not repeat after a transient
	// failure (5xx, 429, timeout), and it caches nothing.
	AuthMethodAuto AuthMethod = "Auto"
	// AuthMethodBasic sends the URL-encoded client id and secret in an HTTP
	// Basic header (RFC 6749 section 2.3.1).
	AuthMethodBasic AuthMethod = "ClientSecretBasic"
	// AuthMethodPost sends client_id and client_secret in the form body.
	AuthMethodPost AuthMethod = "ClientSecretPost"
	// AuthMethodPrivateKeyJWT sends client_id and a client assertion signed
	// with Request.PrivateKeyPEM (RFC 7523 section 2.2, private_key_jwt).
	AuthMethodPrivateKeyJWT AuthMethod = "PrivateKeyJWT"
	// AuthMethodTLSClient sends only client_id; the client is authenticated
	// by the TLS client certificate in Request.TLS (RFC 8705
	// tls_client_auth).
	AuthMethodTLSClient AuthMethod = "TLSClientAuth"
)

// Standard grant_type values (RFC 6749).
const (
	GrantTypeClientCredentials = "client_credentials"
	GrantTypePassword          = "password"
	GrantTypeRefreshToken      = "refresh_token"
)

// clientAssertionType is the client_assertion_type of RFC 7523.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DefaultTimeout bounds a token request when Request.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxExpiresIn is the largest lifetime reported, as x/oauth2 caps it too.
const maxExpiresIn = math.MaxInt32 * time.Second

// Request describes one token request.
type Request struct {
	// TokenURL is the absolute http(s) URL of the token endpoint, used as
	// it is (path parameters included). It must not contain user
	// information or a fragment.
	TokenURL   string
	AuthMethod AuthMethod // "" means AuthMethodAuto
	ClientID   string
	// ClientSecret is never part of an error message. Unused (and not
	// sent) with AuthMethodPrivateKeyJWT and AuthMethodTLSClient.
	ClientSecret string
	// GrantType is the literal grant_type sent; client_credentials when
	// empty. Some endpoints want other spellings (CLIENT_CREDENTIALS).
	GrantType string
	// Username and Password are sent as username and password when
	// Username is set (the resource-owner password grant).
	Username, Password string
	// RefreshToken is sent as refresh_token when set (the refresh grant;
	// set GrantType to the refresh literal too).
	RefreshToken string
	// Scopes are space-joined into the scope parameter; none is sent when
	// empty.
	Scopes []string
	// Audience is sent as the audience parameter when non-empty.
	Audience string
	// Resources are sent as repeated resource parameters (RFC 8707).
	Resources []string
	// ExtraParams are added to the form. They must not set a parameter
	// the fields above control.
	ExtraParams map[string]string
	// Headers are added to the HTTP request. They must not set
	// Authorization, Content-Type or Content-Length.
	Headers map[string]string
	// Format encodes the body: FormatForm (default) or FormatJSON.
	Format Format
	// ResponseFields locate the token fields in a nested response.
	ResponseFields ResponseFields
	// PrivateKeyPEM signs the client assertion of AuthMethodPrivateKeyJWT.
	// AssertionAlgorithm ("" for the key's default), AssertionKeyID (the
	// kid header) and AssertionAudience (the aud claim, TokenURL when
	// empty) shape it.
	PrivateKeyPEM                                         []byte
	AssertionAlgorithm, AssertionKeyID, AssertionAudience string
	// TLS replaces the default TLS material (CAs, client certificate).
	TLS *TLSConfig
	// Timeout bounds the whole call, including an Auto fallback;
	// DefaultTimeout when zero or negative.
	Timeout time.Duration
	// Tenant names who the request is for (the object's namespace), for
	// limits that keep one tenant from taking all of a host's capacity.
	Tenant string
}

func (r *Request) grantType() string {
	if r.GrantType != "" {
		return r.GrantType
	}
	return GrantTypeClientCredentials
}

// Token is a token endpoint's successful answer.
type Token struct {
	AccessToken string
	// TokenType is "Bearer" when the endpoint omits it; the common types
	// are normalised ("bearer" becomes "Bearer").
	TokenType string
	// ExpiresIn is the lifetime the endpoint gave in expires_in, in whole
	// seconds or, when it gave none, the time left until the exp claim of
	// a JWT access token (read, not verified); zero when neither says.
	ExpiresIn time.Duration
	// ExpiresFrom says where ExpiresIn came from: "expires_in", "jwt" or
	// "" (unknown).
	ExpiresFrom string
	// Scopes are the granted scopes (the response's scope, split on
	// spaces); nil when the endpoint did not say.
	Scopes []string
	// RefreshToken, when the endpoint issued one, and RefreshExpiresIn, its
	// lifetime (zero when not given).
	RefreshToken     string
	RefreshExpiresIn time.Duration
	// IDToken is the id_token of the response, if any.
	IDToken string
	// ReceivedAt is when the answer arrived, by Client.Now.
	ReceivedAt time.Time
}

// Client requests tokens. The zero value is ready to use; a Client is safe
// for concurrent use.
type Client struct {
	// HTTPClient sends the requests; a shared NewHTTPClient() when nil.
	// Whatever its CheckRedirect says, redirects are never followed. With
	// Request.TLS, its Transport must be an *http.Transport.
	HTTPClient *http.Client
	// Now is the clock for Token.ReceivedAt, Retry-After dates, client
	// assertions and JWT expiry; time.Now when nil.
	Now func() time.Time
	// Limiter bounds the request rate per host (token and discovery
	// requests); no limit when nil.
	Limiter *HostLimiter

	tls transports
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

var defaultHTTPClient = NewHTTPClient()

// Token requests a token. A non-nil error is always an *Error.
func (c *Client) Token(ctx context.Context, req Request) (*Token, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	rec := &recorder{secrets: secretsOf(req.ClientSecret, req.Password, req.RefreshToken)}
	hc, d, oerr := c.httpClient(rec, &req)
	if oerr != nil {
		return nil, oerr
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)

	params := url.Values{}
	for k, v := range req.ExtraParams {
		params.Set(k, v)
	}
	params.Set("grant_type", req.grantType())
	if req.Username != "" {
		params.Set("username", req.Username)
		params.Set("password", req.Password)
	}
	if req.RefreshToken != "" {
		params.Set("refresh_token", req.RefreshToken)
	}
	if req.Audience != "" {
		params.Set("audience", req.Audience)
	}
	for _, r := range req.Resources {
		params.Add("resource", r)
	}
	secret := req.ClientSecret
	switch req.AuthMethod {
	case AuthMethodPrivateKeyJWT:
		secret = ""
		assertion, oerr := c.assertion(&req)
		if oerr != nil {
			return nil, oerr
		}
		rec.secrets = append(rec.secrets, assertion)
		params.Set("client_assertion_type", clientAssertionType)
		params.Set("client_assertion", assertion)
	case AuthMethodTLSClient:
		secret = ""
	}
	cfg := clientcredentials.Config{
		ClientID:       req.ClientID,
		ClientSecret:   secret,
		TokenURL:       req.TokenURL,
		Scopes:         req.Scopes,
		EndpointParams: params,
	}

	var tok *oauth2.Token
	switch req.AuthMethod {
	case AuthMethodBasic:
		tok, oerr = c.fetch(ctx, cfg, oauth2.AuthStyleInHeader, rec, d, timeout)
	case AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodTLSClient:
		tok, oerr = c.fetch(ctx, cfg, oauth2.AuthStyleInParams, rec, d, timeout)
	default:
		tok, oerr = c.fetch(ctx, cfg, oauth2.AuthStyleInHeader, rec, d, timeout)
		if oerr != nil && refusedCredentials(oerr) {
			first := oerr
			tok, oerr = c.fetch(ctx, cfg, oauth2.AuthStyleInParams, rec, d, timeout)
			if oerr != nil {
				oerr.note = fmt.Sprintf("Auto: tried %s first, which got %d", AuthMethodBasic, first.StatusCode)
				if first.Code != "" {
					oerr.note += " " + first.Code
				}
				oerr.note += ", then " + string(AuthMethodPost)
			}
		}
	}
	if oerr != nil {
		// Server text was scrubbed already; this covers transport errors.
		oerr.redact = rec.secrets
		return nil, oerr
	}

	out := &Token{
		AccessToken:      tok.AccessToken,
		TokenType:        tok.Type(),
		ReceivedAt:       c.now(),
		Scopes:           grantedScopes(tok.Extra("scope")),
		RefreshToken:     tok.RefreshToken,
		RefreshExpiresIn: expiresIn(tok.Extra("refresh_expires_in")),
	}
	if id, ok := tok.Extra("id_token").(string); ok {
		out.IDToken = id
	}
	if out.ExpiresIn = expiresIn(tok.Extra("expires_in")); out.ExpiresIn > 0 {
		out.ExpiresFrom = "expires_in"
	} else if exp, ok := jwtExpiry(tok.AccessToken); ok {
		if left := exp.Sub(out.ReceivedAt).Truncate(time.Second); left > 0 {
			out.ExpiresIn, out.ExpiresFrom = min(left, maxExpiresIn), "jwt"
		}
	}
	return out, nil
}

// assertion signs the private_key_jwt client assertion.
func (c *Client) assertion(req *Request) (string, *Error) {
	key, err := ParsePrivateKey(req.PrivateKeyPEM)
	if err != nil {
		return "", &Error{Kind: KindConfig, Description: "the private key cannot be used: " + clean(err.Error(), 200)}
	}
	aud := req.AssertionAudience
	if aud == "" {
		aud = req.TokenURL
	}
	a, err := clientAssertion(key, req.AssertionAlgorithm, req.AssertionKeyID, req.ClientID, aud, c.now())
	if err != nil {
		return "", &Error{Kind: KindConfig, Description: "cannot sign the client assertion: " + clean(err.Error(), 200)}
	}
	return a, nil
}

// refusedCredentials reports whether an Auto attempt with Basic credentials
// was refused in a way that trying body credentials might fix.
func refusedCredentials(e *Error) bool {
	if e.Kind != KindRejected {
		return false
	}
	return (e.StatusCode >= 400 && e.StatusCode < 500) || (e.StatusCode >= 200 && e.StatusCode < 300)
}

// httpClient returns a per-call copy of the configured client that adapts
// the request to the endpoint's dialect, records responses, uses the
// request's TLS material, and never follows redirects (a token request must
// not be replayed, with its credentials, to another URL).
func (c *Client) httpClient(rec *recorder, req *Request) (*http.Client, *dialect, *Error) {
	base := c.HTTPClient
	if base == nil {
		base = defaultHTTPClient
	}
	hc := *base
	rec.base = hc.Transport
	if rec.base == nil {
		rec.base = http.DefaultTransport
	}
	if !req.TLS.isZero() {
		tr, oerr := c.tls.get(rec.base, req.TLS)
		if oerr != nil {
			return nil, nil, oerr
		}
		rec.base = tr
	}
	d := &dialect{base: rec, headers: req.Headers, format: req.Format, fields: req.ResponseFields, limiter: c.Limiter}
	hc.Transport = d
	hc.CheckRedirect = noRedirect
	return &hc, d, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (c *Client) fetch(ctx context.Context, cfg clientcredentials.Config, style oauth2.AuthStyle, rec *recorder, d *dialect, timeout time.Duration) (*oauth2.Token, *Error) {
	cfg.AuthStyle = style
	rec.reset()
	d.missing = ""
	tok, err := cfg.Token(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "server response missing access_token") {
			// x/oauth2 reads text/plain answers as form-encoded; some
			// endpoints (any Go server that forgets the Content-Type) send
			// JSON labelled text/plain. Read those as JSON.
			if tok, oerr, ok := rec.last().jsonAsText(rec.secrets); ok {
				return tok, oerr
			}
		}
		oerr := c.classify(ctx, err, rec, timeout)
		if d.missing != "" && oerr.Kind == KindInvalidResponse {
			oerr.Description = fmt.Sprintf("response has no value at %q (responseFields); %s", clean(d.missing, 256), oerr.Description)
		}
		return nil, oerr
	}
	return tok, nil
}

func validate(req Request) *Error {
	u, err := url.Parse(req.TokenURL)
	if err != nil {
		return &Error{Kind: KindConfig, Description: "token URL cannot be parsed"}
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return &Error{Kind: KindConfig, Description: fmt.Sprintf("token URL %q is not an absolute http(s) URL", RedactedURL(req.TokenURL))}
	}
	if u.User != nil {
		return &Error{Kind: KindConfig, Description: "token URL must not contain user information"}
	}
	if u.Fragment != "" || strings.Contains(req.TokenURL, "#") {
		return &Error{Kind: KindConfig, Description: "token URL must not contain a fragment (RFC 6749 section 3.2)"}
	}
	switch req.AuthMethod {
	case "", AuthMethodAuto, AuthMethodBasic, AuthMethodPost, AuthMethodTLSClient:
	case AuthMethodPrivateKeyJWT:
		if len(req.PrivateKeyPEM) == 0 {
			return &Error{Kind: KindConfig, Description: "PrivateKeyJWT needs a private key"}
		}
	default:
		return &Error{Kind: KindConfig, Description: fmt.Sprintf("unknown auth method %q (want %s, %s, %s, %s or %s)",
			clean(string(req.AuthMethod), 64), AuthMethodAuto, AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodTLSClient)}
	}
	if req.AuthMethod == AuthMethodTLSClient && (req.TLS == nil || len(req.TLS.CertPEM) == 0) {
		return &Error{Kind: KindConfig, Description: "TLSClientAuth needs a client certificate"}
	}
	switch req.Format {
	case "", FormatForm, FormatJSON:
	default:
		return &Error{Kind: KindConfig, Description: fmt.Sprintf("unknown request format %q", clean(string(req.Format), 64))}
	}
	if req.ClientID == "" {
		return &Error{Kind: KindConfig, Description: "empty client id"}
	}
	for k := range req.ExtraParams {
		switch {
		case k == "":
			return &Error{Kind: KindConfig, Description: "extra parameter with an empty name"}
		case reservedParams[k],
			k == "scope" && len(req.Scopes) > 0, k == "audience" && req.Audience != "":
			return &Error{Kind: KindConfig, Description: fmt.Sprintf("extra parameter %q would override a parameter set by the client", clean(k, 64))}
		}
	}
	for k := range req.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Content-Type", "Content-Length", "Host":
			return &Error{Kind: KindConfig, Description: fmt.Sprintf("header %q would override a header set by the client", clean(k, 64))}
		}
	}
	return nil
}

// reservedParams are the parameters Request fields control.
var reservedParams = map[string]bool{
	"grant_type": true, "client_id": true, "client_secret": true,
	"username": true, "password": true, "refresh_token": true, "resource": true,
	"client_assertion": true, "client_assertion_type": true,
}

// expiresIn reads the raw expires_in value: a JSON number, a numeric string
// (as some endpoints send, and as form-encoded answers carry it) or a
// json.Number. Absent, non-positive or unreadable values give 0.
func expiresIn(v any) time.Duration {
	var secs float64
	switch x := v.(type) {
	case float64:
		secs = x
	case int64: // from a form-encoded answer
		secs = float64(x)
	case int:
		secs = float64(x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return 0
		}
		secs = f
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0
		}
		secs = f
	default:
		return 0
	}
	if math.IsNaN(secs) || secs < 1 {
		return 0
	}
	if secs >= float64(maxExpiresIn/time.Second) {
		return maxExpiresIn
	}
	return time.Duration(secs) * time.Second
}

// grantedScopes reads the response's scope: a space-separated string
// (RFC 6749 section 5.1) or, from some endpoints, a JSON array.
func grantedScopes(v any) []string {
	switch x := v.(type) {
	case string:
		if f := strings.Fields(x); len(f) > 0 {
			return f
		}
	case []any:
		var out []string
		for _, s := range x {
			if s, ok := s.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.Fields(s)...)
			}
		}
		return out
	}
	return nil
}

// classify turns an x/oauth2 or transport error into *Error.
func (c *Client) classify(ctx context.Context, err error, rec *recorder, timeout time.Duration) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return c.fromResponse(re, rec.secrets)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &Error{Kind: KindTransient, StatusCode: rec.status(), Description: fmt.Sprintf("no complete response within %s", timeout), Err: sanitize(err)}
		}
		return &Error{Kind: KindTransient, StatusCode: rec.status(), Description: "request canceled", Err: sanitize(err)}
	}
	if fe, ok := asForbidden(err); ok {
		return &Error{Kind: KindConfig, Forbidden: true, Description: fe.Error()}
	}
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return &Error{Kind: KindTransient, Description: rl.Error(), RetryAfter: rl.Delay.Round(time.Second) + time.Second}
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return &Error{Kind: KindTransient, Description: "cannot verify the token endpoint's TLS certificate", Err: sanitize(err)}
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return &Error{Kind: KindTransient, StatusCode: rec.status(), Description: "cannot reach the token endpoint", Err: sanitize(err)}
	}
	// x/oauth2 reports 2xx bodies it cannot use as plain errors (fmt.Errorf
	// with %v, so only the text tells them apart).
	msg := err.Error()
	resp := rec.last()
	switch {
	case strings.Contains(msg, "server response missing access_token"):
		return &Error{Kind: KindInvalidResponse, StatusCode: resp.status, Description: resp.describeMissingToken()}
	case strings.Contains(msg, "cannot parse json"):
		return &Error{Kind: KindInvalidResponse, StatusCode: resp.status, Description: resp.describeBadJSON()}
	case strings.Contains(msg, "cannot parse response"):
		return &Error{Kind: KindInvalidResponse, StatusCode: resp.status, Description: "form-encoded response cannot be parsed (" + resp.summary() + ")"}
	case strings.Contains(msg, "cannot fetch token"):
		// Reading the body failed (connection reset mid-body and such).
		return &Error{Kind: KindTransient, StatusCode: resp.status, Description: "reading the response failed", Err: errors.New(strings.TrimPrefix(msg, "oauth2: cannot fetch token: "))}
	}
	return &Error{Kind: KindTransient, StatusCode: resp.status, Description: "token request failed", Err: sanitize(err)}
}

// sanitize drops the query string from the URL in a *url.Error, the one
// place a transport error quotes the request.
func sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactedURL(ue.URL), Err: ue.Err}
	}
	return err
}

// fromResponse classifies a non-2xx response, or a 2xx one with an error
// code. The body itself never reaches the message.
func (c *Client) fromResponse(re *oauth2.RetrieveError, secrets []string) *Error {
	e := &Error{Kind: KindRejected, Code: serverText(re.ErrorCode, 64, secrets), Description: serverText(re.ErrorDescription, maxDescription, secrets)}
	if re.Response == nil {
		return e
	}
	e.StatusCode = re.Response.StatusCode
	e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), c.now())
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		if loc, err := re.Response.Location(); err == nil {
			e.Description = fmt.Sprintf("token endpoint redirected to %s; set tokenURL to the final URL (redirects are not followed)", RedactedURL(loc.String()))
		} else {
			e.Description = "token endpoint answered with a redirect status and no usable Location; set tokenURL to the final URL"
		}
		return e
	}
	if e.Code == "" && e.Description == "" {
		// A JSON error labelled text/plain was read as a form by x/oauth2.
		if code, desc, ok := jsonErrorFields(re.Body); ok {
			e.Code, e.Description = serverText(code, 64, secrets), serverText(desc, maxDescription, secrets)
		} else {
			e.Description = describeBody(re.Response.Header.Get("Content-Type"), re.Body, len(re.Body))
		}
	}
	if e.StatusCode == http.StatusUnauthorized {
		e.Challenge = challengeScheme(re.Response.Header.Values("WWW-Authenticate"))
	}
	switch {
	case e.Code == "interaction_required", e.Code == "login_required", e.Code == "consent_required":
		e.InteractionRequired = true
	case e.Challenge != "" && !credentialSchemes[strings.ToLower(e.Challenge)]:
		e.InteractionRequired = true
		if e.Description == "" || e.Code == "" {
			e.Description = fmt.Sprintf("the endpoint asks for %s authentication (WWW-Authenticate), an interactive step tokensync cannot perform", e.Challenge)
		}
	}
	switch {
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusRequestTimeout, e.StatusCode >= 500:
		e.Kind = KindTransient
	case e.Code == "temporarily_unavailable", e.Code == "server_error":
		e.Kind = KindTransient
	}
	return e
}

// credentialSchemes are the WWW-Authenticate schemes that a 401 from a
// token endpoint uses to say "bad client credentials"; any other scheme
// asks for something else, such as Paysafe's SCA (strong customer
// authentication).
var credentialSchemes = map[string]bool{
	"basic": true, "bearer": true, "digest": true, "dpop": true,
	"negotiate": true, "ntlm": true, "mutual": true, "hoba": true,
}

// challengeScheme returns the auth scheme of the first WWW-Authenticate
// challenge: a token (RFC 9110 section 11.1) of at most 64 characters.
func challengeScheme(values []string) string {
	for _, v := range values {
		v = strings.TrimSpace(v)
		end := strings.IndexAny(v, " \t,")
		if end < 0 {
			end = len(v)
		}
		scheme := v[:end]
		if scheme == "" || len(scheme) > 64 {
			continue
		}
		valid := true
		for _, r := range scheme {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
				valid = false
				break
			}
		}
		if valid {
			return scheme
		}
	}
	return ""
}

// maxRetryAfter bounds Error.RetryAfter.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After value: delta-seconds or an HTTP-date
// relative to now. Missing, invalid or past values give 0.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs >= int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// RedactedURL drops user information, query and fragment from a URL so it
// can appear in messages. An unparseable URL gives a placeholder.
func RedactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Keep scheme and host when recognisable; never echo the rest.
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// HTTPOptions adjust NewHTTPClientWithOptions.
type HTTPOptions struct {
	// AllowLinkLocal lets connections reach link-local and cloud metadata
	// addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), refused by
	// default so that a tenant cannot aim tokensync at instance metadata.
	AllowLinkLocal bool
}

// NewHTTPClient returns the HTTP client token requests use by default: TLS
// 1.2 at least, the proxy from the standard environment variables, bounded
// connection set-up and response-header waits, pooled connections, no
// redirects, and no connections to link-local or metadata addresses.
// x/oauth2 itself reads at most 1 MiB of a token response.
func NewHTTPClient() *http.Client { return NewHTTPClientWithOptions(HTTPOptions{}) }

// NewHTTPClientWithOptions is NewHTTPClient with options.
func NewHTTPClientWithOptions(o HTTPOptions) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
	}
	if !o.AllowLinkLocal {
		dialer.Control = guardControl
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: noRedirect,
	}
}
