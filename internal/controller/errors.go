package controller

import (
	"errors"
	"fmt"
	"time"
)

// stalledError is a failure that needs a human: retrying will not help until
// the spec, the credentials or the provider side changes. It carries the
// condition reason to report.
type stalledError struct {
	reason string
	msg    string
}

func (e *stalledError) Error() string { return e.msg }

func stalled(reason, format string, args ...any) error {
	return &stalledError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// transientError is a failure worth retrying with backoff. retryAfter is the
// server's requested delay (Retry-After), if any.
type transientError struct {
	reason     string
	msg        string
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.msg }

func transient(reason string, retryAfter time.Duration, format string, args ...any) error {
	return &transientError{reason: reason, retryAfter: retryAfter, msg: fmt.Sprintf(format, args...)}
}

// reasonOf returns the condition reason an error carries, and whether it is
// stalled (needs a human) rather than transient. Errors of other types are
// API-server errors: transient.
func reasonOf(err error) (reason string, isStalled bool) {
	var s *stalledError
	if errors.As(err, &s) {
		return s.reason, true
	}
	var t *transientError
	if errors.As(err, &t) {
		return t.reason, false
	}
	return "", false
}
