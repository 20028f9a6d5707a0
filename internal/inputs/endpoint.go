package inputs

import (
	"context"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/oauth"
)

// Discoverer finds an issuer's token endpoint. *oauth.Discovery implements it.
type Discoverer interface {
	TokenEndpoint(ctx context.Context, req oauth.DiscoveryRequest) (oauth.Metadata, error)
}

// Endpoint returns the token endpoint of obj: provider.tokenURL, or the
// token endpoint of the issuer's discovery document (fetched with tls, the
// object's TLS material). Every URL is checked against the manager's
// policy.
func Endpoint(ctx context.Context, obj *v1alpha1.OAuthClientToken, tls *oauth.TLSConfig, policy URLPolicy, d Discoverer) (string, error) {
	p := obj.Spec.Provider
	if p.TokenURL != "" {
		return p.TokenURL, policy.Check("tokenURL", p.TokenURL)
	}
	if p.IssuerURL == "" {
		return "", failure.NewStalled(v1alpha1.ReasonInvalidSpec, "set provider.tokenURL or provider.issuerURL")
	}
	if err := policy.Check("issuerURL", p.IssuerURL); err != nil {
		return "", err
	}
	req := oauth.DiscoveryRequest{IssuerURL: p.IssuerURL, Headers: Headers(p.Headers), TLS: tls, Tenant: obj.Namespace}
	if p.Timeout != nil {
		req.Timeout = p.Timeout.Duration
	}
	md, err := d.TokenEndpoint(ctx, req)
	if err != nil {
		issuer := oauth.RedactedURL(p.IssuerURL)
		oe, _ := oauth.AsError(err)
		switch {
		case oe != nil && oe.Forbidden:
			return "", failure.NewStalled(v1alpha1.ReasonTokenURLNotAllowed, "discovering the token endpoint of %s: %v", issuer, err)
		case oe != nil && oe.Kind == oauth.KindThrottled:
			return "", &failure.Throttled{Msg: "discovery of " + issuer + " held back by the manager's per-host limits", RetryAfter: oe.RetryAfter}
		case oe != nil && oe.Kind == oauth.KindTransient:
			return "", failure.NewTransient(v1alpha1.ReasonDiscoveryFailed, oe.RetryAfter, "discovering the token endpoint of %s: %v", issuer, err)
		}
		return "", failure.NewStalled(v1alpha1.ReasonDiscoveryFailed, "discovering the token endpoint of %s: %v", issuer, err)
	}
	return md.TokenEndpoint, policy.Check("the discovered token_endpoint", md.TokenEndpoint)
}

// Headers converts the spec's headers.
func Headers(h map[string]v1alpha1.HeaderValue) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = string(v)
	}
	return out
}
