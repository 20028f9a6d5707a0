package token

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/index"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/providers"
	"github.com/tokensync/tokensync/internal/secrets"
)

// DependsIndex is the field index of OAuthClientTokens by the objects their
// inputs are read from ("Secret/name", "ConfigMap/name").
const DependsIndex = "tokensync.dependsOn"

// ProviderIndex is the field index of OAuthClientTokens by their
// spec.providerRef ("OAuthProvider/name", "ClusterOAuthProvider/name").
const ProviderIndex = "tokensync.providerRef"

// CacheOptions restricts the manager's cache of Secrets to the ones
// tokensync manages (by label), so that memory does not grow with unrelated
// Secrets, and slims everything it caches (slimObject).
func CacheOptions(opts cache.Options) cache.Options {
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&corev1.Secret{}] = cache.ByObject{
		Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedLabel: "true"}),
	}
	opts.DefaultTransform = slimObject
	return opts
}

// IndexFields registers the field indexes the reconciler and the Secret
// writer use. The target and inputs indexes are looked up only within a
// namespace, so, on a cache, they are registered without the
// all-namespaces copy of each value that controller-runtime's IndexField
// adds (a set per object and value, which the target index, whose values
// are unique, would pay for every object). The target index holds only
// the objects whose target is not named after themselves
// (secrets.TargetIndexValues; secrets.Claimants finds the others by name).
// The provider index is looked up across namespaces for
// ClusterOAuthProviders and keeps both.
func IndexFields(ctx context.Context, idx client.FieldIndexer) error {
	target := func(o client.Object) []string {
		return secrets.TargetIndexValues(o.(*v1alpha1.OAuthClientToken))
	}
	depends := func(o client.Object) []string {
		var out []string
		for _, ref := range inputs.Refs(o.(*v1alpha1.OAuthClientToken)) {
			out = append(out, string(ref.Kind)+"/"+ref.Name)
		}
		return out
	}
	for _, f := range []struct {
		name    string
		extract client.IndexerFunc
	}{{secrets.TargetIndex, target}, {DependsIndex, depends}} {
		if err := namespacedIndex(ctx, idx, f.name, f.extract); err != nil {
			return fmt.Errorf("indexing %s: %w", f.name, err)
		}
	}
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClientToken{}, ProviderIndex, func(o client.Object) []string {
		if v := providers.RefIndexValue(o.(*v1alpha1.OAuthClientToken)); v != "" {
			return []string{v}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing %s: %w", ProviderIndex, err)
	}
	return nil
}

// namespacedIndex registers field on the OAuthClientToken informer of idx
// with the keys controller-runtime's cache looks up for a List with
// InNamespace and MatchingFields ("field:<name>", "<namespace>/<value>"),
// and no others. An idx that is not a cache (a fake client) gets the
// usual IndexField.
func namespacedIndex(ctx context.Context, idx client.FieldIndexer, field string, extract client.IndexerFunc) error {
	c, ok := idx.(cache.Informers)
	if !ok {
		return idx.IndexField(ctx, &v1alpha1.OAuthClientToken{}, field, extract)
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.OAuthClientToken{})
	if err != nil {
		return err
	}
	return inf.AddIndexers(toolscache.Indexers{"field:" + field: func(raw any) ([]string, error) {
		o, ok := raw.(*v1alpha1.OAuthClientToken)
		if !ok {
			return nil, fmt.Errorf("index %s: %T is not an OAuthClientToken", field, raw)
		}
		vals := extract(o)
		keys := make([]string, 0, len(vals))
		for _, v := range vals {
			keys = append(keys, o.Namespace+"/"+v)
		}
		return keys, nil
	}})
}

// SetupWithManager registers the watches: OAuthClientTokens (spec and
// annotation changes; a retarget or deletion also wakes the other objects
// that name the Secret it let go of), and, through the index, every Secret
// and ConfigMap an object reads or writes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, x *index.Index, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.OAuthClientToken{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&v1alpha1.OAuthClientToken{}, handler.Funcs{
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				old, cur := e.ObjectOld.(*v1alpha1.OAuthClientToken), e.ObjectNew.(*v1alpha1.OAuthClientToken)
				if old.TargetName() != cur.TargetName() || (old.DeletionTimestamp.IsZero() && !cur.DeletionTimestamp.IsZero()) {
					r.enqueuePeers(ctx, q, old)
				}
				if !old.Status.IssuedAt.Equal(cur.Status.IssuedAt) {
					// A new token: the exchanges it is the subject of follow.
					for _, req := range r.tokensFor(ctx, string(inputs.OAuthClientTokenKind), client.ObjectKeyFromObject(cur)) {
						q.Add(req)
					}
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if o, ok := e.Object.(*v1alpha1.OAuthClientToken); ok {
					r.enqueuePeers(ctx, q, o)
				}
			},
		}).
		WithOptions(opts).
		Named("oauthclienttoken")
	if r.Providers != nil {
		// An edited, created or deleted provider: every object using it.
		b = b.Watches(&v1alpha1.OAuthProvider{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.tokensOfProvider(ctx, v1alpha1.ProviderKindNamespaced, o.GetNamespace(), o.GetName())
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
		if !r.Providers.Policy.NoClusterProviders {
			b = b.Watches(&v1alpha1.ClusterOAuthProvider{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
				return r.tokensOfProvider(ctx, v1alpha1.ProviderKindCluster, "", o.GetName())
			}), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
		}
	}
	for _, src := range x.Sources(r.tokensFor) {
		b = b.WatchesRawSource(src)
	}
	return b.Complete(r)
}

// enqueuePeers queues the other objects that name o's target Secret (or
// the one it wrote before a retarget): one of them may take it over now.
func (r *Reconciler) enqueuePeers(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], o *v1alpha1.OAuthClientToken) {
	names := []string{o.TargetName()}
	if n := o.Status.SecretName; n != "" && n != names[0] {
		names = append(names, n)
	}
	for _, name := range names {
		peers, err := secrets.Claimants(ctx, r.Client, o.Namespace, name)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClientTokens that name a released Secret", "secret", name)
			continue
		}
		for i := range peers {
			if peers[i].UID != o.UID {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&peers[i])})
			}
		}
	}
}

