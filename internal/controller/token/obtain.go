package token

import (
	"context"
	"strings"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/render"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/internal/secrets"
)

// useRefreshToken reports whether refresh tokens are kept and used:
// refresh.useRefreshToken, else only with the password grant (RFC 6749
// section 4.4.3: the client-credentials grant should issue none, and
// keeping one adds a long-lived credential for nothing).
func useRefreshToken(obj *v1alpha1.OAuthClientToken) bool {
	if r := obj.Spec.Refresh; r != nil && r.UseRefreshToken != nil {
		return *r.UseRefreshToken
	}
	return obj.Spec.Provider.Grant == v1alpha1.GrantPassword
}

// obtain returns a token for obj: the one obtained earlier and not yet
// written, when it still serves, else a new one from the endpoint (with
// the kept refresh token when there is one). The refresh token received
// is saved before the caller writes the target Secret, so that a failed
// write still leaves a refresh token that works.
func (r *Reconciler) obtain(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs.Inputs, tpls render.Templates, force string, s renewal.Schedule, now time.Time, o *outcome) (*obtained, error) {
	if p := r.pendingOf(obj); p != nil && p.token.ConfigHash == in.ConfigHash && p.force == force &&
		now.Before(s.Expiry(*renewalToken(obj, p.token))) {
		o.endpoint = p.endpoint
		return p, nil
	}
	shared := o.provider.Shared()
	var key string
	if shared {
		// One token for every object with this provider and these
		// inputs: the one kept, while this object's renewal policy finds
		// it fresh, else a new one, requested under the key's lock so that
		// the others wait for it rather than request their own.
		key = sharedKey(o.provider, in.ConfigHash)
		defer r.shared.lock(key)()
		// A forced refresh gets a new token, but not more often than
		// --min-refresh-interval for the whole key: one tenant's edits must
		// not rotate (or use up) the token every sharing namespace holds.
		recent := func(e *sharedToken) bool { return !e.seeded && now.Sub(e.issuedAt) < r.minRefreshInterval() }
		if e := r.shared.get(key, now); e != nil && (force == "" || recent(e)) && (!e.seeded || tpls == nil) && r.sharedFresh(obj, e, s, now) {
			o.endpoint = e.endpoint
			return r.finish(ctx, obj, in, tpls, force, s, &e.token, e.grant, e.endpoint, e.issuedAt, credential{}, secrets.Refresh{}, false)
		}
	}
	if err := r.acquire(obj); err != nil {
		return nil, err
	}
	defer r.release(obj.Namespace)
	endpoint, err := inputs.Endpoint(ctx, obj, in.TLS, r.URLs, r.Discovery)
	o.endpoint = endpoint
	if err != nil {
		return nil, err
	}
	useRefresh := useRefreshToken(obj) && !shared
	var state secrets.Refresh
	if useRefresh {
		if state, err = r.Writer.ReadRefresh(ctx, obj, in.ConfigHash, now); err != nil {
			return nil, err
		}
	}
	cred := credential{subject: in.Subject, notAfter: in.SubjectExpiresAt}
	if inputs.UsesServiceAccount(obj) {
		// A fresh ServiceAccount token for each request, from the
		// TokenRequest API: the client assertion, or the subject.
		saToken, saExpires, err := r.serviceAccountToken(ctx, obj, endpoint)
		if err != nil {
			return nil, err
		}
		if obj.Spec.Provider.AuthMethod == v1alpha1.AuthMethodServiceAccountAssertion {
			cred.assertion = saToken
		}
		if obj.Spec.Provider.Grant == v1alpha1.GrantTokenExchange && cred.subject == "" {
			cred.subject, cred.notAfter = saToken, saExpires
		}
	}
	started := time.Now()
	tok, grant, err := r.request(ctx, obj, in, cred, endpoint, &state)
	r.Metrics.ObserveRequest(endpoint, time.Since(started), err)
	if err != nil {
		return nil, err
	}
	issuedAt := now.Truncate(time.Second)
	if shared {
		kept := *tok
		kept.RefreshToken = ""
		r.shared.put(key, &sharedToken{token: kept, issuedAt: issuedAt, grant: grant, endpoint: endpoint})
	}
	return r.finish(ctx, obj, in, tpls, force, s, tok, grant, endpoint, issuedAt, cred, state, useRefresh)
}

