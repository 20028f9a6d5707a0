package token

import (
	"context"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
	"github.com/tokensync/tokensync/internal/render"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/internal/secrets"
)

// outcome is what one reconcile found and did; summarize turns it into
// status, events and the next requeue.
type outcome struct {
	target   *secrets.Target
	decision renewal.Decision
	// held is the token the target Secret holds after this reconcile (the
	// one found, or the one written).
	held *secrets.Token
	// current is set when held was obtained with the current inputs.
	current bool
	// attemptKey identifies what a failure is remembered for: the inputs
	// and the target spec. Its backoff holds until it passes or they change.
	attemptKey string
	// issued is the token obtained and written this reconcile.
	issued *obtained
	// moved is set when the token of the Secret written before a retarget
	// was written into the new one.
	moved    bool
	repaired bool
	cleared  bool
	// attempted is set when a token request was made (a forced refresh
	// counts as handled then, whatever its result).
	attempted bool
	endpoint  string
	err       error
	// provider is what spec.providerRef resolved to (nil inline).
	provider *providers.Resolved
}

func (o *outcome) what() string {
	switch {
	case o.issued != nil:
		return "issued"
	case o.moved:
		return "moved"
	case o.repaired:
		return "repaired"
	case o.decision.Reason == renewal.BackingOff:
		return "backoff"
	default:
		return "unchanged"
	}
}

// obtained is a token obtained from the endpoint, ready to be written.
type obtained struct {
	uid      types.UID
	token    *secrets.Token
	scopes   []string
	grant    string
	endpoint string
	// force is the refresh-requested-at value it was obtained for.
	force string
	// issuedTokenType is the issued_token_type of a token exchange.
	issuedTokenType string
}

// forceValue is the refresh-requested-at value not yet handled, if any.
func forceValue(obj *v1alpha1.OAuthClientToken) string {
	v := obj.Annotations[v1alpha1.RefreshRequestedAnnotation]
	if v == "" || v == obj.Status.LastHandledRefreshRequest {
		return ""
	}
	return v
}

func expiryPolicy(obj *v1alpha1.OAuthClientToken) v1alpha1.ExpiryPolicy {
	if t := obj.Spec.Target; t != nil && t.ExpiryPolicy != "" {
		return t.ExpiryPolicy
	}
	return v1alpha1.ExpiryPolicyKeep
}

func templatesOf(obj *v1alpha1.OAuthClientToken) map[string]v1alpha1.DataTemplate {
	if t := obj.Spec.Target; t != nil {
		return t.Data
	}
	return nil
}

// renewalToken is what renewal needs of a recorded token.
func renewalToken(obj *v1alpha1.OAuthClientToken, t *secrets.Token) *renewal.Token {
	if t == nil {
		return nil
	}
	return &renewal.Token{
		IssuedAt:          t.IssuedAt,
		ExpiresAt:         t.ExpiresAt,
		LifetimeDefaulted: t.LifetimeDefaulted,
		NotAfter:          t.NotAfter,
		Seed:              renewal.Seed(obj.Namespace, obj.Name, t.IssuedAt.UTC().Format(time.RFC3339)),
	}
}

// run is one reconcile of obj: target, inputs, decision, token, write.
func (r *Reconciler) run(ctx context.Context, obj *v1alpha1.OAuthClientToken) *outcome {
	o := &outcome{}
	now := r.Clock.Now()
	if err := r.resolve(ctx, obj, o); err != nil {
		o.err = err
		if _, _, ok := failure.ReasonOf(err); ok {
			r.unresolved(ctx, obj, o, now)
		}
		return o
	}
	inputsNS := obj.Namespace
	if o.provider != nil {
		obj, inputsNS = effective(obj, o.provider), o.provider.Namespace
	}
	if u := obj.Spec.Provider.TokenURL; u != "" {
		if o.err = r.URLs.Check("tokenURL", u); o.err != nil {
			return o
		}
	}
	tpls, err := render.Parse(templatesOf(obj))
	if err != nil {
		o.err = err
		return o
	}
	t, err := r.Writer.Inspect(ctx, obj)
	o.target = t
	if err != nil {
		o.err = err
		return o
	}
	o.held = t.Held
	if o.held == nil && obj.Status.SecretName != "" && obj.Status.SecretName != t.Name {
		// Retargeted: the token of the Secret written before moves.
		if o.held = r.Writer.Previous(ctx, obj, obj.Status.SecretName); o.held != nil {
			o.moved = true
		}
	}

	var in *inputs.Inputs
	configHash := ""
	if v, ok := r.Inputs.VersionIn(obj, inputsNS); ok && o.held != nil && v == o.held.InputsVersion {
		// Nothing the token was obtained with can have changed since:
		// the credentials need not be read.
		o.current, configHash = true, o.held.ConfigHash
	} else {
		if in, err = r.Inputs.ReadIn(ctx, obj, inputsNS); err != nil {
			o.err = err
			r.clearExpired(ctx, obj, o, now)
			return o
		}
		configHash = in.ConfigHash
		o.current = o.held != nil && o.held.ConfigHash == configHash
	}
	o.attemptKey = configHash + "/" + secrets.TargetHash(obj)
	force := r.forceValue(obj)
	schedule := r.schedule(obj)
	o.decision = renewal.Decide(renewal.Input{
		Now:       now,
		Held:      renewalToken(obj, o.held),
		Current:   o.current,
		Forced:    force != "",
		HoldUntil: r.gateOf(obj, o.attemptKey),
		Schedule:  schedule,
	})
	switch {
	case o.decision.Reason == renewal.BackingOff:
		o.moved = false
		r.clearExpired(ctx, obj, o, now)
		return o
	case !o.decision.Request:
		if o.held.LifetimeDefaulted {
			// The expiry follows refresh.defaultLifetime: the Secret's
			// expires_at and record say what it is now.
			held := *o.held
			held.ExpiresAt = o.decision.ExpiresAt
			held.RenewAt = o.decision.RenewAt
			o.held, t.Held = &held, &held
		}
		if o.provider.Shared() && o.current && o.held.AccessToken != "" {
			// After a restart, the token a sharing object holds serves
			// the others too.
			r.seedShared(sharedKey(o.provider, configHash), o.held)
		}
		if o.moved {
			o.err = r.Writer.Write(ctx, obj, t, o.held)
		} else {
			o.repaired, o.err = r.Writer.Sync(ctx, obj, t)
		}
		if o.err == nil {
			o.err = r.releasePrevious(ctx, obj)
		}
		return o
	}
	o.moved = false

	if in == nil {
		if in, err = r.Inputs.ReadIn(ctx, obj, inputsNS); err != nil {
			o.err = err
			r.clearExpired(ctx, obj, o, now)
			return o
		}
		o.current = o.held != nil && o.held.ConfigHash == in.ConfigHash
	}
	got, err := r.obtain(ctx, obj, in, tpls, force, schedule, now, o)
	if err != nil {
		o.attempted = o.attempted || !failure.IsThrottled(err)
		o.err = err
		r.clearExpired(ctx, obj, o, now)
		r.keepInSync(ctx, obj, o)
		return o
	}
	o.attempted = true
	r.setPending(obj, got)
	if o.err = r.Writer.Write(ctx, obj, t, got.token); o.err != nil {
		return o
	}
	r.setPending(obj, nil)
	o.issued, o.held, o.current = got, got.token, true
	o.err = r.releasePrevious(ctx, obj)
	return o
}

