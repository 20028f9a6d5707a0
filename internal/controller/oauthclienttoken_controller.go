// Package controller reconciles OAuthClientToken objects: it obtains a token
// from the provider's token endpoint, keeps it in the target Secret, renews
// it before it expires and reports what it did in status.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// FieldManager is the server-side apply field manager tokensync writes
// Secrets under.
const FieldManager = "tokensync"

// DefaultMinRefreshInterval is the default floor between two token requests
// for one object, whatever the token's lifetime.
const DefaultMinRefreshInterval = 10 * time.Second

// TokenSource obtains tokens from a token endpoint. *oauth.Client implements it.
type TokenSource interface {
	Token(ctx context.Context, req oauth.Request) (*oauth.Token, error)
}

// Discoverer finds an issuer's token endpoint. *oauth.Discovery implements it.
type Discoverer interface {
	TokenEndpoint(ctx context.Context, req oauth.DiscoveryRequest) (oauth.Metadata, error)
}

// OAuthClientTokenReconciler reconciles OAuthClientToken objects.
type OAuthClientTokenReconciler struct {
	// Client reads OAuthClientTokens and tokensync-managed Secrets from the
	// manager's cache and writes through the API server.
	client.Client
	// APIReader reads credentials Secrets directly from the API server, so
	// that they never enter a cache.
	APIReader client.Reader
	// SecretMetadata reads the metadata of any Secret (a secretMetadataReader
	// set up by SetupWithManager: the managed-Secret cache, the Secret index
	// and the API server).
	SecretMetadata client.Reader
	// Recorder emits events.
	Recorder events.EventRecorder
	// Clock is injected so tests control time.
	Clock clock.PassiveClock
	// Tokens requests tokens.
	Tokens TokenSource
	// Discovery finds token endpoints from issuer URLs; a shared
	// oauth.Discovery when nil.
	Discovery Discoverer
	// AllowInsecureHTTP lets token URLs use plain http (local testing only).
	AllowInsecureHTTP bool
	// TokenURLAllowlist, when not empty, limits the hosts token, issuer and
	// discovered URLs may name.
	TokenURLAllowlist *oauth.HostAllowlist
	// AllowLinkLocal lets token URLs name link-local and metadata
	// addresses; the token client must be built to allow them too.
	AllowLinkLocal bool
	// MinRefreshInterval is the floor between two token requests for one
	// object, so a tiny expires_in cannot make the controller hot-loop.
	MinRefreshInterval time.Duration
	// Metrics records token requests; none when nil.
	Metrics *Metrics
	// Jitter returns a random duration in [0, max) subtracted from renewal
	// times. Nil means no jitter.
	Jitter func(max time.Duration) time.Duration
	// Namespaces, when not empty, are the only namespaces whose Secrets the
	// Secret index lists and watches (--watch-namespaces). The manager's
	// cache must be limited to them too (cache.Options.DefaultNamespaces).
	Namespaces []string

	mu sync.Mutex
	// gates holds, per object, the earliest time the next token request may
	// be sent after a failure, for the inputs (config hash) that failed. It
	// keeps watch events from bypassing the backoff. In memory only: after a
	// restart one early retry is harmless.
	gates map[types.NamespacedName]gate
}

type gate struct {
	hash      string
	notBefore time.Time
}

// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens,verbs=list;watch;patch
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens/status,verbs=patch
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
//
// Least privilege, checked by test/e2e/zzz_rbac_audit_test.go against the
// e2e suite's audit log: OAuthClientTokens are read from the cache (list,
// watch; no get) and written with patches (finalizers; status); update on
// oauthclienttokens/finalizers is what the OwnerReferencesPermissionEnforcement
// admission plugin asks of a Secret write whose owner reference blocks the
// owner's deletion.
//
// rolloutRestartTargets need patch on apps deployments, statefulsets and
// daemonsets. They are not granted here, so that the default install cannot
// restart workloads: config/rollout-restart adds them.

