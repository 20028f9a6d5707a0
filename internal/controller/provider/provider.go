// Package provider is the controller of OAuthProviders and
// ClusterOAuthProviders: it checks that a provider can be used (its token
// endpoint is known, discovered from issuerURL when needed, and its
// credentials Secret exists with the keys its grant and auth method need)
// and reports it in kstatus conditions. It never obtains a token.
package provider

import (
	"context"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/index"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
)

// Recheck is how often a Ready provider is checked again (discovery
// documents are cached for an hour), and RetryTransient how soon after a
// transient failure.
const (
	Recheck        = time.Hour
	RetryTransient = 30 * time.Second
)

// Providers are read from the cache; their status is patched. Namespaces
// are read (get) only for ClusterOAuthProviders with a namespaceSelector.
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthproviders;clusteroauthproviders,verbs=list;watch
// +kubebuilder:rbac:groups=oauth.tokensync.io,resources=oauthproviders/status;clusteroauthproviders/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// Reconciler checks providers.
type Reconciler struct {
	// Client reads providers from the cache and patches their status.
	Client client.Client
	// API reads credentials and TLS material directly (never cached).
	API       client.Reader
	URLs      inputs.URLPolicy
	Discovery inputs.Discoverer
	// ClusterNamespace holds ClusterOAuthProviders' credentials.
	ClusterNamespace string
	// NoClusterProviders: ClusterOAuthProviders are not served.
	NoClusterProviders bool
}

// check returns the token endpoint of spec, whose credentials and TLS
// material live in ns, or why it cannot be used.
func (r *Reconciler) check(ctx context.Context, spec *v1alpha1.OAuthProviderSpec, ns string) (string, error) {
	// The provider as an inline object would carry it: the same reads and
	// checks as a token request, without the request.
	probe := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns},
		Spec: v1alpha1.OAuthClientTokenSpec{
			Provider:       *spec.ProviderSpec.DeepCopy(),
			CredentialsRef: spec.CredentialsRef,
		},
	}
	in, err := (&inputs.Reader{API: r.API}).ReadIn(ctx, probe, ns)
	if err != nil {
		return "", err
	}
	return inputs.Endpoint(ctx, probe, in.TLS, r.URLs, r.Discovery)
}

// status sets the conditions of st from a check's result and returns
// when to look again, or the API-server error to retry.
func status(st *v1alpha1.OAuthProviderStatus, generation int64, endpoint string, err error) (time.Duration, error) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		if len(msg) > 1024 {
			msg = msg[:1021] + "..."
		}
		apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation})
	}
	if err == nil {
		st.ObservedGeneration = generation
		st.TokenEndpoint = oauth.RedactedURL(endpoint)
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProviderReady, "the token endpoint is "+st.TokenEndpoint+" and the credentials Secret has the keys needed")
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
		return Recheck, nil
	}
	reason, stalled, ok := failure.ReasonOf(err)
	if !ok {
		if failure.IsThrottled(err) {
			return max(failure.RetryAfterOf(err), time.Second), nil
		}
		return 0, err
	}
	st.ObservedGeneration = generation
	set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
	if stalled {
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, err.Error())
		apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionReconciling)
		return Recheck, nil
	}
	set(v1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, err.Error())
	apimeta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionStalled)
	return max(RetryTransient, failure.RetryAfterOf(err)), nil
}

// namespaced reconciles OAuthProviders.
type namespaced struct{ *Reconciler }

func (r namespaced) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.OAuthProvider{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := p.DeepCopy()
	endpoint, err := r.check(ctx, &p.Spec, p.Namespace)
	after, err := status(&p.Status, p.Generation, endpoint, err)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(orig.Status, p.Status) {
		if err := r.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// cluster reconciles ClusterOAuthProviders.
type cluster struct{ *Reconciler }

func (r cluster) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.ClusterOAuthProvider{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := p.DeepCopy()
	endpoint, err := r.check(ctx, &p.Spec.OAuthProviderSpec, r.ClusterNamespace)
	after, err := status(&p.Status, p.Generation, endpoint, err)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(orig.Status, p.Status) {
		if err := r.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// ReconcileNamespaced and ReconcileCluster reconcile one provider (for
// tests, which call them directly).
func (r *Reconciler) ReconcileNamespaced(ctx context.Context, key types.NamespacedName) (ctrl.Result, error) {
	return namespaced{r}.Reconcile(ctx, ctrl.Request{NamespacedName: key})
}

// ReconcileCluster reconciles one ClusterOAuthProvider.
func (r *Reconciler) ReconcileCluster(ctx context.Context, name string) (ctrl.Result, error) {
	return cluster{r}.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
}

// SetupWithManager registers the controllers and their watches: the
// providers (spec changes), and, through the metadata index, the Secrets
// and ConfigMaps they read (with WatcherSources, which leave the token
// controller's suppression of its own writes alone).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, x *index.Index, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.OAuthProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("oauthprovider")
	for _, src := range x.WatcherSources(r.namespacedFor) {
		b = b.WatchesRawSource(src)
	}
	if err := b.Complete(namespaced{r}); err != nil {
		return err
	}
	if r.NoClusterProviders {
		return nil
	}
	c := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ClusterOAuthProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Named("clusteroauthprovider")
	for _, src := range x.WatcherSources(r.clusterFor) {
		c = c.WatchesRawSource(src)
	}
	return c.Complete(cluster{r})
}

func (r *Reconciler) namespacedFor(ctx context.Context, kind string, key types.NamespacedName) []reconcile.Request {
	if kind != "Secret" && kind != "ConfigMap" {
		return nil
	}
	var list v1alpha1.OAuthProviderList
	if err := r.Client.List(ctx, &list, client.InNamespace(key.Namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing OAuthProviders for an event", "kind", kind, "name", key.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if slices.Contains(providers.Refs(&list.Items[i].Spec), kind+"/"+key.Name) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

func (r *Reconciler) clusterFor(ctx context.Context, kind string, key types.NamespacedName) []reconcile.Request {
	if (kind != "Secret" && kind != "ConfigMap") || key.Namespace != r.ClusterNamespace {
		return nil
	}
	var list v1alpha1.ClusterOAuthProviderList
	if err := r.Client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing ClusterOAuthProviders for an event", "kind", kind, "name", key.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if slices.Contains(providers.Refs(&list.Items[i].Spec.OAuthProviderSpec), kind+"/"+key.Name) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return reqs
}
