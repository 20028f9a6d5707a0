package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// metadataAddresses are cloud instance-metadata endpoints outside the
// link-local ranges (AWS's IPv6 IMDS).
var metadataAddresses = []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}

// ForbiddenAddressError is returned when a connection would reach a
// link-local or instance-metadata address and the client does not allow it.
type ForbiddenAddressError struct {
	Addr netip.Addr
}

func (e *ForbiddenAddressError) Error() string {
	return fmt.Sprintf("address %s is link-local or a cloud metadata endpoint; tokensync does not connect there unless the manager runs with --allow-link-local-token-urls", e.Addr)
}

// IsForbiddenAddress reports whether addr is link-local (169.254.0.0/16,
// fe80::/10) or a known metadata endpoint.
func IsForbiddenAddress(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() {
		return true
	}
	for _, m := range metadataAddresses {
		if addr == m {
			return true
		}
	}
	return false
}

// guardControl is a net.Dialer Control function that refuses forbidden
// addresses after name resolution, so a DNS name cannot smuggle a
// metadata address past URL checks.
func guardControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil // not an IP: nothing to check
	}
	if IsForbiddenAddress(addr) {
		return &ForbiddenAddressError{Addr: addr.Unmap()}
	}
	return nil
}

// HostAllowlist holds host patterns a token or issuer URL must match: an
// exact host name ("auth.example.com"), a wildcard for subdomains
// ("*.example.com", which does not match example.com itself), an IP
// address, or a CIDR prefix ("10.0.0.0/8", matching IP-literal hosts). An
// empty list allows every host.
type HostAllowlist struct {
	names    []string
	suffixes []string
	prefixes []netip.Prefix
}

// ParseHostAllowlist reads comma-separated patterns.
func ParseHostAllowlist(s string) (*HostAllowlist, error) {
	a := &HostAllowlist{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "":
		case strings.HasPrefix(p, "*."):
			if len(p) < 3 || strings.ContainsAny(p[2:], "*/:") {
				return nil, fmt.Errorf("bad host pattern %q", p)
			}
			a.suffixes = append(a.suffixes, p[1:])
		case strings.Contains(p, "/"):
			prefix, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("bad CIDR pattern %q: %w", p, err)
			}
			a.prefixes = append(a.prefixes, prefix.Masked())
		default:
			if strings.ContainsAny(p, "*/") {
				return nil, fmt.Errorf("bad host pattern %q: only a leading *. wildcard is supported", p)
			}
			a.names = append(a.names, strings.Trim(p, "[]"))
		}
	}
	return a, nil
}

// Empty reports whether the list allows every host.
func (a *HostAllowlist) Empty() bool {
	return a == nil || (len(a.names) == 0 && len(a.suffixes) == 0 && len(a.prefixes) == 0)
}

// Allows reports whether host (a URL's Hostname(): no port, no brackets)
// matches a pattern.
func (a *HostAllowlist) Allows(host string) bool {
	if a.Empty() {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range a.names {
		if host == n {
			return true
		}
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		for _, p := range a.prefixes {
			if p.Contains(addr.Unmap()) {
				return true
			}
		}
	}
	return false
}

// String lists the patterns, for messages.
func (a *HostAllowlist) String() string {
	if a.Empty() {
		return "(any host)"
	}
	var out []string
	out = append(out, a.names...)
	for _, s := range a.suffixes {
		out = append(out, "*"+s)
	}
	for _, p := range a.prefixes {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

func asForbidden(err error) (*ForbiddenAddressError, bool) {
	var fe *ForbiddenAddressError
	ok := errors.As(err, &fe)
	return fe, ok
}

// RateLimitedError is returned, without sending anything, when a request
// would exceed the per-host request rate before its deadline.
type RateLimitedError struct {
	Host  string
	Delay time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("the manager's limit of token requests to %s is reached (--max-token-requests-per-host); next slot in %s", e.Host, e.Delay.Round(time.Millisecond))
}

// HostLimiter bounds the rate of requests to each host, so that however
// many objects need a token at once, an endpoint never sees more than Rate
// requests per second (after a burst of Burst). The zero Rate means no
// limit.
type HostLimiter struct {
	Rate  rate.Limit
	Burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// wait takes a slot for host, sleeping for it when it comes before ctx's
// deadline, else returning a *RateLimitedError at once.
func (l *HostLimiter) wait(ctx context.Context, host string) error {
	if l == nil || l.Rate <= 0 {
		return nil
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	lim, ok := l.m[host]
	if !ok {
		lim = rate.NewLimiter(l.Rate, max(l.Burst, 1))
		l.m[host] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+time.Second {
		r.Cancel()
		return &RateLimitedError{Host: host, Delay: d}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}
