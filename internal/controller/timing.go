package controller

import (
	"math/rand/v2"
	"time"
)

// Renewal and retry timing. All functions are pure so they can be tested
// without a clock.

const (
	// maxJitter caps the random amount subtracted from a renewal time, so
	// that tokens issued together do not all renew in the same instant.
	maxJitter = 2 * time.Minute
	// jitterFraction of the renewal window is the most jitter applied.
	jitterFraction = 0.05

	// Transient failures back off exponentially from baseBackoff to maxBackoff.
	baseBackoff = 2 * time.Second
	maxBackoff  = 5 * time.Minute
	// Stalled failures (a human must act) are retried slowly in case the
	// fix happens outside the cluster (e.g. the client is re-enabled).
	stalledBaseBackoff = time.Minute
	stalledMaxBackoff  = time.Hour
)

// renewalTime returns when a token issued at issuedAt and expiring at
// expiresAt should be renewed: renewBefore before expiry when that leaves a
// positive window, else after 2/3 of the lifetime (as cert-manager does).
// A random jitter of up to 5% of the window (at most maxJitter) is
// subtracted, and the result is never earlier than issuedAt+minInterval so
// that a tiny lifetime cannot make the controller hammer the endpoint.
func renewalTime(issuedAt, expiresAt time.Time, renewBefore, minInterval time.Duration, jitter func(time.Duration) time.Duration) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	window := lifetime * 2 / 3
	if renewBefore > 0 && renewBefore < lifetime {
		window = lifetime - renewBefore
	}
	if jitter != nil {
		j := min(time.Duration(float64(window)*jitterFraction), maxJitter)
		if j > 0 {
			window -= jitter(j)
		}
	}
	if window < minInterval {
		window = minInterval
	}
	return issuedAt.Add(window)
}

// RandomJitter returns a uniformly random duration in [0, max).
func RandomJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// backoff returns the delay before retry number attempt (1-based) after a
// failure: exponential from base, capped at limit, never shorter than the
// server's Retry-After.
func backoff(attempt int32, base, limit, retryAfter time.Duration) time.Duration {
	d := base
	for i := int32(1); i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return max(d, retryAfter)
}
