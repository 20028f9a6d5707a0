package oauth

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"code.dny.dev/ssrf"

	"github.com/tokensync/tokensync/test/tokenserver"
)

func TestLinkLocalAndMetadataAddressesAreRefused(t *testing.T) {
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/token",
		"https://169.254.170.2/token",
		"http://[fd00:ec2::254]/token",
		"http://[fe80::1]:8080/token",
		"http://[::ffff:169.254.169.254]/token",
	} {
		t.Run(u, func(t *testing.T) {
			e := mustFail(t, &Client{}, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, Timeout: 2 * time.Second})
			if !e.Forbidden || e.Kind != KindConfig {
				t.Fatalf("got %+v", e)
			}
		})
	}
	// The discovery request is guarded too.
	_, err := (&Discovery{}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: "http://169.254.169.254", Timeout: 2 * time.Second})
	if oe, ok := AsError(err); !ok || !oe.Forbidden {
		t.Fatalf("discovery: %v", err)
	}
	// With the option, the address is dialled (and, here, not reachable).
	c := &Client{HTTPClient: NewHTTPClientWithOptions(HTTPOptions{AllowLinkLocal: true})}
	_, err = c.Token(context.Background(), Request{TokenURL: "http://169.254.169.254/token", ClientID: testID, ClientSecret: testSecret, Timeout: 300 * time.Millisecond})
	if oe, ok := AsError(err); ok && oe.Forbidden {
		t.Fatal("refused although allowed")
	}
	// Ordinary addresses are not affected.
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "::1", "192.168.0.1", "8.8.8.8"} {
		if IsForbiddenAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s refused", a)
		}
	}
}

