// Package token is the OAuthClientToken reconciler. One reconcile reads the
// object, asks the Secret writer what its target Secret holds and whether it
// may write it, reads the inputs, asks the renewal policies whether a token
// is due, obtains one from the token client if so, hands it to the writer,
// and records the outcome in status once. Data flows one way: Secret →
// inputs → decision → token → Secret → status.
package token

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/metrics"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/internal/secrets"
)

// DefaultMinRefreshInterval is the default floor between two token requests
// for one object, whatever the token's lifetime.
const DefaultMinRefreshInterval = 10 * time.Second

// Finalizer is set on OAuthClientTokens whose keys are in a Secret someone
// else owns (creationPolicy Merge), so that deleting the object removes them.
const Finalizer = "oauth.tokensync.io/merged-keys"

// TokenSource obtains tokens from a token endpoint. *oauth.Client implements it.
type TokenSource interface {
	Token(ctx context.Context, req oauth.Request) (*oauth.Token, error)
}

// OAuthClientTokens are read from the cache only (list, watch); their
// finalizers and status are patched. The finalizers' update verb is what
// the OwnerReferencesPermissionEnforcement admission plugin checks before
// a Secret may block its owner's deletion.
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens,verbs=list;watch;patch
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens/status,verbs=patch
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthclienttokens/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconciler reconciles OAuthClientTokens.
type Reconciler struct {
	// Client reads OAuthClientTokens from the manager's cache and patches
	// them and their status.
	Client client.Client
	Writer *secrets.Writer
	Inputs *inputs.Reader
	Tokens TokenSource
	// ServiceAccounts obtains ServiceAccount tokens; the TokenRequest API
	// through Client when nil.
	ServiceAccounts ServiceAccountTokens
	Discovery       inputs.Discoverer
	URLs            inputs.URLPolicy
	Recorder        events.EventRecorder
	// Clock is injected so tests control time.
	Clock   clock.PassiveClock
	Metrics *metrics.Metrics
	// MinRefreshInterval is the floor between two token requests for one
	// object, so a tiny expires_in cannot make the controller hot-loop.
	MinRefreshInterval time.Duration
	// Jitter spreads renewal times (off in tests, for exact times).
	Jitter bool
	// MaxRequestsPerNamespace bounds the token requests (discovery
	// included) of one namespace under way at once, so that objects aimed
	// at an endpoint that never answers hold at most that many workers and
	// other namespaces' renewals go on; 0 means no bound. A request over
	// the bound is not sent: the object is looked at again shortly.
	MaxRequestsPerNamespace int
	// Providers resolves spec.providerRef and applies the manager's
	// --require-provider-ref policy; nil serves inline providers only.
	Providers *providers.Resolver

	// shared holds the tokens of providers with tokenSharing Shared.
	shared sharedTokens

	mu sync.Mutex
	// gates hold, per object, the earliest time the next token request
	// may be sent after a failure, for the inputs and target spec that
	// failed, so that watch events cannot bypass the backoff. In memory
	// only: after a restart one early retry is harmless.
	gates map[types.NamespacedName]gate
	// pending holds, per object, a token obtained but not written (a
	// later API call failed): it is written at the next attempt instead of
	// minting another.
	pending map[types.NamespacedName]*obtained
	// inflight counts, per namespace, the token requests under way.
	inflight map[string]int
	// handled holds, per object, the refresh request its last status
	// write recorded as handled: a reconcile that reads the object from a
	// cache not yet showing that write must not take the request for a new
	// one and mint a second token.
	handled map[types.NamespacedName]handledRefresh
}

type handledRefresh struct {
	uid   types.UID
	value string
}

type gate struct {
	uid       types.UID
	key       string
	notBefore time.Time
	// untilChange holds every request until the key changes (the API
	// server refused the Secret the spec describes).
	untilChange bool
}

// Reconcile reads the object, runs the reconcile, and patches its status
// once, from what the reconcile found.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &v1alpha1.OAuthClientToken{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if secrets.NeedsFinalizer(obj, nil) && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		// Before the first write into someone else's Secret.
		if err := r.patchFinalizer(ctx, obj, true); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := obj.DeepCopy()
	o := r.run(ctx, obj)
	if o.err != nil {
		if _, _, ok := failure.ReasonOf(o.err); !ok && !failure.IsThrottled(o.err) {
			// An API-server error (cache, list, read): controller-runtime
			// retries with its rate limiter; status stays as it was.
			return ctrl.Result{}, o.err
		}
	}
	requeue := r.summarize(obj, o)
	if err := r.syncFinalizer(ctx, obj, o); err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(orig.Status, obj.Status) {
		if err := r.Client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if v := obj.Status.LastHandledRefreshRequest; v != "" && v != orig.Status.LastHandledRefreshRequest {
			r.setHandled(req.NamespacedName, obj.UID, v)
		}
	}
	r.log(ctx, obj, o, requeue)
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func (r *Reconciler) log(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome, requeue time.Duration) {
	log := logf.FromContext(ctx)
	switch {
	case failure.IsThrottled(o.err):
		log.V(1).Info("token request held back by the manager's per-host limits", "retryIn", requeue.String())
	case o.err != nil:
		reason, _, _ := failure.ReasonOf(o.err)
		log.Info("token not refreshed", "outcome", "failed", "reason", reason, "error", o.err.Error(), "retryIn", requeue.String())
	default:
		log.V(1).Info("reconciled", "outcome", o.what(), "why", string(o.decision.Reason), "secret", obj.TargetName(), "requeueAfter", requeue.String())
	}
}

