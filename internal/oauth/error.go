package oauth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorKind classifies a failed token request by what the caller should do.
type ErrorKind string

const (
	// KindTransient: timeouts, connection errors, 5xx, 429, 408 (whatever
	// the body says), and the RFC 6749 codes temporarily_unavailable and
	// server_error. Retry with backoff, honouring Error.RetryAfter.
	KindTransient ErrorKind = "Transient"
	// KindRejected: the endpoint refused the request: an RFC 6749 section
	// 5.2 error such as invalid_client or invalid_scope, any other 4xx, or a
	// redirect. Retrying the same request will not help; a human must act.
	KindRejected ErrorKind = "Rejected"
	// KindInvalidResponse: a 2xx answer that is not a usable token response
	// (not parseable, or without access_token).
	KindInvalidResponse ErrorKind = "InvalidResponse"
	// KindConfig: the request cannot be sent as configured. Nothing was sent.
	KindConfig ErrorKind = "Config"
	// KindThrottled: this manager's own limits for the host (request rate,
	// requests in flight, per host or per tenant) would have made the
	// request wait, so nothing was sent and nothing waited. Try again after
	// Error.RetryAfter; it is no failure of the endpoint or the request.
	KindThrottled ErrorKind = "Throttled"
)

// maxDescription bounds Error.Description (in bytes).
const maxDescription = 256

// Error is a failed token request. Its text holds the endpoint's error code
// and description or a summary of what went wrong; it never contains the
// request body, the client secret, a token, or a response body.
type Error struct {
	Kind ErrorKind
	// StatusCode is the HTTP status of the (last) response, 0 when none
	// arrived.
	StatusCode int
	// Code is the RFC 6749 error code, e.g. invalid_client; empty if none.
	Code string
	// Description is the endpoint's error_description (control characters
	// stripped, truncated to 256 bytes) or, when the endpoint gave none, a
	// summary written by this package.
	Description string
	// RetryAfter is the delay the endpoint asked for in Retry-After
	// (delta-seconds or HTTP-date), 0 when absent, at most 24h; for
	// KindThrottled, when this manager's limits admit the request again.
	RetryAfter time.Duration
	// Forbidden is set when the request was refused before sending because
	// it would reach a link-local or metadata address, or a private or
	// special-purpose one with HTTPOptions.DenyPrivateNetworks.
	Forbidden bool
	// Challenge is the auth scheme of the WWW-Authenticate header of a 401
	// (e.g. "SCA"); only the scheme, never its parameters.
	Challenge string
	// InteractionRequired is set when the endpoint wants a person to act
	// (an interactive WWW-Authenticate challenge such as SCA, or the OpenID
	// Connect errors interaction_required, login_required,
	// consent_required): retrying will not help until someone does.
	InteractionRequired bool
	// Err is the underlying transport error, if any. Response errors carry
	// none (x/oauth2's RetrieveError would print the response body).
	Err error

	note   string   // appended to the message, e.g. the Auto fallback
	redact []string // strings scrubbed from the message (the client secret)
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "token endpoint returned %d", e.StatusCode)
	case e.Kind == KindThrottled:
		b.WriteString("token request not sent")
	default:
		b.WriteString("token request failed")
	}
	var detail strings.Builder
	if e.Code != "" {
		fmt.Fprintf(&detail, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&detail, ": %s", e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&detail, ": %v", e.Err)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&detail, " (retry after %s)", e.RetryAfter)
	}
	if e.note != "" {
		fmt.Fprintf(&detail, " (%s)", e.note)
	}
	b.WriteString(scrub(detail.String(), e.redact))
	return b.String()
}

// Unwrap returns the underlying transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as *Error when it is one or wraps one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
