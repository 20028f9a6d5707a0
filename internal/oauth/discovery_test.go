package oauth

import (
	"context"
	"testing"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// Requests for one issuer with other CAs or headers get their own
// answers: the cache is keyed by everything that changes the answer.
func TestDiscoveryCacheIsKeyedByEverythingThatChangesTheAnswer(t *testing.T) {
	ca, _, _ := newPKI(t)
	otherCA, _, _ := newPKI(t)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}, Discovery: "openid", Path: "/oauth2/token"})
	issuer := startTLS(t, srv, ca)
	d := &Discovery{Client: testClient()}
	get := func(r DiscoveryRequest) error {
		r.IssuerURL = issuer
		_, err := d.TokenEndpoint(context.Background(), r)
		return err
	}
	trusted := DiscoveryRequest{TLS: &TLSConfig{CAPEM: ca.CertPEM}}
	if err := get(trusted); err != nil {
		t.Fatal(err)
	}
	n := srv.DiscoveryRequests()
	// A tenant that does not trust the server's CA gets no cached answer.
	if err := get(DiscoveryRequest{TLS: &TLSConfig{CAPEM: otherCA.CertPEM}}); err == nil {
		t.Fatal("a request with another CA bundle got the cached document")
	}
	if err := get(DiscoveryRequest{}); err == nil {
		t.Fatal("a request with the system roots got the cached document")
	}
	// Other headers are fetched afresh, in any letter case.
	withHeader := DiscoveryRequest{TLS: trusted.TLS, Headers: map[string]string{"X-Tenant": "a"}}
	if err := get(withHeader); err != nil {
		t.Fatal(err)
	}
	if srv.DiscoveryRequests() == n {
		t.Fatal("a request with other headers got the cached document")
	}
	n = srv.DiscoveryRequests()
	for _, r := range []DiscoveryRequest{trusted, withHeader, {TLS: &TLSConfig{CAPEM: ca.CertPEM}, Headers: map[string]string{"x-tenant": "a"}}} {
		if err := get(r); err != nil {
			t.Fatal(err)
		}
	}
	if srv.DiscoveryRequests() != n {
		t.Fatal("the same request was not served from the cache")
	}
	d.Forget(issuer)
	if err := get(trusted); err != nil || srv.DiscoveryRequests() == n {
		t.Fatalf("Forget did not drop the cached documents (%v)", err)
	}
	// Keys differ for headers and TLS material, not for their order.
	a := DiscoveryRequest{IssuerURL: issuer, Headers: map[string]string{"A": "1", "B": "2"}}
	b := DiscoveryRequest{IssuerURL: issuer, Headers: map[string]string{"B": "2", "A": "1"}}
	c := DiscoveryRequest{IssuerURL: issuer, Headers: map[string]string{"A": "12"}}
	if a.cacheKey() != b.cacheKey() || a.cacheKey() == c.cacheKey() {
		t.Fatal("cache keys do not follow the headers")
	}
}
