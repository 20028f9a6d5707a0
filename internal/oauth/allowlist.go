package oauth

import (
	"fmt"
	"net/netip"
	"strings"
)

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