// sharedFresh reports whether a shared token is one obj's renewal policy
// would keep at now.
func (r *Reconciler) sharedFresh(obj *v1alpha1.OAuthClientToken, e *sharedToken, s renewal.Schedule, now time.Time) bool {
	t := &secrets.Token{IssuedAt: e.issuedAt, ExpiresAt: e.expiresAt()}
	if t.ExpiresAt.IsZero() {
		t.LifetimeDefaulted = true
		t.ExpiresAt = e.issuedAt.Add(s.DefaultLifetime)
	}
	return now.Before(s.RenewAt(*renewalToken(obj, t)))
}

// finish turns a token the endpoint answered into the token written for
// obj, and saves (or drops) the refresh token.
func (r *Reconciler) finish(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs.Inputs, tpls render.Templates, force string, s renewal.Schedule,
	tok *oauth.Token, grant, endpoint string, issuedAt time.Time, cred credential, state secrets.Refresh, useRefresh bool) (*obtained, error) {
	var err error
	t := &secrets.Token{
		AccessToken:     tok.AccessToken,
		TokenType:       tok.TokenType,
		IssuedAt:        issuedAt,
		ConfigHash:      in.ConfigHash,
		InputsVersion:   in.Version,
		IssuedTokenType: tok.IssuedTokenType,
	}
	if obj.Spec.Provider.Grant == v1alpha1.GrantTokenExchange {
		// The token never outlives its subject.
		t.NotAfter = cred.notAfter.Truncate(time.Second)
	}
	switch {
	case !tok.ExpiresAt.IsZero():
		// A JWT's exp exactly, or when the answer arrived plus expires_in.
		t.ExpiresAt = tok.ExpiresAt.Truncate(time.Second)
	case tok.ExpiresIn > 0:
		t.ExpiresAt = issuedAt.Add(tok.ExpiresIn).Truncate(time.Second)
	default:
		t.LifetimeDefaulted = true
		t.ExpiresAt = issuedAt.Add(s.DefaultLifetime)
	}
	t.RenewAt = s.RenewAt(*renewalToken(obj, t))
	if tpls != nil {
		view := render.View{
			AccessToken:      tok.AccessToken,
			TokenType:        tok.TokenType,
			ExpiresAt:        t.ExpiresAt.UTC().Format(time.RFC3339),
			ExpiresIn:        int64(t.ExpiresAt.Sub(r.Clock.Now().Truncate(time.Second)) / time.Second), // what is left: a shared token may be older than this write
			Scope:            strings.Join(tok.Scopes, " "),
			IDToken:          tok.IDToken,
			RefreshToken:     tok.RefreshToken,
			RefreshExpiresIn: int64(tok.RefreshExpiresIn / time.Second),
		}
		if t.Data, err = tpls.Render(view); err != nil {
			return nil, err
		}
		t.AccessToken = ""
	}
	refresh := ""
	var refreshExpires time.Time
	if useRefresh {
		refresh = tok.RefreshToken
		if tok.RefreshExpiresIn > 0 {
			refreshExpires = tok.ReceivedAt.Add(tok.RefreshExpiresIn)
		}
	} else {
		// A state Secret kept from before refresh tokens were turned off
		// goes (the index says whether there is one).
		state.Exists = true
	}
	if err := r.Writer.SaveRefresh(ctx, obj, in.ConfigHash, refresh, refreshExpires, state); err != nil {
		return nil, err
	}
	return &obtained{token: t, scopes: tok.Scopes, grant: grant, endpoint: endpoint, force: force, issuedTokenType: tok.IssuedTokenType}, nil
}

// credential is what a request sends besides the inputs: a ServiceAccount
// token as the client assertion, and the subject of a token exchange with
// its expiry. Obtained for one request, never kept.
type credential struct {
	assertion string
	subject   string
	notAfter  time.Time
}