// result is what one reconcile achieved.
type result struct {
	// token is the token the target Secret holds for the current inputs,
	// if any (possibly expired).
	token *storedToken
	// issued is set when a new token was written in this reconcile, with
	// the scopes the endpoint granted.
	issued bool
	scopes []string
	// requeueAfter is when to look again on success.
	requeueAfter time.Duration
	// repaired is set when the Secret was rewritten from the token it held.
	repaired bool
	// gated is set when a retry was held back by the backoff gate: status
	// stays as the failure left it.
	gated bool
	// hash is the config hash of the inputs, once the credentials were read.
	hash string
	// endpoint is the token endpoint used, once resolved.
	endpoint string
	// grant is the grant_type value of the request that issued the token.
	grant string
	// cleared is set when an expired token was removed from the Secret.
	cleared bool
}

func (r result) outcome() string {
	switch {
	case r.issued:
		return "issued"
	case r.repaired:
		return "repaired"
	case r.gated:
		return "backoff"
	default:
		return "unchanged"
	}
}

// Reconcile fetches the object, reconciles it, and patches its status once,
// in a single place, from what the reconcile found.
func (r *OAuthClientTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	obj := &v1alpha1.OAuthClientToken{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.clearGate(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !obj.DeletionTimestamp.IsZero() {
		// An owned target Secret (and the state Secret) go with the object
		// through garbage collection; an orphaned one stays; a merged-into
		// one loses tokensync's keys, under the finalizer.
		if err := r.finalize(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
		r.clearGate(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if err := r.syncFinalizer(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}

	orig := obj.DeepCopy()
	res, recErr := r.reconcile(ctx, obj)
	if recErr != nil {
		if _, isStalled := reasonOf(recErr); !isStalled {
			var te *transientError
			if !errors.As(recErr, &te) {
				// An API-server error (cache, list, read): let
				// controller-runtime retry with its rate limiter; the status
				// stays as it was.
				return ctrl.Result{}, recErr
			}
		}
	}
	requeue := r.summarize(ctx, obj, res, recErr)
	if recErr == nil && res.token != nil {
		if retry := r.restartRollouts(ctx, obj, res.token); retry > 0 {
			requeue = min(requeue, retry)
		}
	}

	if !equality.Semantic.DeepEqual(orig.Status, obj.Status) {
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("patching status: %w", err)
		}
	}
	if recErr != nil {
		reason, _ := reasonOf(recErr)
		log.Info("token not refreshed", "outcome", "failed", "reason", reason, "error", recErr.Error(), "retryIn", requeue.String())
	} else {
		log.V(1).Info("reconciled", "outcome", res.outcome(), "secret", obj.TargetName(), "requeueAfter", requeue.String())
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// reconcile makes the target Secret hold a valid token for the current spec
// and credentials. It returns a typed error (stalled or transient) for
// failures the status must report.
func (r *OAuthClientTokenReconciler) reconcile(ctx context.Context, obj *v1alpha1.OAuthClientToken) (result, error) {
	now := r.Clock.Now()
	obj.Status.SecretName = obj.TargetName()
	policy := creationPolicy(obj)

	if obj.Spec.Provider.TokenURL != "" {
		if err := r.checkTokenURL("tokenURL", obj.Spec.Provider.TokenURL); err != nil {
			return result{}, err
		}
	}
	tpls, err := templates(obj)
	if err != nil {
		return result{}, err
	}
	if err := r.checkPeers(ctx, obj); err != nil {
		return result{}, err
	}
	live, err := r.targetSecret(ctx, obj, policy)
	if err != nil {
		return result{}, err
	}
	in := &inputs{}
	hash, err := r.configHashOf(ctx, obj, live, in)
	if err != nil {
		return result{}, err
	}
	res := result{hash: hash}

	// A new value of the refresh-requested-at annotation forces a token.
	forced := obj.Annotations[v1alpha1.RefreshRequestedAnnotation] != obj.Status.LastHandledRefreshRequest &&
		obj.Annotations[v1alpha1.RefreshRequestedAnnotation] != ""
	current, ok := readStoredToken(obj, live, hash)
	if ok {
		current.inputsVersion = in.version
		res.token = &current
		if !forced && now.Before(current.renewAt) && now.Before(current.expiresAt) {
			// The Secret holds a valid token for these inputs: repair any
			// edited key or label from it, with no token request.
			ac := secretApplyConfig(obj, policy, current, hash)
			if !secretUpToDate(live, ac) {
				if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
					return res, transient(v1alpha1.ReasonSecretWriteFailed, 0, "writing Secret %s: %v", obj.TargetName(), err)
				}
				res.repaired = true
			}
			r.clearGate(client.ObjectKeyFromObject(obj))
			res.requeueAfter = current.renewAt.Sub(now)
			return res, nil
		}
	}

	// A token is due: the request needs the credentials themselves.
	if !in.read {
		if err := r.readCredentials(ctx, obj, in); err != nil {
			return res, err
		}
		if h := configHash(&obj.Spec.Provider, in); h != hash {
			// They changed after the Secret index last saw them: the
			// token held was obtained with other inputs.
			hash, res.hash, res.token = h, h, nil
		}
	}

	key := client.ObjectKeyFromObject(obj)
	if wait, held := r.gated(key, hash, now); held {
		res.gated = true
		res.requeueAfter = wait
		return res, nil
	}

	// TLS material and the endpoint are only needed to send a request.
	if err := r.readTLS(ctx, obj, in); err != nil {
		return res, err
	}
	if err := r.resolveEndpoint(ctx, obj, in); err != nil {
		return res, err
	}
	res.endpoint = in.endpoint
	var state refreshState
	if useRefreshToken(obj) {
		if state, err = r.readRefreshState(ctx, obj, hash, now); err != nil {
			return res, err
		}
	}

	issuedAt := now.Truncate(time.Second)
	started := time.Now()
	tok, grant, err := r.obtain(ctx, obj, in, state)
	var terr error
	if err != nil {
		terr = tokenError(in.endpoint, err)
	}
	r.Metrics.observeRequest(in.endpoint, time.Since(started), terr)
	if err != nil {
		if res.token != nil && !now.Before(res.token.expiresAt) && expiryPolicy(obj) == v1alpha1.ExpiryPolicyClear {
			// The stale token goes; its metadata stays, so status still
			// says when it expired.
			ac := secretApplyConfig(obj, policy, *res.token, hash)
			ac.Data = nil
			if werr := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); werr != nil {
				return res, transient(v1alpha1.ReasonSecretWriteFailed, 0, "clearing the expired token from Secret %s: %v", obj.TargetName(), werr)
			}
			res.cleared = true
		}
		return res, terr
	}
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = defaultLifetime(obj)
	}
	next := storedToken{
		accessToken: tok.AccessToken,
		tokenType:   tok.TokenType,
		issuedAt:    issuedAt,
		expiresAt:   issuedAt.Add(lifetime).Truncate(time.Second),
		// The inputs version of the credentials read for this request.
		inputsVersion: in.version,
	}
	next.renewAt = renewalTime(next.issuedAt, next.expiresAt, renewBefore(obj), r.minRefreshInterval(), r.Jitter).Truncate(time.Second)
	if !next.renewAt.After(now) {
		next.renewAt = now.Add(r.minRefreshInterval()).Truncate(time.Second)
	}
	if tpls != nil {
		view := viewOf(tok, next.issuedAt, next.expiresAt)
		if next.data, err = render(tpls, view); err != nil {
			return res, err
		}
		next.accessToken = ""
	}

	// The refresh token first: if the target write then fails, the next
	// attempt still holds a refresh token that works.
	if err := r.saveRefreshState(ctx, obj, hash, tok, state); err != nil {
		return res, err
	}
	ac := secretApplyConfig(obj, policy, next, hash)
	if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return res, transient(v1alpha1.ReasonSecretWriteFailed, 0, "writing Secret %s: %v", obj.TargetName(), err)
	}
	r.clearGate(key)
	res.token = &next
	res.issued = true
	res.scopes = tok.Scopes
	res.grant = grant
	res.requeueAfter = next.renewAt.Sub(now)
	return res, nil
}

// summarize records the outcome in status (conditions, timing, failures),
// emits events on transitions, and returns when to reconcile again.
func (r *OAuthClientTokenReconciler) summarize(ctx context.Context, obj *v1alpha1.OAuthClientToken, res result, recErr error) time.Duration {
	now := r.Clock.Now()
	st := &obj.Status
	gen := obj.Generation
	if res.gated {
		// A retry held back by backoff: nothing new to report.
		return res.requeueAfter
	}

	if recErr == nil {
		tok := res.token
		failedBefore := st.FailedAttempts
		hadToken := st.IssuedAt != nil
		st.TokenType = tok.tokenType
		st.IssuedAt = timePtr(tok.issuedAt)
		st.ExpiresAt = timePtr(tok.expiresAt)
		st.RenewAt = timePtr(tok.renewAt)
		if res.issued {
			if v := obj.Annotations[v1alpha1.RefreshRequestedAnnotation]; v != "" {
				st.LastHandledRefreshRequest = v
			}
			st.Scopes = res.scopes
			st.LastGrant = res.grant
			st.TokenEndpoint = oauth.RedactedURL(res.endpoint)
		}
		st.FailedAttempts = 0
		st.LastFailureTime = nil
		msg := fmt.Sprintf("Secret %s holds a token valid until %s; renewal at %s", obj.TargetName(), formatTime(tok.expiresAt), formatTime(tok.renewAt))
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady, msg)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		st.ObservedGeneration = gen
		if res.issued {
			switch {
			case failedBefore > 0:
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenRecovered, "Issue", "Token obtained after %d failed attempts; valid until %s", failedBefore, formatTime(tok.expiresAt))
			case hadToken:
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenRotated, "Rotate", "New token written to Secret %s; valid until %s", obj.TargetName(), formatTime(tok.expiresAt))
			default:
				r.event(obj, corev1.EventTypeNormal, v1alpha1.EventTokenIssued, "Issue", "Token written to Secret %s; valid until %s", obj.TargetName(), formatTime(tok.expiresAt))
			}
		}
		return max(res.requeueAfter, time.Second)
	}

	if res.endpoint != "" {
		st.TokenEndpoint = oauth.RedactedURL(res.endpoint)
	}
	reason, isStalled := reasonOf(recErr)
	msg := recErr.Error()
	prevReason := ""
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
		prevReason = c.Reason
	}
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		prevReason = c.Reason
	}
	st.FailedAttempts++
	st.LastFailureTime = timePtr(now.Truncate(time.Second))
	st.ObservedGeneration = gen
	if st.FailedAttempts == 1 || prevReason != reason {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventTokenRequestFailed, "Refresh", "%s: %s", reason, msg)
	}

	var delay time.Duration
	if isStalled {
		setCondition(obj, v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, msg)
		setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
		delay = backoff(st.FailedAttempts, stalledBaseBackoff, stalledMaxBackoff, 0)
	} else {
		var te *transientError
		retryAfter := time.Duration(0)
		if errors.As(recErr, &te) {
			retryAfter = te.retryAfter
		}
		delay = backoff(st.FailedAttempts, baseBackoff, maxBackoff, 0)
		tok := res.token
		if tok != nil && now.Before(tok.expiresAt) {
			// Retry before the current token expires, however long the
			// backoff has grown.
			if left := tok.expiresAt.Sub(now); delay > left/2 {
				delay = max(left/2, r.minRefreshInterval())
			}
		}
		delay = max(delay, retryAfter)
		setCondition(obj, v1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		switch {
		case tok != nil && now.Before(tok.expiresAt):
			// The consumer still holds a valid token: Ready stays True.
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady,
				fmt.Sprintf("Secret %s holds a token valid until %s; renewal failing, retrying: %s", obj.TargetName(), formatTime(tok.expiresAt), msg))
		case tok != nil && res.cleared:
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
				fmt.Sprintf("the token in Secret %s expired at %s and was removed (expiryPolicy Clear); renewal failing, retrying: %s", obj.TargetName(), formatTime(tok.expiresAt), msg))
		case tok != nil:
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
				fmt.Sprintf("the token in Secret %s expired at %s; renewal failing, retrying: %s", obj.TargetName(), formatTime(tok.expiresAt), msg))
		case st.ExpiresAt != nil && !now.Before(st.ExpiresAt.Time) && expiryPolicy(obj) == v1alpha1.ExpiryPolicyClear:
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired,
				fmt.Sprintf("the token expired at %s and was removed from Secret %s (expiryPolicy Clear); renewal failing, retrying: %s", formatTime(st.ExpiresAt.Time), obj.TargetName(), msg))
		default:
			setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		}
	}
	if res.hash != "" {
		// Hold back further requests with the same inputs until the
		// backoff has passed, whatever events arrive meanwhile.
		r.setGate(client.ObjectKeyFromObject(obj), res.hash, now.Add(delay))
	}
	return delay
}
