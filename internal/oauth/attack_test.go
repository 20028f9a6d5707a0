package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestAttack_HostLimiterKeyIsTheHost: the per-host limits (in flight and
// rate) are keyed by the URL's host[:port] as written, so one host spelled
// differently (default port written out, a port with leading zeros, a
// trailing dot) gets a fresh budget each time: a tenant can bypass the
// limits that protect a shared identity provider.
func TestAttack_HostLimiterKeyIsTheHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	// The same server, spelled with a zero-padded port: Go dials it.
	padded := "http://" + u.Hostname() + ":0" + u.Port() + "/token"
	resp, err := http.Get(padded)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	resp.Body.Close()

	l := &HostLimiter{MaxInFlight: 1}
	now := time.Now()
	release, th := l.acquire(hostOf(srv.URL+"/token"), "tenant-a", "c1", now)
	if th != nil {
		t.Fatal(th)
	}
	defer release()
	if _, th := l.acquire(hostOf(padded), "tenant-b", "c2", now); th == nil {
		t.Fatalf("the only in-flight slot of %s is taken, but the same server spelled %s got another", srv.URL, padded)
	}
	if a, b := hostOf("https://idp.example.com/token"), hostOf("https://idp.example.com:443/token"); a != b {
		t.Fatalf("https://idp.example.com and https://idp.example.com:443 are limited apart (%q, %q)", a, b)
	}
}
