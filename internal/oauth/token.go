package oauth

import (
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Token is a token endpoint's successful answer.
type Token struct {
	AccessToken string
	// TokenType is "Bearer" when the endpoint omits it; the common types
	// are normalised ("bearer" becomes "Bearer").
	TokenType string
	// ExpiresIn is the lifetime the endpoint gave in expires_in, in whole
	// seconds or, when it gave none, the time left until the exp claim of
	// a JWT access token (read, not verified), cut to whole seconds; zero
	// when neither says. At most MaxLifetime.
	ExpiresIn time.Duration
	// ExpiresAt is the absolute expiry: ReceivedAt + expires_in, or the
	// exp claim of a JWT access token exactly (to the nanosecond it
	// gives) when expires_in is absent; zero when unknown, as ExpiresIn.
	// It is never later than ReceivedAt + MaxLifetime.
	ExpiresAt time.Time
	// ExpiresFrom says where ExpiresIn came from: "expires_in", "jwt" or
	// "" (unknown).
	ExpiresFrom string
	// Scopes are the granted scopes (the response's scope, split on
	// spaces); nil when the endpoint did not say.
	Scopes []string
	// RefreshToken, when the endpoint issued one, and RefreshExpiresIn, its
	// lifetime (zero when not given).
	RefreshToken     string
	RefreshExpiresIn time.Duration
	// IDToken is the id_token of the response, if any.
	IDToken string
	// IssuedTokenType is the issued_token_type of a token-exchange
	// response (RFC 8693 section 2.2.1), e.g. TokenTypeAccessToken; empty
	// when the endpoint did not say.
	IssuedTokenType string
	// ReceivedAt is when the answer arrived, by Client.Now.
	ReceivedAt time.Time
}

// newToken reads the Token out of a decoded response received at now.
func newToken(tok *oauth2.Token, now time.Time) *Token {
	out := &Token{
		AccessToken:      tok.AccessToken,
		TokenType:        tok.Type(),
		ReceivedAt:       now,
		Scopes:           grantedScopes(tok.Extra("scope")),
		RefreshToken:     tok.RefreshToken,
		RefreshExpiresIn: expiresIn(tok.Extra("refresh_expires_in")),
	}
	if id, ok := tok.Extra("id_token").(string); ok {
		out.IDToken = id
	}
	if tt, ok := tok.Extra("issued_token_type").(string); ok {
		out.IssuedTokenType = clean(tt, 256)
	}
	out.ExpiresIn, out.ExpiresAt, out.ExpiresFrom = expiry(tok.Extra("expires_in"), tok.AccessToken, now)
	return out
}

// grantedScopes reads the response's scope: a space-separated string
// (RFC 6749 section 5.1) or, from some endpoints, a JSON array.
func grantedScopes(v any) []string {
	switch x := v.(type) {
	case string:
		if f := strings.Fields(x); len(f) > 0 {
			return f
		}
	case []any:
		var out []string
		for _, s := range x {
			if s, ok := s.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.Fields(s)...)
			}
		}
		return out
	}
	return nil
}
