package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// fakeResolver answers from a map and never sends a query.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// startProxy runs a forward proxy on loopback that never connects
// anywhere: it answers every proxied request itself, from a token server,
// and counts them.
func startProxy(t *testing.T) (proxyURL string, srv *tokenserver.Server, hits *atomic.Int32) {
	t.Helper()
	srv = tokenserver.New(tokenserver.Options{Clients: map[string]string{testID: testSecret}})
	hits = &atomic.Int32{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method == http.MethodConnect || !r.URL.IsAbs() {
			http.Error(w, "this test proxy only serves absolute-form http requests", http.StatusBadGateway)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, srv, hits
}

// With HTTP(S)_PROXY set the dial guard sees only the proxy's address, so
// the target of a proxied request is checked before it is sent.
func TestProxiedRequestsAreCheckedBeforeSending(t *testing.T) {
	proxyURL, srv, hits := startProxy(t)
	t.Setenv("HTTP_PROXY", proxyURL)
	t.Setenv("HTTPS_PROXY", proxyURL)
	t.Setenv("NO_PROXY", "")
	resolver := fakeResolver{
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		"rebind.test":   {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("fd00:ec2::254")},
		"private.test":  {netip.MustParseAddr("10.1.2.3")},
		"idp.test":      {netip.MustParseAddr("93.184.216.34")},
	}
	guarded := &Client{HTTPClient: NewHTTPClientWithOptions(HTTPOptions{Resolver: resolver})}
	req := func(host string) Request {
		return Request{TokenURL: "http://" + host + "/token", ClientID: testID, ClientSecret: testSecret, Timeout: 2 * time.Second}
	}
	for _, host := range []string{"169.254.169.254", "[fd00:ec2::254]", "metadata.test", "rebind.test"} {
		e := mustFail(t, guarded, req(host))
		if !e.Forbidden || e.Kind != KindConfig {
			t.Errorf("%s: got %+v", host, e)
		}
	}
	if strings.Contains(mustFail(t, guarded, req("metadata.test")).Description, "metadata.test resolves to 169.254.169.254") == false {
		t.Error("the message does not say what the name resolved to")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the proxy got %d requests for forbidden targets", n)
	}
	// Allowed targets go through the proxy; so do names that do not
	// resolve here (the proxy resolves them), and private ones by default.
	for _, host := range []string{"idp.test", "private.test", "unresolvable.test"} {
		mustToken(t, guarded, req(host))
	}
	if n := hits.Load(); n != 3 || srv.Requests() != 3 {
		t.Fatalf("the proxy got %d requests, want 3", n)
	}

	// With DenyPrivateNetworks, private targets and unresolvable names are
	// refused too, but the proxy itself (on loopback) stays reachable.
	strict := &Client{HTTPClient: NewHTTPClientWithOptions(HTTPOptions{DenyPrivateNetworks: true, Resolver: resolver})}
	for _, host := range []string{"private.test", "10.1.2.3", "unresolvable.test", "metadata.test"} {
		if e := mustFail(t, strict, req(host)); !e.Forbidden || e.Kind != KindConfig {
			t.Errorf("strict %s: got %+v", host, e)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("the proxy got %d more requests", n-3)
	}
	mustToken(t, strict, req("idp.test"))
	if n := hits.Load(); n != 4 {
		t.Fatalf("the proxy got %d requests, want 4", n)
	}
	// Discovery goes the same way.
	_, err := (&Discovery{Client: guarded}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: "http://metadata.test", Timeout: 2 * time.Second})
	if oe, ok := AsError(err); !ok || !oe.Forbidden {
		t.Fatalf("discovery: %v", err)
	}
	if n := hits.Load(); n != 4 {
		t.Fatalf("the proxy got a discovery request for a forbidden target")
	}
}
