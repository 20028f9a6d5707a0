// Package oauth requests OAuth 2.0 access tokens from token endpoints with
// the client-credentials grant (RFC 6749 section 4.4). It has no Kubernetes
// dependencies: it turns a Request into a Token or a typed *Error whose Kind
// tells the caller whether to retry.
package oauth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
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
	// AuthMethodAuto tries HTTP Basic and falls back to body credentials
	// when the endpoint refuses it (golang.org/x/oauth2's auto-detection).
	AuthMethodAuto AuthMethod = "Auto"
	// AuthMethodBasic sends the URL-encoded client id and secret in an HTTP
	// Basic header (RFC 6749 section 2.3.1).
	AuthMethodBasic AuthMethod = "ClientSecretBasic"
	// AuthMethodPost sends client_id and client_secret in the form body.
	AuthMethodPost AuthMethod = "ClientSecretPost"
)

// DefaultTimeout bounds a token request when Request.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Request describes one token request.
type Request struct {
	TokenURL     string
	AuthMethod   AuthMethod
	ClientID     string
	ClientSecret string
	// Scopes are space-joined into the scope parameter; none is sent when empty.
	Scopes []string
	// Audience is sent as the audience parameter when non-empty.
	Audience string
	// ExtraParams are added to the form.
	ExtraParams map[string]string
	// Timeout bounds the whole request; DefaultTimeout when zero.
	Timeout time.Duration
}

// Token is a token endpoint's successful answer.
type Token struct {
	AccessToken string
	// TokenType is "Bearer" when the endpoint omits it.
	TokenType string
	// ExpiresIn is the lifetime the endpoint gave; zero when it gave none.
	ExpiresIn time.Duration
	// Scopes are the granted scopes, when the endpoint said.
	Scopes []string
	// ReceivedAt is when the answer arrived, by the client's clock.
	ReceivedAt time.Time
}

// Client requests tokens.
type Client struct {
	// HTTPClient sends the requests; NewHTTPClient() when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

var defaultHTTPClient = NewHTTPClient()

// Token requests a token. Errors are always *Error.
func (c *Client) Token(ctx context.Context, req Request) (*Token, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)

	params := url.Values{}
	if req.Audience != "" {
		params.Set("audience", req.Audience)
	}
	for k, v := range req.ExtraParams {
		params.Set(k, v)
	}
	cfg := clientcredentials.Config{
		ClientID:       req.ClientID,
		ClientSecret:   req.ClientSecret,
		TokenURL:       req.TokenURL,
		Scopes:         req.Scopes,
		EndpointParams: params,
		AuthStyle:      authStyle(req.AuthMethod),
	}
	tok, err := cfg.Token(ctx)
	if err != nil {
		return nil, c.classify(ctx, err)
	}
	out := &Token{
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		ReceivedAt:  c.now(),
		ExpiresIn:   expiresIn(tok.Extra("expires_in")),
	}
	if out.TokenType == "" {
		out.TokenType = "Bearer"
	}
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		out.Scopes = strings.Fields(s)
	}
	return out, nil
}

func validate(req Request) error {
	u, err := url.Parse(req.TokenURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return &Error{Kind: KindConfig, Description: fmt.Sprintf("token URL %q is not an absolute http(s) URL", RedactedURL(req.TokenURL))}
	}
	if u.User != nil {
		return &Error{Kind: KindConfig, Description: "token URL must not contain user information"}
	}
	switch req.AuthMethod {
	case "", AuthMethodAuto, AuthMethodBasic, AuthMethodPost:
	default:
		return &Error{Kind: KindConfig, Description: fmt.Sprintf("unknown auth method %q", req.AuthMethod)}
	}
	if req.ClientID == "" {
		return &Error{Kind: KindConfig, Description: "empty client id"}
	}
	return nil
}

func authStyle(m AuthMethod) oauth2.AuthStyle {
	switch m {
	case AuthMethodBasic:
		return oauth2.AuthStyleInHeader
	case AuthMethodPost:
		return oauth2.AuthStyleInParams
	default:
		return oauth2.AuthStyleAutoDetect
	}
}

// expiresIn reads the raw expires_in value: a JSON number, or a numeric
// string as some endpoints send. Non-positive or unreadable values count as
// absent.
func expiresIn(v any) time.Duration {
	var secs float64
	switch x := v.(type) {
	case float64:
		secs = x
	case json.Number:
		f, err := x.Float64()
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
	if secs <= 0 || secs > 10*365*24*3600 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// classify turns an x/oauth2 or transport error into *Error.
func (c *Client) classify(ctx context.Context, err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return c.fromResponse(re)
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTransient, Description: "no answer before the timeout", Err: sanitize(err)}
	}
	var ne net.Error
	if errors.As(err, &ne) || isNetworkError(err) {
		return &Error{Kind: KindTransient, Description: "cannot reach the token endpoint", Err: sanitize(err)}
	}
	// x/oauth2 reports bodies it cannot parse and answers without
	// access_token as plain errors.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server response missing access_token"):
		return &Error{Kind: KindInvalidResponse, StatusCode: http.StatusOK, Description: "2xx response without access_token"}
	case strings.Contains(msg, "cannot parse json"), strings.Contains(msg, "cannot parse response"):
		return &Error{Kind: KindInvalidResponse, StatusCode: http.StatusOK, Description: "2xx response that is not a token response"}
	}
	return &Error{Kind: KindTransient, Description: "token request failed", Err: sanitize(err)}
}

func isNetworkError(err error) bool {
	var oe *net.OpError
	var ue *url.Error
	return errors.As(err, &oe) || errors.As(err, &ue)
}

// sanitize keeps an underlying error's text but drops any URL query string,
// the only place a request detail could appear in transport errors.
func sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactedURL(ue.URL), Err: ue.Err}
	}
	return err
}

func (c *Client) fromResponse(re *oauth2.RetrieveError) *Error {
	e := &Error{Kind: KindRejected, Code: clean(re.ErrorCode, 64), Description: clean(re.ErrorDescription, 256)}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
		e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), c.now())
		if e.Code == "" {
			ct := re.Response.Header.Get("Content-Type")
			if i := strings.IndexByte(ct, ';'); i >= 0 {
				ct = ct[:i]
			}
			e.Description = fmt.Sprintf("%s body (%d bytes)", orUnknown(ct), len(re.Body))
		}
		if loc := re.Response.Header.Get("Location"); e.StatusCode >= 300 && e.StatusCode < 400 {
			e.Description = fmt.Sprintf("token endpoint redirected to %s; set the token URL to the final URL (redirects are not followed)", RedactedURL(loc))
			return e
		}
	}
	switch {
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusRequestTimeout, e.StatusCode >= 500:
		e.Kind = KindTransient
	case e.StatusCode >= 200 && e.StatusCode < 300:
		e.Kind = KindInvalidResponse
	}
	return e
}

func orUnknown(s string) string {
	if s == "" {
		return "untyped"
	}
	return s
}

// clean keeps printable ASCII of s, at most n bytes.
func clean(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
		if b.Len() >= n {
			break
		}
	}
	return b.String()
}

// retryAfter parses a Retry-After value: delta-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// RedactedURL drops user information, query and fragment from a URL so it
// can appear in messages.
func RedactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// NewHTTPClient returns the HTTP client token requests use by default: TLS
// 1.2 at least with verification always on, the proxy from the standard
// environment variables, bounded connection set-up, and no redirects (a
// token request is never replayed to another URL). x/oauth2 caps token
// response bodies at 1 MiB.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
