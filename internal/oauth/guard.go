package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"code.dny.dev/ssrf"
)

// This file decides which addresses token and discovery requests may
// reach. By default link-local and cloud metadata addresses are refused;
// with HTTPOptions.DenyPrivateNetworks, every address of the IANA IPv4 and
// IPv6 special-purpose address registries is refused too (loopback,
// 0.0.0.0/8, RFC 1918, 100.64.0.0/10, fc00::/7, 64:ff9b::/96, ...), taken
// from code.dny.dev/ssrf, whose lists are generated from those registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry and
// .../iana-ipv6-special-registry): for IPv6, anything outside the global
// unicast range 2000::/3 and the special-purpose ranges inside it.

// metadataAddresses are cloud instance-metadata endpoints outside the
// link-local ranges (AWS's IPv6 IMDS).
var metadataAddresses = []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}

// ForbiddenAddressError is returned when a connection would reach an
// address the client does not allow: link-local or instance metadata, or,
// with HTTPOptions.DenyPrivateNetworks, a private or special-purpose one.
type ForbiddenAddressError struct {
	Addr netip.Addr
	// Range is the special-purpose range Addr is in, when it was refused
	// by DenyPrivateNetworks; empty for a link-local or metadata address.
	Range string
	// Host is the name that resolved to Addr, when the check resolved one
	// (a request through a proxy); empty otherwise.
	Host string
}

func (e *ForbiddenAddressError) Error() string {
	what := fmt.Sprintf("address %s", e.Addr)
	if e.Host != "" {
		what = fmt.Sprintf("host %s resolves to %s, which", e.Host, e.Addr)
	} else {
		what += ","
	}
	if e.Range != "" {
		return fmt.Sprintf("%s is in the private or special-purpose range %s; tokensync does not connect there while the manager runs with --deny-private-networks", what, e.Range)
	}
	return fmt.Sprintf("%s is link-local or a cloud metadata endpoint; tokensync does not connect there unless the manager runs with --allow-link-local-token-urls", what)
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

// SpecialPurposeRange returns the IANA special-purpose range addr is in
// (an IPv4-mapped address counts as its IPv4 address), and false for an
// ordinary public unicast address.
func SpecialPurposeRange(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return "invalid address", true
	}
	if addr.Is4() {
		for _, p := range ssrf.IPv4DeniedPrefixes {
			if p.Contains(addr) {
				return p.String(), true
			}
		}
		return "", false
	}
	if ssrf.IPv6NAT64Prefix.Contains(addr) {
		return ssrf.IPv6NAT64Prefix.String() + " (NAT64)", true
	}
	if !ssrf.IPv6GlobalUnicast.Contains(addr) {
		for _, p := range namedIPv6 {
			if p.Contains(addr) {
				return p.String(), true
			}
		}
		return "outside the IPv6 global unicast range " + ssrf.IPv6GlobalUnicast.String(), true
	}
	for _, p := range ssrf.IPv6DeniedPrefixes {
		if p.Contains(addr) {
			return p.String(), true
		}
	}
	return "", false
}

// namedIPv6 name the common ranges outside 2000::/3 in messages.
var namedIPv6 = []netip.Prefix{
	netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"), netip.MustParsePrefix("100::/64"),
}

// CheckAddress applies o's address policy to addr: nil when a connection
// may go there, else a *ForbiddenAddressError.
func CheckAddress(addr netip.Addr, o HTTPOptions) error {
	return o.guard().check(addr, "")
}

// addressGuard is the address policy of one HTTP client.
type addressGuard struct {
	allowLinkLocal bool
	denyPrivate    bool
}

func (g addressGuard) active() bool { return !g.allowLinkLocal || g.denyPrivate }

func (g addressGuard) check(addr netip.Addr, host string) error {
	addr = addr.Unmap()
	if g.denyPrivate {
		// Link-local and metadata addresses are special-purpose too; the
		// message then names the flag that refused them.
		if r, ok := SpecialPurposeRange(addr); ok {
			return &ForbiddenAddressError{Addr: addr, Range: r, Host: host}
		}
	}
	if !g.allowLinkLocal && IsForbiddenAddress(addr) {
		return &ForbiddenAddressError{Addr: addr, Host: host}
	}
	return nil
}

// control is a net.Dialer Control function: it runs after name
// resolution, on the address about to be dialled, so a DNS name cannot
// smuggle a forbidden address past URL checks (DNS rebinding included).
func (g addressGuard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil // not an IP: nothing to check
	}
	return g.check(addr, "")
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// checkHost resolves host (unless it is an IP literal) and checks every
// address. failClosed says what a failed resolution means: refusal, or
// nothing to check.
func (g addressGuard) checkHost(ctx context.Context, r Resolver, host string, failClosed bool) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		return g.check(addr, "")
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		if failClosed {
			return &UnresolvedHostError{Host: host}
		}
		return nil
	}
	for _, a := range addrs {
		if err := g.check(a, host); err != nil {
			return err
		}
	}
	return nil
}

// UnresolvedHostError is returned, with HTTPOptions.DenyPrivateNetworks,
// when the host of a request sent through a proxy cannot be resolved to
// check its addresses first.
type UnresolvedHostError struct{ Host string }

func (e *UnresolvedHostError) Error() string {
	return fmt.Sprintf("host %s does not resolve here, so its addresses cannot be checked before the request goes to the proxy (--deny-private-networks)", e.Host)
}

func asForbidden(err error) (error, bool) {
	var fe *ForbiddenAddressError
	if errors.As(err, &fe) {
		return fe, true
	}
	var ue *UnresolvedHostError
	if errors.As(err, &ue) {
		return ue, true
	}
	return nil, false
}