// tokensFor maps a Secret or ConfigMap event to the objects that read it
// as an input or write it as their target: rotated credentials or TLS
// material get a new token at once, a deleted or edited target Secret is
// repaired, a Secret created for creationPolicy Merge is filled, and the
// objects waiting for a Secret another one let go of try again.
func (r *Reconciler) tokensFor(ctx context.Context, kind string, key types.NamespacedName) []reconcile.Request {
	var reqs []reconcile.Request
	var list v1alpha1.OAuthClientTokenList
	if err := r.Client.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingFields{DependsIndex: kind + "/" + key.Name}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClientTokens for an event", "kind", kind, "name", key.Name)
	}
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	if kind == "Secret" {
		targets, err := secrets.Claimants(ctx, r.Client, key.Namespace, key.Name)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClientTokens for an event", "kind", kind, "name", key.Name)
		}
		for i := range targets {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&targets[i])})
		}
	}
	if kind == "Secret" || kind == "ConfigMap" {
		reqs = append(reqs, r.tokensOfProviderInput(ctx, kind, key)...)
	}
	return reqs
}

// tokensOfProvider lists the objects that reference a provider: in ns for
// an OAuthProvider, everywhere for a ClusterOAuthProvider.
func (r *Reconciler) tokensOfProvider(ctx context.Context, kind v1alpha1.ProviderKind, ns, name string) []reconcile.Request {
	opts := []client.ListOption{client.MatchingFields{ProviderIndex: string(kind) + "/" + name}}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	var list v1alpha1.OAuthClientTokenList
	if err := r.Client.List(ctx, &list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClientTokens of a provider", "kind", kind, "name", name)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// tokensOfProviderInput maps an event of a Secret or ConfigMap that a
// provider reads (its credentials, its TLS material) to the objects that
// use the provider: a rotated client secret gets them a new token at once.
func (r *Reconciler) tokensOfProviderInput(ctx context.Context, kind string, key types.NamespacedName) []reconcile.Request {
	if r.Providers == nil {
		return nil
	}
	ref := kind + "/" + key.Name
	var reqs []reconcile.Request
	var nsList v1alpha1.OAuthProviderList
	if err := r.Client.List(ctx, &nsList, client.InNamespace(key.Namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing OAuthProviders for an event", "kind", kind, "name", key.Name)
	}
	for i := range nsList.Items {
		if slices.Contains(providers.Refs(&nsList.Items[i].Spec), ref) {
			reqs = append(reqs, r.tokensOfProvider(ctx, v1alpha1.ProviderKindNamespaced, key.Namespace, nsList.Items[i].Name)...)
		}
	}
	if r.Providers.Policy.NoClusterProviders || key.Namespace != r.Providers.Policy.ClusterNamespace {
		return reqs
	}
	var clList v1alpha1.ClusterOAuthProviderList
	if err := r.Client.List(ctx, &clList); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing ClusterOAuthProviders for an event", "kind", kind, "name", key.Name)
	}
	for i := range clList.Items {
		if slices.Contains(providers.Refs(&clList.Items[i].Spec.OAuthProviderSpec), ref) {
			reqs = append(reqs, r.tokensOfProvider(ctx, v1alpha1.ProviderKindCluster, "", clList.Items[i].Name)...)
		}
	}
	return reqs
}

// NewReconciler wires a Reconciler's readers and writer: c writes and
// reads the manager's cache, api reads the API server directly, x is the
// metadata index and signer signs the records on target Secrets. The
// caller sets the token client and the policies.
func NewReconciler(c client.Client, api client.Reader, x *index.Index, signer *secrets.Signer) *Reconciler {
	r := &Reconciler{
		Client: c,
		Writer: &secrets.Writer{Client: c, API: api, Index: x, Signer: signer},
	}
	r.Inputs = &inputs.Reader{
		API: api,
		Versions: func(kind inputs.Kind, key types.NamespacedName) (string, bool) {
			switch kind {
			case inputs.ConfigMapKind:
				return x.ConfigMap(key)
			case inputs.ServiceAccountKind:
				return x.ServiceAccount(key)
			case inputs.OAuthClientTokenKind:
				return subjectVersion(c, key)
			}
			return x.Secret(key)
		},
		Subjects: subjects(c, r.Writer, func() time.Time { return r.Clock.Now() }),
	}
	return r
}

// QueueOptions are the work queue settings of the manager's controllers
// (cmd/main.go sets them on every controller, and the tests that run the
// whole controller use them too): controller-runtime's priority queue,
// with the per-object exponential backoff (5 ms doubling to 1,000 s) as
// its rate limiter, set here so that it stays the limiter whichever queue
// runs. The default limiter of the plain delaying queue adds one bucket of
// 10 retries per second shared by all objects: an API server outage that
// failed 5,000 reconciles would retry the last after 8 minutes.
//
// The plain queue keeps less per waiting object (about 100 bytes against
// 800), but was measured to cost more: a wake-up it had scheduled stays
// scheduled when an event reconciles the object earlier, and fires again
// (make bench at N=300: 1.17 reconciles and 2.01 writes per refresh,
// against 1.10 and 2.00 with the priority queue; docs/performance.md).
func QueueOptions[T comparable](o controller.TypedOptions[T]) controller.TypedOptions[T] {
	if o.RateLimiter == nil {
		o.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[T](5*time.Millisecond, 1000*time.Second)
	}
	return o
}
