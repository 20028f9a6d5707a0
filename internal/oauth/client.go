// Package oauth requests OAuth 2.0 access tokens from token endpoints: the
// client-credentials grant (RFC 6749 section 4.4) and the others a token
// endpoint's dialect may need (password, refresh_token, RFC 8693 token
// exchange). It has no Kubernetes dependencies: it turns a Request into a
// Token, or into an *Error whose Kind tells the caller whether to retry.
//
// One concern per file: request.go (what a request is, and refusing what
// cannot be sent), exchange.go (the HTTP exchange of RFC 6749 sections 4.4
// and 5), fields.go (nested responses), token.go and expiry.go (reading
// the answer), classify.go and error.go (what failed and what to do),
// redact.go and describe.go (messages without secrets), jwt.go (client
// assertions and JWT claims, with go-jose), limiter.go (per-host limits),
// guard.go and httpclient.go (where requests may go), tls.go, discovery.go
// and allowlist.go.
package oauth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client requests tokens. The zero value is ready to use; a Client is safe
// for concurrent use.
type Client struct {
	// HTTPClient sends the requests; a shared NewHTTPClient() when nil.
	// Whatever its CheckRedirect says, redirects are never followed. With
	// Request.TLS, its Transport must be an *http.Transport.
	HTTPClient *http.Client
	// Now is the clock for Token.ReceivedAt, Retry-After dates, client
	// assertions, JWT expiry and the Limiter; time.Now when nil.
	Now func() time.Time
	// Limiter bounds the requests per host (token and discovery
	// requests): rate and requests in flight. It never waits; see
	// KindThrottled. No limit when nil.
	Limiter *HostLimiter
	// MaxTimeout caps Request.Timeout and DiscoveryRequest.Timeout (and
	// DefaultTimeout): a longer one is cut to it. No cap when zero.
	MaxTimeout time.Duration

	tls transports
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// timeout is the bound of one call.
func (c *Client) timeout(requested time.Duration) time.Duration {
	if requested <= 0 {
		requested = DefaultTimeout
	}
	if c.MaxTimeout > 0 && requested > c.MaxTimeout {
		return c.MaxTimeout
	}
	return requested
}

var defaultHTTPClient = NewHTTPClient()

// Token requests a token. A non-nil error is always an *Error.
func (c *Client) Token(ctx context.Context, req Request) (*Token, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	hc, oerr := c.httpClient(req.TLS)
	if oerr != nil {
		return nil, oerr
	}
	x := &exchange{hc: hc, url: req.TokenURL, params: req.params(), headers: req.Headers, format: req.Format, fields: req.ResponseFields, secrets: req.secrets()}
	if oerr := c.clientCredentials(x, &req); oerr != nil {
		return nil, oerr
	}

	release, throttled := c.Limiter.acquire(hostOf(req.TokenURL), req.Tenant, callerOf(&req), c.now())
	if throttled != nil {
		return nil, throttled.oauthError()
	}
	defer release()
	timeout := c.timeout(req.Timeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tok, oerr := c.authenticate(ctx, x, &req, timeout)
	if oerr != nil {
		return nil, oerr // never a nil *Error in a non-nil error
	}
	return tok, nil
}

// clientCredentials puts the client authentication that travels in the
// body into x, except the client secret (see send).
func (c *Client) clientCredentials(x *exchange, req *Request) *Error {
	switch req.authMethod() {
	case AuthMethodPrivateKeyJWT:
		assertion, oerr := c.assertion(req)
		if oerr != nil {
			return oerr
		}
		x.secrets = append(x.secrets, assertion)
		x.params.Set("client_assertion_type", clientAssertionType)
		x.params.Set("client_assertion", assertion)
		x.params.Set("client_id", req.ClientID)
	case AuthMethodServiceAccountAssertion:
		x.params.Set("client_assertion_type", clientAssertionType)
		x.params.Set("client_assertion", req.ClientAssertion)
		if req.ClientID != "" {
			x.params.Set("client_id", req.ClientID)
		}
	case AuthMethodTLSClient, AuthMethodNone:
		if req.ClientID != "" {
			x.params.Set("client_id", req.ClientID)
		}
	}
	return nil
}

// authenticate sends the request with the client authentication of its
// method: for Auto, Basic and then, when that was refused, the body.
func (c *Client) authenticate(ctx context.Context, x *exchange, req *Request, timeout time.Duration) (*Token, *Error) {
	switch req.authMethod() {
	case AuthMethodBasic:
		return c.send(ctx, x, req, true, timeout)
	case AuthMethodAuto:
		tok, first := c.send(ctx, x, req, true, timeout)
		if first == nil || !refusedCredentials(first) {
			return tok, first
		}
		tok, second := c.send(ctx, x, req, false, timeout)
		if second != nil {
			second.note = fmt.Sprintf("Auto: tried %s first, which got %d", AuthMethodBasic, first.StatusCode)
			if first.Code != "" {
				second.note += " " + first.Code
			}
			second.note += ", then " + string(AuthMethodPost)
		}
		return tok, second
	default:
		return c.send(ctx, x, req, false, timeout)
	}
}

// send runs the exchange once, with the client secret in a Basic header
// or, for ClientSecretPost and Auto's second attempt, in the body.
func (c *Client) send(ctx context.Context, x *exchange, req *Request, basic bool, timeout time.Duration) (*Token, *Error) {
	y := *x
	m := req.authMethod()
	if !basic && (m == AuthMethodPost || m == AuthMethodAuto) {
		y.params = cloneValues(x.params)
		y.params.Set("client_id", req.ClientID)
		if req.ClientSecret != "" {
			y.params.Set("client_secret", req.ClientSecret)
		}
	}
	tok, err := y.send(ctx, req.ClientID, req.ClientSecret, basic)
	if err != nil {
		oerr := c.classify(ctx, err, x.secrets, timeout)
		// Server text was scrubbed already; this covers transport errors.
		oerr.redact = x.secrets
		return nil, oerr
	}
	return newToken(tok, c.now()), nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// assertion signs the private_key_jwt client assertion.
func (c *Client) assertion(req *Request) (string, *Error) {
	key, err := ParsePrivateKey(req.PrivateKeyPEM)
	if err != nil {
		return "", configError("the private key cannot be used: " + clean(err.Error(), 200))
	}
	aud := req.AssertionAudience
	if aud == "" {
		aud = req.TokenURL
	}
	a, err := clientAssertion(key, req.AssertionAlgorithm, req.AssertionKeyID, req.ClientID, aud, c.now())
	if err != nil {
		return "", configError("cannot sign the client assertion: " + clean(err.Error(), 200))
	}
	return a, nil
}

// httpClient returns a per-call copy of the configured client that uses
// the request's TLS material and never follows redirects (a token request
// must not be replayed, with its credentials, to another URL).
func (c *Client) httpClient(t *TLSConfig) (*http.Client, *Error) {
	base := c.HTTPClient
	if base == nil {
		base = defaultHTTPClient
	}
	hc := *base
	if !t.isZero() {
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		tr, oerr := c.tls.get(rt, t)
		if oerr != nil {
			return nil, oerr
		}
		hc.Transport = tr
	}
	hc.CheckRedirect = noRedirect
	return &hc, nil
}

// hostOf is the host[:port] of a URL, the key of the Limiter: never user
// information, path or query. See HostKey.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return HostKey(u)
}

// HostKey is the canonical host[:port] of u, so that one server spelled
// several ways (upper case, a trailing dot, the scheme's default port
// written out, a port with leading zeros) is one host for the per-host
// limits and the metrics: lower case, no trailing dot, the port as a
// number and omitted when it is the scheme's default.
func HostKey(u *url.URL) string {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			// not a port Go dials; keep it as written
		case (n == 443 && u.Scheme == "https") || (n == 80 && u.Scheme == "http"):
			port = ""
		default:
			port = strconv.FormatUint(n, 10)
		}
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// callerOf identifies a request for the Limiter's booked slots, without
// its secrets.
func callerOf(r *Request) string {
	return strings.Join([]string{r.TokenURL, r.Tenant, r.ClientID, string(r.authMethod()), r.grantType(), r.Username,
		strings.Join(r.Scopes, " "), r.Audience, strings.Join(r.Resources, " "), r.RequestedTokenType}, "\x00")
}
