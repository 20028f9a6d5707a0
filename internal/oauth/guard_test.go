package oauth

import (
	"context"
	"net/netip"
	"testing"
	"time"
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
