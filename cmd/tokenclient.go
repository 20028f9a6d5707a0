package main

import (
	"flag"
	"time"

	"github.com/tokensync/tokensync/internal/oauth"
)

// tokenClientOptions are the token client's tenant-safety limits (issue 14).
type tokenClientOptions struct {
	maxRequestTimeout    time.Duration
	maxConcurrentPerHost int
	denyPrivateNetworks  bool
}

// bindTokenClientFlags registers the flags of tokenClientOptions.
func bindTokenClientFlags(fs *flag.FlagSet, o *tokenClientOptions) {
	fs.DurationVar(&o.maxRequestTimeout, "max-token-request-timeout", 30*time.Second,
		"Longest time one token or discovery request may take, whatever provider.timeout says. 0 means no cap.")
	fs.IntVar(&o.maxConcurrentPerHost, "max-concurrent-requests-per-host", 8,
		"Most token and discovery requests under way at once to one host; one namespace holds at most half of them. Requests over the limit are not sent and are retried shortly. 0 means no limit.")
	fs.BoolVar(&o.denyPrivateNetworks, "deny-private-networks", false,
		"Refuse token and issuer URLs that name or resolve to loopback, private (RFC 1918, 100.64.0.0/10, fc00::/7) or other IANA special-purpose addresses, for multi-tenant clusters whose endpoints are all public. Implies refusing link-local and metadata addresses.")
}

// apply sets the limits on the token client.
func (o tokenClientOptions) apply(c *oauth.Client, h *oauth.HTTPOptions) {
	c.MaxTimeout = o.maxRequestTimeout
	if c.Limiter != nil {
		c.Limiter.MaxInFlight = o.maxConcurrentPerHost
	}
	h.DenyPrivateNetworks = o.denyPrivateNetworks
}
