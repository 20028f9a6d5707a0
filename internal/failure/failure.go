// Package failure holds the typed errors every step of a reconcile returns.
// Each carries the condition reason status reports, and says whether a human
// must act (Stalled) or a retry with backoff may help (Transient). Errors of
// any other type are API-server errors, retried by controller-runtime with
// status left as it was.
package failure

import (
	"errors"
	"fmt"
	"time"
)

// Stalled is a failure that needs a human: retrying will not help until the
// spec, the credentials or the provider side changes.
type Stalled struct {
	Reason string
	Msg    string
}

func (e *Stalled) Error() string { return e.Msg }

// Transient is a failure worth retrying with backoff. RetryAfter is the
// server's requested delay (Retry-After), if any.
type Transient struct {
	Reason     string
	Msg        string
	RetryAfter time.Duration
}

func (e *Transient) Error() string { return e.Msg }

// Throttled is not a failure: the manager itself held the request back (a
// per-host rate or concurrency limit). The object is looked at again after
// RetryAfter; nothing is counted or reported.
type Throttled struct {
	Msg        string
	RetryAfter time.Duration
}

func (e *Throttled) Error() string { return e.Msg }

// NewStalled returns a Stalled error with a formatted message.
func NewStalled(reason, format string, args ...any) error {
	return &Stalled{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// NewTransient returns a Transient error with a formatted message.
func NewTransient(reason string, retryAfter time.Duration, format string, args ...any) error {
	return &Transient{Reason: reason, RetryAfter: retryAfter, Msg: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the condition reason err carries and whether it is
// Stalled. ok is false for errors that carry no reason (API-server errors
// and Throttled).
func ReasonOf(err error) (reason string, stalled, ok bool) {
	var s *Stalled
	if errors.As(err, &s) {
		return s.Reason, true, true
	}
	var t *Transient
	if errors.As(err, &t) {
		return t.Reason, false, true
	}
	return "", false, false
}

// RetryAfterOf returns the delay a Transient or Throttled error asks for.
func RetryAfterOf(err error) time.Duration {
	var t *Transient
	if errors.As(err, &t) {
		return t.RetryAfter
	}
	var th *Throttled
	if errors.As(err, &th) {
		return th.RetryAfter
	}
	return 0
}

// IsThrottled reports whether err is a Throttled hold-back.
func IsThrottled(err error) bool {
	var th *Throttled
	return errors.As(err, &th)
}