// request sends the token request: with the refresh token when one is
// kept, and, when the endpoint refuses it for any reason, drops it (it is
// never sent again) and sends the primary grant in the same reconcile.
func (r *Reconciler) request(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs.Inputs, cred credential, endpoint string, state *secrets.Refresh) (*oauth.Token, string, error) {
	if state.Token != "" {
		req := tokenRequest(obj, in, cred, endpoint, state.Token)
		tok, err := r.Tokens.Token(ctx, req)
		if err == nil {
			if tok.RefreshToken == "" {
				// RFC 6749 section 6: the endpoint may keep the refresh
				// token it had issued.
				tok.RefreshToken = state.Token
			}
			return tok, req.GrantType, nil
		}
		oe, _ := oauth.AsError(err)
		if oe == nil || oe.Kind != oauth.KindRejected {
			return nil, req.GrantType, tokenError(endpoint, err)
		}
		if err := r.Writer.DeleteRefresh(ctx, obj); err != nil {
			return nil, req.GrantType, err
		}
		*state = secrets.Refresh{}
		logf.FromContext(ctx).V(1).Info("refresh token refused; dropped it and using the primary grant", "code", oe.Code, "status", oe.StatusCode)
	}
	req := tokenRequest(obj, in, cred, endpoint, "")
	tok, err := r.Tokens.Token(ctx, req)
	if err != nil {
		return nil, req.GrantType, tokenError(endpoint, err)
	}
	return tok, req.GrantType, nil
}

// tokenRequest builds the token request of the primary grant, or of the
// refresh grant when refreshToken is set.
func tokenRequest(obj *v1alpha1.OAuthClientToken, in *inputs.Inputs, cred credential, endpoint, refreshToken string) oauth.Request {
	p := obj.Spec.Provider
	req := oauth.Request{
		TokenURL:        endpoint,
		AuthMethod:      oauth.AuthMethod(p.AuthMethod),
		ClientID:        in.ClientID,
		ClientSecret:    in.ClientSecret,
		GrantType:       primaryGrantType(p),
		Scopes:          p.Scopes,
		Audience:        p.Audience,
		Resources:       p.Resources,
		ExtraParams:     p.ExtraParams,
		Headers:         inputs.Headers(p.Headers),
		Format:          oauth.Format(p.RequestFormat),
		PrivateKeyPEM:   in.PrivateKey,
		TLS:             in.TLS,
		ResponseFields:  responseFields(p.ResponseFields),
		Tenant:          obj.Namespace,
		ClientAssertion: cred.assertion,
	}
	if p.Grant == v1alpha1.GrantTokenExchange {
		req.SubjectToken = cred.subject
		if x := p.TokenExchange; x != nil {
			req.SubjectTokenType, req.RequestedTokenType = x.SubjectTokenType, x.RequestedTokenType
		}
		if req.SubjectTokenType == "" && in.Subject != "" {
			req.SubjectTokenType = oauth.TokenTypeAccessToken // another object's access token
		}
	}
	if req.AuthMethod == "" {
		req.AuthMethod = oauth.AuthMethodAuto
	}
	if p.Grant == v1alpha1.GrantPassword {
		req.Username, req.Password = in.Username, in.Password
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
	case p.Grant == v1alpha1.GrantTokenExchange:
		return oauth.GrantTypeTokenExchange
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
		return failure.NewTransient(v1alpha1.ReasonTokenEndpointUnavailable, 0, "token request to %s failed: %v", host, err)
	}
	switch oe.Kind {
	case oauth.KindThrottled:
		return &failure.Throttled{Msg: "token request to " + host + " held back by the manager's per-host limits", RetryAfter: oe.RetryAfter}
	case oauth.KindTransient:
		return failure.NewTransient(v1alpha1.ReasonTokenEndpointUnavailable, oe.RetryAfter, "token request to %s failed: %v", host, oe)
	case oauth.KindInvalidResponse:
		return failure.NewTransient(v1alpha1.ReasonInvalidTokenResponse, oe.RetryAfter, "token endpoint %s returned an unusable response: %v", host, oe)
	case oauth.KindConfig:
		if oe.Forbidden {
			return failure.NewStalled(v1alpha1.ReasonTokenURLNotAllowed, "token request to %s refused: %v", host, oe)
		}
		return failure.NewStalled(v1alpha1.ReasonInvalidSpec, "cannot request a token from %s: %v", host, oe)
	}
	if oe.InteractionRequired {
		scheme := oe.Challenge
		if scheme == "" {
			scheme = oe.Code
		}
		return failure.NewStalled(v1alpha1.ReasonInteractionRequired, "token endpoint %s requires an interactive step (%s) that a controller cannot perform; complete it with the provider, then tokensync retries: %v", host, scheme, oe)
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
	return failure.NewStalled(reason, "token endpoint %s refused the request: %v", host, oe)
}
