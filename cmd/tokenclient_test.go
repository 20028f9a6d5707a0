package main

import (
	"flag"
	"testing"
	"time"

	"github.com/tokensync/tokensync/internal/oauth"
)

func TestTokenClientFlags(t *testing.T) {
	parse := func(args ...string) (*oauth.Client, oauth.HTTPOptions) {
		t.Helper()
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		var o tokenClientOptions
		bindTokenClientFlags(fs, &o)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c := &oauth.Client{Limiter: &oauth.HostLimiter{}}
		h := oauth.HTTPOptions{AllowLinkLocal: true}
		o.apply(c, &h)
		return c, h
	}
	c, h := parse()
	if c.MaxTimeout != 30*time.Second || c.Limiter.MaxInFlight != 8 || h.DenyPrivateNetworks || !h.AllowLinkLocal {
		t.Fatalf("defaults: MaxTimeout %s MaxInFlight %d DenyPrivateNetworks %t", c.MaxTimeout, c.Limiter.MaxInFlight, h.DenyPrivateNetworks)
	}
	c, h = parse("--max-token-request-timeout=5s", "--max-concurrent-requests-per-host=3", "--deny-private-networks")
	if c.MaxTimeout != 5*time.Second || c.Limiter.MaxInFlight != 3 || !h.DenyPrivateNetworks {
		t.Fatalf("set: MaxTimeout %s MaxInFlight %d DenyPrivateNetworks %t", c.MaxTimeout, c.Limiter.MaxInFlight, h.DenyPrivateNetworks)
	}
}
