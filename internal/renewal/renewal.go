// Package renewal decides whether a new token is due, and says why. It is
// pure: given the token the target Secret holds, whether it was obtained
// with the current inputs, the backoff in force and the clock, a chain of
// small policies returns the decision and its reason, in the manner of
// cert-manager's trigger policies. It knows nothing of Kubernetes.
package renewal

import (
	"fmt"
	"time"
)

// Reason says why a token is, or is not, requested.
type Reason string

// Reasons, in the order the policies are asked.
const (
	// Forced: a new value of the refresh-requested-at annotation. It
	// forces one attempt, even while a backoff holds retries.
	Forced Reason = "Forced"
	// NoToken: the target Secret holds no token tokensync can vouch for.
	NoToken Reason = "NoToken"
	// InputsChanged: the held token was obtained with other inputs
	// (provider spec, credentials, TLS material).
	InputsChanged Reason = "InputsChanged"
	// Expired: the held token has expired.
	Expired Reason = "Expired"
	// Due: the held token's renewal time has come.
	Due Reason = "Due"
	// Valid: the held token is valid and not due; no request.
	Valid Reason = "Valid"
	// BackingOff: a token is due but a failure's backoff holds retries with
	// these inputs; no request before it passes.
	BackingOff Reason = "BackingOff"
)

// Input is everything a decision depends on.
type Input struct {
	Now time.Time
	// Held is the token the target Secret holds, when tokensync wrote it
	// and its record is intact; nil otherwise.
	Held *Token
	// Current is set when Held was obtained with the current inputs.
	Current bool
	// Forced is set when a refresh was asked for and not yet attempted.
	Forced bool
	// HoldUntil is when the backoff of the last failure with the current
	// inputs ends; zero when none holds.
	HoldUntil time.Time
	Schedule  Schedule
}

// Decision is the outcome of Decide.
type Decision struct {
	// Request is set when a token is to be requested now.
	Request bool
	Reason  Reason
	// Message says why, for logs and status.
	Message string
	// ExpiresAt and RenewAt are the held token's expiry and renewal time
	// under the current schedule (zero without a held token).
	ExpiresAt, RenewAt time.Time
	// Next is when to look again when no token is requested.
	Next time.Time
}

// Policy returns a decision when it applies.
type Policy func(Input) (Decision, bool)

// Policies is the chain Decide asks, in order; the first that applies
// decides that a token is due, and why.
var Policies = []Policy{forced, noToken, inputsChanged, expired, due}

// Decide asks the policies in order. When none applies the held token is
// valid and not due: no request, look again at its renewal time. A request
// the policies want is held back while a failure's backoff holds, unless it
// was forced.
func Decide(in Input) Decision {
	d := decide(in)
	if d.Request && d.Reason != Forced {
		if b, ok := backingOff(in); ok {
			b.Message = d.Message + "; " + b.Message
			d = b
		}
	}
	if in.Held != nil {
		d.ExpiresAt = in.Schedule.Expiry(*in.Held)
		d.RenewAt = in.Schedule.RenewAt(*in.Held)
	}
	return d
}

func decide(in Input) Decision {
	for _, p := range Policies {
		if d, ok := p(in); ok {
			return d
		}
	}
	renewAt := in.Schedule.RenewAt(*in.Held)
	return Decision{Reason: Valid, Next: renewAt,
		Message: fmt.Sprintf("the token is valid until %s; renewal at %s", stamp(in.Schedule.Expiry(*in.Held)), stamp(renewAt))}
}

func request(r Reason, format string, args ...any) (Decision, bool) {
	return Decision{Request: true, Reason: r, Message: fmt.Sprintf(format, args...)}, true
}

func forced(in Input) (Decision, bool) {
	if !in.Forced {
		return Decision{}, false
	}
	return request(Forced, "a refresh was requested")
}

func backingOff(in Input) (Decision, bool) {
	if in.HoldUntil.IsZero() || !in.Now.Before(in.HoldUntil) {
		return Decision{}, false
	}
	return Decision{Reason: BackingOff, Next: in.HoldUntil,
		Message: fmt.Sprintf("the last attempt failed; the next one is held back until %s", stamp(in.HoldUntil))}, true
}

func noToken(in Input) (Decision, bool) {
	if in.Held != nil {
		return Decision{}, false
	}
	return request(NoToken, "the Secret holds no token tokensync wrote")
}

func inputsChanged(in Input) (Decision, bool) {
	if in.Current {
		return Decision{}, false
	}
	return request(InputsChanged, "the token was obtained with other inputs (provider spec, credentials or TLS material)")
}

func expired(in Input) (Decision, bool) {
	exp := in.Schedule.Expiry(*in.Held)
	if in.Now.Before(exp) {
		return Decision{}, false
	}
	return request(Expired, "the token expired at %s", stamp(exp))
}

func due(in Input) (Decision, bool) {
	at := in.Schedule.RenewAt(*in.Held)
	if in.Now.Before(at) {
		return Decision{}, false
	}
	return request(Due, "the renewal time %s has come", stamp(at))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
