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
	// KindTransient: timeouts, connection errors, 5xx, 429, 408. Retry with backoff.
	KindTransient ErrorKind = "Transient"
	// KindRejected: the endpoint refused the request (an RFC 6749 section 5.2
	// error such as invalid_client or invalid_scope, another 4xx, or a
	// redirect). Retrying the same request will not help.
	KindRejected ErrorKind = "Rejected"
	// KindInvalidResponse: a 2xx answer that is not a usable token response.
	KindInvalidResponse ErrorKind = "InvalidResponse"
	// KindConfig: the request cannot be sent as configured.
	KindConfig ErrorKind = "Config"
)

// Error is a failed token request. Its text quotes the endpoint's error code
// and description; it never contains the request body, a client secret or
// a token.
type Error struct {
	Kind ErrorKind
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Code is the RFC 6749 error code, e.g. invalid_client.
	Code string
	// Description is the endpoint's error_description (printable ASCII,
	// truncated), or a description of what went wrong.
	Description string
	// RetryAfter is the delay the endpoint asked for, 0 when none.
	RetryAfter time.Duration
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "token endpoint returned %d", e.StatusCode)
	} else {
		b.WriteString("token request failed")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