func TestHostAllowlist(t *testing.T) {
	a, err := ParseHostAllowlist(" auth.example.com, *.paysafe.com ,10.0.0.0/8,[::1]")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"auth.example.com":    true,
		"AUTH.example.com.":   true,
		"evil.example.com":    false,
		"api.paysafe.com":     true,
		"a.b.paysafe.com":     true,
		"paysafe.com":         false,
		"evilpaysafe.com":     false,
		"10.20.30.40":         true,
		"11.0.0.1":            false,
		"::1":                 true,
		"auth.example.com.io": false,
	} {
		if got := a.Allows(host); got != want {
			t.Errorf("Allows(%q) = %t, want %t", host, got, want)
		}
	}
	if empty, _ := ParseHostAllowlist(""); !empty.Empty() || !empty.Allows("anything") {
		t.Fatal("an empty allowlist must allow every host")
	}
	for _, bad := range []string{"a.*.com", "10.0.0.0/99", "*.", "ex*ample.com"} {
		if _, err := ParseHostAllowlist(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSpecialPurposeRanges(t *testing.T) {
	// The ranges issue 14 names, and others of the IANA registries.
	denied := map[string]string{
		"127.0.0.1":              "127.0.0.0/8",
		"127.255.255.254":        "127.0.0.0/8",
		"0.0.0.0":                "0.0.0.0/8",
		"0.1.2.3":                "0.0.0.0/8",
		"10.1.2.3":               "10.0.0.0/8",
		"172.16.0.1":             "172.16.0.0/12",
		"172.31.255.255":         "172.16.0.0/12",
		"192.168.1.1":            "192.168.0.0/16",
		"100.64.0.1":             "100.64.0.0/10",
		"100.127.255.255":        "100.64.0.0/10",
		"169.254.169.254":        "169.254.0.0/16",
		"192.0.0.8":              "192.0.0.0/24",
		"192.0.2.1":              "192.0.2.0/24",
		"198.18.0.1":             "198.18.0.0/15",
		"198.51.100.7":           "198.51.100.0/24",
		"203.0.113.9":            "203.0.113.0/24",
		"224.0.0.1":              "224.0.0.0/4",
		"240.0.0.1":              "240.0.0.0/4",
		"255.255.255.255":        "240.0.0.0/4",
		"::1":                    "::1/128",
		"::":                     "::/128",
		"fc00::1":                "fc00::/7",
		"fd12:3456::1":           "fc00::/7",
		"fd00:ec2::254":          "fc00::/7",
		"fe80::1":                "fe80::/10",
		"ff02::1":                "ff00::/8",
		"64:ff9b::a00:1":         "64:ff9b::/96 (NAT64)",
		"64:ff9b::808:808":       "64:ff9b::/96 (NAT64)",
		"64:ff9b:1::1":           "outside the IPv6 global unicast range 2000::/3",
		"100::1":                 "100::/64",
		"2001:db8::1":            "2001:db8::/32",
		"2001::1":                "2001::/23",
		"2002::1":                "2002::/16",
		"3fff::1":                "3fff::/20",
		"::ffff:10.0.0.1":        "10.0.0.0/8",
		"::ffff:127.0.0.1":       "127.0.0.0/8",
		"::ffff:169.254.169.254": "169.254.0.0/16",
	}
	for a, want := range denied {
		got, ok := SpecialPurposeRange(netip.MustParseAddr(a))
		if !ok || got != want {
			t.Errorf("SpecialPurposeRange(%s) = %q, %t; want %q", a, got, ok, want)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "172.32.0.1", "192.169.0.1", "2001:4860:4860::8888", "2606:4700::1111", "::ffff:8.8.8.8"} {
		if r, ok := SpecialPurposeRange(netip.MustParseAddr(a)); ok {
			t.Errorf("public %s is in %s", a, r)
		}
	}
	// Every range of the list in use is refused, at both ends.
	for _, p := range append(slices.Clone(ssrf.IPv4DeniedPrefixes), ssrf.IPv6DeniedPrefixes...) {
		for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
			if _, ok := SpecialPurposeRange(a); !ok {
				t.Errorf("%s of %s is not refused", a, p)
			}
		}
	}
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestDenyPrivateNetworks(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{})
	deny := &Client{HTTPClient: NewHTTPClientWithOptions(HTTPOptions{DenyPrivateNetworks: true})}
	// The token server is on 127.0.0.1: refused at dial time, unsent.
	e := mustFail(t, deny, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	if !e.Forbidden || e.Kind != KindConfig || !strings.Contains(e.Description, "127.0.0.0/8") || !strings.Contains(e.Description, "--deny-private-networks") {
		t.Fatalf("got %+v", e)
	}
	// A name is checked after resolution: localhost resolves to loopback
	// (DNS rebinding to a private address is refused the same way).
	pu, _ := url.Parse(u)
	e = mustFail(t, deny, Request{TokenURL: "http://localhost:" + pu.Port() + "/token", ClientID: testID, ClientSecret: testSecret})
	if !e.Forbidden || e.Kind != KindConfig {
		t.Fatalf("localhost: %+v", e)
	}
	_, err := (&Discovery{Client: deny}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: strings.TrimSuffix(u, "/token")})
	if oe, ok := AsError(err); !ok || !oe.Forbidden {
		t.Fatalf("discovery: %v", err)
	}
	if srv.Requests() != 0 || srv.DiscoveryRequests() != 0 {
		t.Fatalf("%d requests reached the server", srv.Requests())
	}
	// It wins over AllowLinkLocal; without it, loopback works.
	both := &Client{HTTPClient: NewHTTPClientWithOptions(HTTPOptions{DenyPrivateNetworks: true, AllowLinkLocal: true})}
	if e := mustFail(t, both, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret}); !e.Forbidden {
		t.Fatalf("with AllowLinkLocal: %+v", e)
	}
	mustToken(t, &Client{HTTPClient: NewHTTPClient()}, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	// The decision, without connecting.
	for a, want := range map[string]bool{"10.0.0.1": true, "8.8.8.8": false, "169.254.169.254": true, "::1": true} {
		if err := CheckAddress(netip.MustParseAddr(a), HTTPOptions{DenyPrivateNetworks: true}); (err != nil) != want {
			t.Errorf("CheckAddress(%s) = %v", a, err)
		}
	}
	// A metadata address refused by it names the flag that refused it.
	if err := CheckAddress(netip.MustParseAddr("169.254.169.254"), HTTPOptions{DenyPrivateNetworks: true}); err == nil || !strings.Contains(err.Error(), "169.254.0.0/16") || !strings.Contains(err.Error(), "--deny-private-networks") {
		t.Errorf("metadata address under DenyPrivateNetworks: %v", err)
	}
	if err := CheckAddress(netip.MustParseAddr("10.0.0.1"), HTTPOptions{}); err != nil {
		t.Errorf("private address refused by default: %v", err)
	}
	if err := CheckAddress(netip.MustParseAddr("169.254.169.254"), HTTPOptions{}); err == nil {
		t.Error("metadata address allowed by default")
	}
}
