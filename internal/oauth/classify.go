package oauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// classify turns what an exchange returned (see exchange.send) into an
// *Error whose Kind tells the caller what to do. It matches types, never
// the text of an error.
func (c *Client) classify(ctx context.Context, err error, secrets []string, timeout time.Duration) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return c.fromResponse(re, secrets)
	}
	var br *badResponse
	if errors.As(err, &br) {
		return &Error{Kind: KindInvalidResponse, StatusCode: br.status, Description: br.description}
	}
	var rd *readError
	if errors.As(err, &rd) && ctx.Err() == nil {
		return &Error{Kind: KindTransient, StatusCode: rd.status, Description: "reading the response failed", Err: sanitize(rd.err)}
	}
	status := 0
	if rd != nil {
		status = rd.status
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &Error{Kind: KindTransient, StatusCode: status, Description: fmt.Sprintf("no complete response within %s", timeout), Err: sanitize(err)}
		}
		return &Error{Kind: KindTransient, StatusCode: status, Description: "request canceled", Err: sanitize(err)}
	}
	if fe, ok := asForbidden(err); ok {
		return &Error{Kind: KindConfig, Forbidden: true, Description: fe.Error()}
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return &Error{Kind: KindTransient, Description: "cannot verify the token endpoint's TLS certificate", Err: sanitize(err)}
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return &Error{Kind: KindTransient, Description: "cannot reach the token endpoint", Err: sanitize(err)}
	}
	return &Error{Kind: KindTransient, Description: "token request failed", Err: sanitize(err)}
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
// code (RFC 6749 section 5.2, RFC 8693 section 2.2.2). The body itself
// never reaches the message.
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
		// A JSON error under a form content type.
		if code, desc, ok := jsonErrorFields(re.Body); ok {
			e.Code, e.Description = serverText(code, 64, secrets), serverText(desc, maxDescription, secrets)
		} else {
			e.Description = shape(re.Response.Header.Get("Content-Type"), re.Body, int64(len(re.Body)))
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

// refusedCredentials reports whether an Auto attempt with Basic credentials
// was refused in a way that trying body credentials might fix.
func refusedCredentials(e *Error) bool {
	if e.Kind != KindRejected {
		return false
	}
	return (e.StatusCode >= 400 && e.StatusCode < 500) || (e.StatusCode >= 200 && e.StatusCode < 300)
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
