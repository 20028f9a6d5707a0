package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultDiscoveryTTL is how long a discovery document is reused.
const DefaultDiscoveryTTL = time.Hour

// maxDiscoveryBody bounds a discovery document.
const maxDiscoveryBody = 1 << 20

// Metadata is what tokensync uses of an authorization server's metadata
// (OpenID Connect Discovery 1.0, RFC 8414).
type Metadata struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	// Source is the URL the document was read from.
	Source string `json:"-"`
}

// DiscoveryRequest names the issuer whose metadata to fetch and how to
// reach it.
type DiscoveryRequest struct {
	// IssuerURL is the issuer identifier: an absolute http(s) URL without
	// query or fragment.
	IssuerURL string
	Headers   map[string]string
	TLS       *TLSConfig
	Timeout   time.Duration
	// Tenant is who the request is for, as Request.Tenant.
	Tenant string
}

// Discovery finds token endpoints from issuer URLs and caches what it
// found. The zero value is ready to use and safe for concurrent use.
type Discovery struct {
	// Client sends the requests (its HTTPClient, TLS cache and clock).
	Client *Client
	// TTL is how long a document is reused; DefaultDiscoveryTTL when zero.
	TTL time.Duration

	mu    sync.Mutex
	cache map[[32]byte]cachedMetadata
}

type cachedMetadata struct {
	issuer  string
	md      Metadata
	fetched time.Time
}

// cacheKey identifies everything that can change the answer for req: the
// issuer, the headers sent and the TLS material (CAs and client
// certificate), so that tenants with different trust or headers never
// share a document.
func (req DiscoveryRequest) cacheKey() [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(req.IssuerURL))
	for _, k := range slices.Sorted(maps.Keys(req.Headers)) {
		field([]byte(http.CanonicalHeaderKey(k)))
		field([]byte(req.Headers[k]))
	}
	field([]byte{0xff}) // end of headers
	if !req.TLS.isZero() {
		d := req.TLS.digest()
		field(d[:])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// TokenEndpoint returns the issuer's token endpoint: from the cache when
// the document was fetched less than TTL ago, else from
// {issuer}/.well-known/openid-configuration, then from the RFC 8414
// location /.well-known/oauth-authorization-server{issuer path}. When both
// fail and an older document is cached, that one is used. A non-nil error
// is an *Error.
func (d *Discovery) TokenEndpoint(ctx context.Context, req DiscoveryRequest) (Metadata, error) {
	c := d.Client
	if c == nil {
		c = &Client{}
	}
	now := c.now()
	ttl := d.TTL
	if ttl <= 0 {
		ttl = DefaultDiscoveryTTL
	}
	key := req.cacheKey()
	d.mu.Lock()
	cached, ok := d.cache[key]
	d.mu.Unlock()
	if ok && now.Sub(cached.fetched) < ttl {
		return cached.md, nil
	}
	md, err := d.fetch(ctx, c, req)
	if err != nil {
		if ok {
			return cached.md, nil
		}
		return Metadata{}, err
	}
	d.mu.Lock()
	if d.cache == nil {
		d.cache = map[[32]byte]cachedMetadata{}
	}
	d.cache[key] = cachedMetadata{issuer: req.IssuerURL, md: md, fetched: now}
	d.mu.Unlock()
	return md, nil
}

// Forget drops the cached documents of an issuer (for every set of
// headers and TLS material).
func (d *Discovery) Forget(issuer string) {
	d.mu.Lock()
	maps.DeleteFunc(d.cache, func(_ [32]byte, e cachedMetadata) bool { return e.issuer == issuer })
	d.mu.Unlock()
}

// wellKnownURLs lists where the issuer's metadata may be.
func wellKnownURLs(issuer string) ([]string, *Error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &Error{Kind: KindConfig, Description: fmt.Sprintf("issuer URL %q is not an absolute http(s) URL without user information, query or fragment", RedactedURL(issuer))}
	}
	base := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return []string{
		base + path + "/.well-known/openid-configuration",
		base + "/.well-known/oauth-authorization-server" + path,
	}, nil
}

func (d *Discovery) fetch(ctx context.Context, c *Client, req DiscoveryRequest) (Metadata, *Error) {
	urls, oerr := wellKnownURLs(req.IssuerURL)
	if oerr != nil {
		return Metadata{}, oerr
	}
	hc, oerr := c.httpClient(req.TLS)
	if oerr != nil {
		return Metadata{}, oerr
	}
	release, throttled := c.Limiter.acquire(hostOf(req.IssuerURL), req.Tenant, "discovery\x00"+req.Tenant+"\x00"+req.IssuerURL, c.now())
	if throttled != nil {
		return Metadata{}, throttled.oauthError()
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.timeout(req.Timeout))
	defer cancel()
	var first *Error
	for _, u := range urls {
		md, oerr := getMetadata(ctx, hc, u, req.Headers)
		if oerr == nil {
			if !sameIssuer(md.Issuer, req.IssuerURL) {
				oerr = &Error{Kind: KindInvalidResponse, Description: fmt.Sprintf("discovery document at %s names issuer %q, not %q", RedactedURL(u), clean(md.Issuer, 256), RedactedURL(req.IssuerURL))}
			} else if te, err := url.Parse(md.TokenEndpoint); err != nil || te.Host == "" || (te.Scheme != "https" && te.Scheme != "http") || te.User != nil || te.Fragment != "" {
				oerr = &Error{Kind: KindInvalidResponse, Description: fmt.Sprintf("discovery document at %s has no usable token_endpoint", RedactedURL(u))}
			} else {
				md.Source = u
				return md, nil
			}
		}
		if first == nil {
			first = oerr
		}
		if ctx.Err() != nil {
			break
		}
	}
	return Metadata{}, first
}

// sameIssuer compares issuer identifiers, ignoring one trailing slash.
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

func getMetadata(ctx context.Context, hc *http.Client, u string, headers map[string]string) (Metadata, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Metadata{}, &Error{Kind: KindConfig, Description: "cannot build the discovery request"}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		if fe, ok := asForbidden(err); ok {
			return Metadata{}, &Error{Kind: KindConfig, Forbidden: true, Description: fe.Error()}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Metadata{}, &Error{Kind: KindTransient, Description: "cannot fetch the discovery document " + RedactedURL(u), Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return Metadata{}, &Error{Kind: KindTransient, StatusCode: resp.StatusCode, Description: "reading the discovery document " + RedactedURL(u) + " failed", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		kind := KindInvalidResponse
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			kind = KindTransient
		}
		return Metadata{}, &Error{Kind: kind, StatusCode: resp.StatusCode, Description: "no discovery document at " + RedactedURL(u)}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var md Metadata
	if len(body) > maxDiscoveryBody || json.Unmarshal(body, &md) != nil {
		return Metadata{}, &Error{Kind: KindInvalidResponse, StatusCode: resp.StatusCode, Description: fmt.Sprintf("discovery document at %s is not a JSON object (content-type %s)", RedactedURL(u), clean(mt, 64))}
	}
	return md, nil
}
