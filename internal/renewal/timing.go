package renewal

import (
	"encoding/binary"
	"hash/fnv"
	"time"
)

// Renewal and retry arithmetic. Everything here is pure: no clock, no
// randomness (the jitter is derived from a seed, so that a renewal time
// recomputed after a restart or a spec edit is the same as before).

const (
	// MaxJitter caps the amount subtracted from a renewal time, so that
	// tokens issued together do not all renew in the same instant.
	MaxJitter = 2 * time.Minute
	// jitterFraction of the renewal window is the most jitter applied.
	jitterFraction = 0.05

	// Transient failures back off exponentially from BaseBackoff to MaxBackoff.
	BaseBackoff = 2 * time.Second
	MaxBackoff  = 5 * time.Minute
	// Stalled failures (a human must act) are retried slowly, in case the
	// fix happens outside the cluster (e.g. the client is re-enabled).
	StalledBaseBackoff = time.Minute
	StalledMaxBackoff  = time.Hour
)

// Schedule is what the spec and the manager say about timing.
type Schedule struct {
	// RenewBefore renews that long before expiry when it is shorter than
	// the lifetime; zero means after 2/3 of the lifetime.
	RenewBefore time.Duration
	// DefaultLifetime is assumed when the endpoint did not say how long a
	// token lives.
	DefaultLifetime time.Duration
	// MinInterval is the shortest time between two token requests.
	MinInterval time.Duration
	// Jitter spreads renewal times (see RenewAt); off, renewal times are
	// exact, as tests want.
	Jitter bool
}

// Token is what renewal needs to know of a token.
type Token struct {
	IssuedAt time.Time
	// ExpiresAt is when it expires, as the endpoint said (expires_in or
	// the JWT's exp). Ignored when LifetimeDefaulted is set.
	ExpiresAt time.Time
	// LifetimeDefaulted is set when the endpoint gave no lifetime: the
	// token is taken to live Schedule.DefaultLifetime, whatever that is now.
	LifetimeDefaulted bool
	// NotAfter, when set, is a hard limit the token must be renewed before
	// even if it lives longer (the expiry of what it was obtained with, e.g.
	// the subject of a token exchange).
	NotAfter time.Time
	// Seed makes the jitter of this token's renewal time (see Seed).
	Seed uint64
}

// Expiry is when t expires under s.
func (s Schedule) Expiry(t Token) time.Time {
	exp := t.ExpiresAt
	if t.LifetimeDefaulted {
		exp = t.IssuedAt.Add(s.DefaultLifetime)
	}
	if !t.NotAfter.IsZero() && t.NotAfter.Before(exp) {
		exp = t.NotAfter
	}
	return exp
}

// RenewAt is when t should be renewed under s: RenewBefore before expiry
// when that leaves a positive window, else after 2/3 of the lifetime (as
// cert-manager does), less a jitter of up to 5% of the window (at most
// MaxJitter), and never earlier than IssuedAt+MinInterval so that a tiny
// lifetime cannot make the controller hammer the endpoint.
func (s Schedule) RenewAt(t Token) time.Time {
	lifetime := s.Expiry(t).Sub(t.IssuedAt) // saturates, never overflows
	// lifetime/3*2, not lifetime*2/3: the product overflows for lifetimes
	// over 146 years.
	window := lifetime / 3 * 2
	if s.RenewBefore > 0 && s.RenewBefore < lifetime {
		window = lifetime - s.RenewBefore
	}
	if j := min(time.Duration(float64(window)*jitterFraction), MaxJitter); s.Jitter && j > 0 {
		window -= time.Duration(float64(j) * fraction(t.Seed))
	}
	window = max(window, s.MinInterval)
	return t.IssuedAt.Add(window).Truncate(time.Second)
}

// Seed derives a jitter seed from what identifies a token: the object and
// the issue time.
func Seed(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum64()
}

// fraction maps a seed to [0, 1), through splitmix64's finalizer so that
// seeds differing in a few bits land far apart.
func fraction(seed uint64) float64 {
	z := seed + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// Backoff returns the delay before retry number attempt (1-based) after a
// failure: exponential from base, capped at limit, never shorter than the
// server's Retry-After.
func Backoff(attempt int32, base, limit, retryAfter time.Duration) time.Duration {
	d := base
	for i := int32(1); i < attempt && d < limit; i++ {
		d *= 2
	}
	return max(min(d, limit), retryAfter)
}

// RetryDelay is how long to wait after failed attempt number attempt: the
// stalled or transient backoff; for a transient failure while a token valid
// until validUntil is held, at the latest halfway to its expiry (but not
// sooner than minInterval), so that renewal is retried before it expires
// however long the backoff has grown. Never shorter than retryAfter.
func RetryDelay(attempt int32, stalled bool, now, validUntil time.Time, retryAfter, minInterval time.Duration) time.Duration {
	if stalled {
		return Backoff(attempt, StalledBaseBackoff, StalledMaxBackoff, 0)
	}
	d := Backoff(attempt, BaseBackoff, MaxBackoff, 0)
	if now.Before(validUntil) {
		if left := validUntil.Sub(now); d > left/2 {
			d = max(left/2, minInterval)
		}
	}
	return max(d, retryAfter)
}
