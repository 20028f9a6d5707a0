package oauth

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottleRetryAfter is the RetryAfter of a KindThrottled error for a host
// (or a tenant's share of it) that has no request slot free.
const ThrottleRetryAfter = time.Second

// HostLimiter bounds what this manager sends to each host: at most Rate
// requests per second (after a burst of Burst), and at most MaxInFlight
// requests under way at once, of which one tenant (Request.Tenant) holds
// at most MaxInFlightPerTenant. It never waits: a request it cannot admit
// at once fails with a KindThrottled *Error, unsent, whose RetryAfter says
// when to try again, so a slow or silent endpoint cannot hold the caller's
// workers. A call takes one slot of each (an Auto fallback's second
// request included). Zero values mean no limit (MaxInFlightPerTenant: see
// there).
// A HostLimiter is safe for concurrent use; its fields must not change
// after first use.
type HostLimiter struct {
	Rate  rate.Limit
	Burst int
	// MaxInFlight is the most token and discovery calls under way to one
	// host; 0 means no limit.
	MaxInFlight int
	// MaxInFlightPerTenant is the most of those one tenant may hold; 0
	// means half of MaxInFlight, rounded up, so that no tenant takes every
	// slot of a host (with MaxInFlight 1, that one slot). Requests without
	// a Tenant count only against MaxInFlight.
	MaxInFlightPerTenant int

	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	limiter  *rate.Limiter
	inFlight int
	tenants  map[string]int
	// booked holds, per caller, the time of a rate slot reserved for it
	// when it was throttled: coming back at (or after) that time it uses
	// the slot instead of taking another, so throttled callers are spread
	// over the future instead of all coming back at once.
	booked   map[string]time.Time
	prunedAt time.Time
}

// RateLimitedError is the name ThrottledError had when the limiter waited.
//
// Deprecated: a HostLimiter no longer returns it; see KindThrottled.
type RateLimitedError = ThrottledError

// ThrottledError says why a HostLimiter did not admit a request.
type ThrottledError struct {
	Host string // host[:port] of the URL: no user information, path or query
	// InFlight is set when the limit of requests in flight was reached
	// (PerTenant: the tenant's share), else the rate limit was.
	InFlight, PerTenant bool
	Delay               time.Duration
}

func (e *ThrottledError) Error() string {
	switch {
	case e.PerTenant:
		return fmt.Sprintf("this tenant's share of requests in flight to %s is in use (--max-concurrent-requests-per-host); try again in %s", e.Host, e.Delay)
	case e.InFlight:
		return fmt.Sprintf("the manager's limit of requests in flight to %s is reached (--max-concurrent-requests-per-host); try again in %s", e.Host, e.Delay)
	}
	return fmt.Sprintf("the manager's limit of token requests to %s is reached (--max-token-requests-per-host); next slot in %s", e.Host, e.Delay.Round(time.Millisecond))
}

func (e *ThrottledError) oauthError() *Error {
	return &Error{Kind: KindThrottled, Description: e.Error(), RetryAfter: e.Delay}
}

// perTenant is the in-flight share of one tenant, 0 for no limit.
func (l *HostLimiter) perTenant() int {
	switch {
	case l.MaxInFlightPerTenant > 0:
		return l.MaxInFlightPerTenant
	case l.MaxInFlight > 0:
		return (l.MaxInFlight + 1) / 2
	}
	return 0
}

// acquire admits one call to host for tenant and caller (the identity of
// the request, for booked rate slots) at now, or says why not. release must
// be called once the call is over.
func (l *HostLimiter) acquire(host, tenant, caller string, now time.Time) (release func(), _ *ThrottledError) {
	if l == nil || (l.Rate <= 0 && l.MaxInFlight <= 0 && l.MaxInFlightPerTenant <= 0) {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hosts == nil {
		l.hosts = map[string]*hostState{}
	}
	h, ok := l.hosts[host]
	if !ok {
		h = &hostState{tenants: map[string]int{}, booked: map[string]time.Time{}}
		if l.Rate > 0 {
			h.limiter = rate.NewLimiter(l.Rate, max(l.Burst, 1))
		}
		l.hosts[host] = h
	}
	if l.MaxInFlight > 0 && h.inFlight >= l.MaxInFlight {
		return nil, &ThrottledError{Host: host, InFlight: true, Delay: ThrottleRetryAfter}
	}
	if pt := l.perTenant(); pt > 0 && tenant != "" && h.tenants[tenant] >= pt {
		return nil, &ThrottledError{Host: host, InFlight: true, PerTenant: true, Delay: ThrottleRetryAfter}
	}
	if h.limiter != nil {
		if d := h.takeSlot(caller, now); d > 0 {
			return nil, &ThrottledError{Host: host, Delay: d}
		}
	}
	h.inFlight++
	h.tenants[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			h.inFlight--
			if h.tenants[tenant]--; h.tenants[tenant] <= 0 {
				delete(h.tenants, tenant)
			}
		})
	}, nil
}

// bookingGrace is how long a booked slot is kept for its caller after its
// time; later, the slot is gone and the caller books again.
const bookingGrace = time.Minute

// takeSlot takes a rate slot for caller at now and returns 0, or returns
// how long until the slot booked for it.
func (h *hostState) takeSlot(caller string, now time.Time) time.Duration {
	if now.Sub(h.prunedAt) > bookingGrace/4 {
		h.prunedAt = now
		for c, at := range h.booked {
			if now.Sub(at) > bookingGrace {
				delete(h.booked, c)
			}
		}
	}
	if at, ok := h.booked[caller]; ok {
		if d := at.Sub(now); d > 0 {
			return d
		}
		delete(h.booked, caller)
		return 0
	}
	r := h.limiter.ReserveN(now, 1)
	if !r.OK() {
		return ThrottleRetryAfter
	}
	d := r.DelayFrom(now)
	if d > 0 {
		h.booked[caller] = now.Add(d)
	}
	return d
}