// keepInSync applies what the spec says about the target Secret (labels,
// ownerReference...) when a renewal failed but the Secret still holds the
// token tokensync wrote: the Secret matches the spec whatever the token
// endpoint does. A failure here does not hide the renewal's.
func (r *Reconciler) keepInSync(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome) {
	t := o.target
	if o.cleared || o.moved || t == nil || t.Held == nil || t.Owner != obj.Name {
		return
	}
	if o.decision.ExpiresAt.IsZero() {
		return
	}
	if t.Held.LifetimeDefaulted {
		held := *t.Held
		held.ExpiresAt, held.RenewAt = o.decision.ExpiresAt, o.decision.RenewAt
		t.Held = &held
	}
	if repaired, err := r.Writer.Sync(ctx, obj, t); err == nil {
		o.repaired = repaired
	}
}

// releasePrevious lets go of the Secret obj wrote before a retarget, once
// the token is in the new one.
func (r *Reconciler) releasePrevious(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	old := obj.Status.SecretName
	if old == "" || old == obj.TargetName() {
		return nil
	}
	return r.Writer.Release(ctx, obj, old)
}

// clearExpired removes an expired token from the target Secret when
// expiryPolicy is Clear, whatever made its renewal fail.
func (r *Reconciler) clearExpired(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome, now time.Time) {
	t := o.target
	if expiryPolicy(obj) != v1alpha1.ExpiryPolicyClear || t == nil || t.Held == nil || t.Owner != obj.Name {
		return
	}
	if now.Before(r.schedule(obj).Expiry(*renewalToken(obj, t.Held))) {
		return
	}
	if err := r.Writer.Clear(ctx, obj, t); err != nil {
		if o.err == nil {
			o.err = err
		}
		return
	}
	o.cleared = true
}

// resolve resolves obj's providerRef into o.provider, and applies the
// manager's policy on inline providers.
func (r *Reconciler) resolve(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome) error {
	if r.Providers == nil {
		if obj.Spec.ProviderRef != nil {
			return failure.NewStalled(v1alpha1.ReasonProviderNotFound, "this manager does not serve providers")
		}
		return nil
	}
	p, err := r.Providers.Resolve(ctx, obj)
	o.provider = p
	return err
}

// effective is obj with the provider's spec and credentials in place of an
// inline spec.provider and credentialsRef: what the rest of the reconcile
// reads. It is never written back.
func effective(obj *v1alpha1.OAuthClientToken, p *providers.Resolved) *v1alpha1.OAuthClientToken {
	eff := obj.DeepCopy()
	eff.Spec.Provider = *p.Spec.DeepCopy()
	eff.Spec.CredentialsRef = p.CredentialsRef
	eff.Spec.ServiceAccount = nil
	return eff
}

// unresolved is the reconcile of an object whose provider cannot be used
// (not found, not allowed, scopes refused, inline refused): the token its
// Secret holds stays there (cleared at expiry with expiryPolicy Clear),
// and status says why no new one is obtained. The token still counts as
// current while the spec is the one it was last Ready for.
func (r *Reconciler) unresolved(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome, now time.Time) {
	t, err := r.Writer.Inspect(ctx, obj)
	if err != nil {
		return
	}
	o.target, o.held = t, t.Held
	if c := apimeta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady); o.held != nil && c != nil && c.Status == "True" && c.ObservedGeneration == obj.Generation {
		o.current = true
	}
	r.clearExpired(ctx, obj, o, now)
}

// seedShared keeps a token read back from a target Secret as the shared
// token of key, when none is kept.
func (r *Reconciler) seedShared(key string, held *secrets.Token) {
	if r.shared.get(key, r.Clock.Now()) != nil {
		return
	}
	tok := oauth.Token{AccessToken: held.AccessToken, TokenType: held.TokenType}
	if !held.LifetimeDefaulted {
		tok.ExpiresAt = held.ExpiresAt
	}
	r.shared.put(key, &sharedToken{token: tok, issuedAt: held.IssuedAt, seeded: true})
}
