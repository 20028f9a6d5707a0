package controller

import (
	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// tokenRequest builds the token request of the primary grant, or of the
// refresh grant when refreshToken is set.
func tokenRequest(obj *v1alpha1.OAuthClientToken, in *inputs, refreshToken string) oauth.Request {
	p := obj.Spec.Provider
	req := oauth.Request{
		TokenURL:       in.endpoint,
		AuthMethod:     oauth.AuthMethod(p.AuthMethod),
		ClientID:       in.clientID,
		ClientSecret:   in.clientSecret,
		GrantType:      primaryGrantType(p),
		Scopes:         p.Scopes,
		Audience:       p.Audience,
		Resources:      p.Resources,
		ExtraParams:    p.ExtraParams,
		Headers:        headers(p.Headers),
		Format:         oauth.Format(p.RequestFormat),
		PrivateKeyPEM:  in.privateKey,
		TLS:            in.tls,
		ResponseFields: responseFields(p.ResponseFields),
	}
	if req.AuthMethod == "" {
		req.AuthMethod = oauth.AuthMethodAuto
	}
	if p.Grant == v1alpha1.GrantPassword {
		req.Username, req.Password = in.username, in.password
	}
	if a := p.ClientAssertion; a != nil {
		req.AssertionAlgorithm, req.AssertionKeyID, req.AssertionAudience = a.SigningAlgorithm, a.KeyID, a.Audience
	}
	if p.Timeout != nil {
		req.Timeout = p.Timeout.Duration
	}
	if refreshToken != "" {
		// RFC 6749 section 6: the refresh token stands for the grant; the
		// scope may be left out (the original scope is kept).
		req.GrantType = refreshGrantType(p)
		req.RefreshToken = refreshToken
		req.Username, req.Password = "", ""
		req.Scopes = nil
	}
	return req
}

// primaryGrantType is the grant_type literal of the primary grant.
func primaryGrantType(p v1alpha1.ProviderSpec) string {
	switch {
	case p.GrantType != "":
		return p.GrantType
	case p.Grant == v1alpha1.GrantPassword:
		return oauth.GrantTypePassword
	default:
		return oauth.GrantTypeClientCredentials
	}
}

func refreshGrantType(p v1alpha1.ProviderSpec) string {
	if p.RefreshGrantType != "" {
		return p.RefreshGrantType
	}
	return oauth.GrantTypeRefreshToken
}

func responseFields(f *v1alpha1.ResponseFields) oauth.ResponseFields {
	if f == nil {
		return oauth.ResponseFields{}
	}
	return oauth.ResponseFields{
		AccessToken:      f.AccessToken,
		TokenType:        f.TokenType,
		ExpiresIn:        f.ExpiresIn,
		RefreshToken:     f.RefreshToken,
		RefreshExpiresIn: f.RefreshExpiresIn,
		Scope:            f.Scope,
		IDToken:          f.IDToken,
	}
}

// tokenError turns a token-client error into a typed reconcile error with
// the condition reason to report. Messages quote the provider's error and
// error_description, never the request.
func tokenError(endpoint string, err error) error {
	host := oauth.RedactedURL(endpoint)
	oe, ok := oauth.AsError(err)
	if !ok {
		return transient(v1alpha1.ReasonTokenEndpointUnavailable, 0, "token request to %s failed: %v", host, err)
	}
	switch oe.Kind {
	case oauth.KindTransient:
		return transient(v1alpha1.ReasonTokenEndpointUnavailable, oe.RetryAfter, "token request to %s failed: %v", host, oe)
	case oauth.KindInvalidResponse:
		return transient(v1alpha1.ReasonInvalidTokenResponse, oe.RetryAfter, "token endpoint %s returned an unusable response: %v", host, oe)
	case oauth.KindConfig:
		if oe.Forbidden {
			return stalled(v1alpha1.ReasonTokenURLNotAllowed, "token request to %s refused: %v", host, oe)
		}
		return stalled(v1alpha1.ReasonInvalidSpec, "cannot request a token from %s: %v", host, oe)
	}
	if oe.InteractionRequired {
		scheme := oe.Challenge
		if scheme == "" {
			scheme = oe.Code
		}
		return stalled(v1alpha1.ReasonInteractionRequired, "token endpoint %s requires an interactive step (%s) that a controller cannot perform; complete it with the provider, then tokensync retries: %v", host, scheme, oe)
	}
	reason := v1alpha1.ReasonTokenRequestRejected
	switch oe.Code {
	case "invalid_client":
		reason = v1alpha1.ReasonInvalidClient
	case "invalid_scope":
		reason = v1alpha1.ReasonInvalidScope
	case "unauthorized_client":
		reason = v1alpha1.ReasonUnauthorizedClient
	}
	return stalled(reason, "token endpoint %s refused the request: %v", host, oe)
}

// invalidGrant reports whether the endpoint refused a refresh token, so
// that the primary grant should be tried instead.
func invalidGrant(err error) bool {
	oe, ok := oauth.AsError(err)
	return ok && oe.Kind == oauth.KindRejected && oe.Code == "invalid_grant"
}

func headers(h map[string]v1alpha1.HeaderValue) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = string(v)
	}
	return out
}