// finalize removes, for an object being deleted under the finalizer, its
// keys from Secrets it merged into. Secrets it created are deleted by
// garbage collection (Owner) or kept (Orphan).
func (r *Reconciler) finalize(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	r.forget(client.ObjectKeyFromObject(obj))
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return nil
	}
	if err := r.Writer.Finalize(ctx, obj); err != nil {
		return err
	}
	return r.patchFinalizer(ctx, obj, false)
}

// syncFinalizer keeps the finalizer while deleting the object must first
// remove its keys from a Secret it merged into, and removes it when no
// longer needed (only once nothing is left to release).
func (r *Reconciler) syncFinalizer(ctx context.Context, obj *v1alpha1.OAuthClientToken, o *outcome) error {
	has := controllerutil.ContainsFinalizer(obj, Finalizer)
	want := secrets.NeedsFinalizer(obj, o.target)
	if !want && has && (o.err != nil || obj.Status.SecretName != obj.TargetName()) {
		want = true // a merged-into Secret may still hold its keys
	}
	if want == has {
		return nil
	}
	return r.patchFinalizer(ctx, obj, want)
}

// patchFinalizer adds or removes the finalizer. It patches a copy, so that
// the status obj carries (about to be patched too) is not replaced by the
// server's.
func (r *Reconciler) patchFinalizer(ctx context.Context, obj *v1alpha1.OAuthClientToken, add bool) error {
	cp := obj.DeepCopy()
	if add {
		controllerutil.AddFinalizer(cp, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(cp, Finalizer)
	}
	if err := r.Client.Patch(ctx, cp, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	obj.Finalizers, obj.ResourceVersion = cp.Finalizers, cp.ResourceVersion
	return nil
}

func (r *Reconciler) minRefreshInterval() time.Duration {
	if r.MinRefreshInterval > 0 {
		return r.MinRefreshInterval
	}
	return DefaultMinRefreshInterval
}

func (r *Reconciler) schedule(obj *v1alpha1.OAuthClientToken) renewal.Schedule {
	s := renewal.Schedule{
		DefaultLifetime: v1alpha1.DefaultLifetimeSeconds * time.Second,
		MinInterval:     r.minRefreshInterval(),
		Jitter:          r.Jitter,
	}
	if rs := obj.Spec.Refresh; rs != nil {
		if rs.RenewBefore != nil {
			s.RenewBefore = rs.RenewBefore.Duration
		}
		if rs.DefaultLifetime != nil && rs.DefaultLifetime.Duration > 0 {
			s.DefaultLifetime = rs.DefaultLifetime.Duration
		}
	}
	return s
}

// gateOf returns until when the backoff for key holds obj's requests.
func (r *Reconciler) gateOf(obj *v1alpha1.OAuthClientToken, key string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gates[client.ObjectKeyFromObject(obj)]
	if !ok || g.uid != obj.UID || g.key != key {
		return time.Time{}
	}
	if g.untilChange {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return g.notBefore
}

func (r *Reconciler) setGate(obj *v1alpha1.OAuthClientToken, g gate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gates == nil {
		r.gates = map[types.NamespacedName]gate{}
	}
	g.uid = obj.UID
	r.gates[client.ObjectKeyFromObject(obj)] = g
}

func (r *Reconciler) clearGate(obj *v1alpha1.OAuthClientToken) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.gates, client.ObjectKeyFromObject(obj))
}

// pendingOf returns the token obtained for obj and not yet written.
func (r *Reconciler) pendingOf(obj *v1alpha1.OAuthClientToken) *obtained {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[client.ObjectKeyFromObject(obj)]
	if p == nil || p.uid != obj.UID {
		return nil
	}
	return p
}

func (r *Reconciler) setPending(obj *v1alpha1.OAuthClientToken, p *obtained) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	if p == nil {
		delete(r.pending, key)
		return
	}
	if r.pending == nil {
		r.pending = map[types.NamespacedName]*obtained{}
	}
	p.uid = obj.UID
	r.pending[key] = p
}

// namespaceRetry is how soon an object whose namespace had every request
// slot taken is looked at again (plus up to as much again, spread by name).
const namespaceRetry = 2 * time.Second

// acquire takes one of ns's request slots, or returns a Throttled error
// saying when to look again.
func (r *Reconciler) acquire(obj *v1alpha1.OAuthClientToken) error {
	if r.MaxRequestsPerNamespace <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight == nil {
		r.inflight = map[string]int{}
	}
	if r.inflight[obj.Namespace] >= r.MaxRequestsPerNamespace {
		spread := time.Duration(renewal.Seed(obj.Namespace, obj.Name)%1000) * namespaceRetry / 1000
		return &failure.Throttled{Msg: "every token request slot of namespace " + obj.Namespace + " is in use", RetryAfter: namespaceRetry + spread}
	}
	r.inflight[obj.Namespace]++
	return nil
}

func (r *Reconciler) release(ns string) {
	if r.MaxRequestsPerNamespace <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight[ns]--; r.inflight[ns] <= 0 {
		delete(r.inflight, ns)
	}
}

// forget drops what is kept in memory for a deleted object.
func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.gates, key)
	delete(r.pending, key)
	delete(r.handled, key)
}

func (r *Reconciler) setHandled(key types.NamespacedName, uid types.UID, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handled == nil {
		r.handled = map[types.NamespacedName]handledRefresh{}
	}
	r.handled[key] = handledRefresh{uid: uid, value: value}
}

// forceValue is the refresh request obj asks for that has not been handled
// yet ("" when none): neither according to its status nor to the last
// status this process wrote for it.
func (r *Reconciler) forceValue(obj *v1alpha1.OAuthClientToken) string {
	v := forceValue(obj)
	if v == "" {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.handled[client.ObjectKeyFromObject(obj)]; ok && h.uid == obj.UID && h.value == v {
		return ""
	}
	return v
}
