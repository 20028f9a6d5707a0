package oauth

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// HTTPOptions adjust NewHTTPClientWithOptions.
type HTTPOptions struct {
	// AllowLinkLocal lets connections reach link-local and cloud metadata
	// addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), refused by
	// default so that a tenant cannot aim tokensync at instance metadata.
	AllowLinkLocal bool
	// DenyPrivateNetworks also refuses every private and special-purpose
	// address (see SpecialPurposeRange): loopback, 0.0.0.0/8, RFC 1918,
	// 100.64.0.0/10, fc00::/7, 64:ff9b::/96 and the rest of the IANA
	// registries, for clusters whose tenants must reach only public
	// endpoints. It wins over AllowLinkLocal. A proxy from the environment
	// stays reachable wherever it is: the operator chose it.
	DenyPrivateNetworks bool
	// Resolver resolves the host of a request sent through a proxy, to
	// check its addresses first; net.DefaultResolver when nil.
	Resolver Resolver
}

func (o HTTPOptions) guard() addressGuard {
	return addressGuard{allowLinkLocal: o.AllowLinkLocal && !o.DenyPrivateNetworks, denyPrivate: o.DenyPrivateNetworks}
}

// NewHTTPClient returns the HTTP client token requests use by default: TLS
// 1.2 at least, the proxy from the standard environment variables, bounded
// connection set-up and response-header waits, pooled connections, no
// redirects, and no connections to link-local or metadata addresses.
// Token responses are read up to 1 MiB.
func NewHTTPClient() *http.Client { return NewHTTPClientWithOptions(HTTPOptions{}) }

// NewHTTPClientWithOptions is NewHTTPClient with options.
//
// Addresses are checked when dialled, after name resolution. A request
// sent through a proxy (HTTPS_PROXY, HTTP_PROXY and NO_PROXY, read when the
// client is made) dials only the proxy, so its target is checked before
// it is sent instead: an IP literal as it is, a name by resolving it here
// and checking every address. The proxy resolves the name again, so it
// should refuse metadata (and, for DenyPrivateNetworks, private) addresses
// itself: a name that resolves differently for it is out of reach of this
// check. A name that does not resolve here is passed to the proxy, except
// with DenyPrivateNetworks, which refuses it.
func NewHTTPClientWithOptions(o HTTPOptions) *http.Client {
	g := o.guard()
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if g.active() {
		dialer.Control = g.control
	}
	proxyCfg := httpproxy.FromEnvironment()
	proxyFunc := proxyCfg.ProxyFunc()
	proxies := proxyAddresses(proxyCfg)
	var resolver Resolver = net.DefaultResolver
	if o.Resolver != nil {
		resolver = o.Resolver
	}
	unguarded := &net.Dialer{Timeout: dialer.Timeout, KeepAlive: dialer.KeepAlive}
	return &http.Client{
		Transport: &http.Transport{
			Proxy: func(req *http.Request) (*url.URL, error) {
				u, err := proxyFunc(req.URL)
				if err != nil || u == nil || !g.active() {
					return u, err
				}
				if err := g.checkHost(req.Context(), resolver, req.URL.Hostname(), g.denyPrivate); err != nil {
					return nil, err
				}
				return u, nil
			},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if proxies[addr] {
					return unguarded.DialContext(ctx, network, addr)
				}
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   10,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: noRedirect,
	}
}

// proxyAddresses are the host:port of the configured proxies, which the
// transport dials for proxied requests.
func proxyAddresses(cfg *httpproxy.Config) map[string]bool {
	out := map[string]bool{}
	for _, raw := range []string{cfg.HTTPProxy, cfg.HTTPSProxy} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			// httpproxy also accepts a bare host[:port].
			if u, err = url.Parse("http://" + raw); err != nil || u.Host == "" {
				continue
			}
		}
		port := u.Port()
		if port == "" {
			switch u.Scheme {
			case "https":
				port = "443"
			case "socks5", "socks5h":
				port = "1080"
			default:
				port = "80"
			}
		}
		out[net.JoinHostPort(u.Hostname(), port)] = true
	}
	return out
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
