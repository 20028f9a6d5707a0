package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// CacheOptions restricts the manager's cache of Secrets to the ones tokensync
// manages, so that memory does not grow with unrelated Secrets. Use it for
// the manager's cache.Options.
func CacheOptions(opts cache.Options) cache.Options {
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&corev1.Secret{}] = cache.ByObject{
		Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedLabel: "true"}),
	}
	opts.DefaultTransform = cache.TransformStripManagedFields()
	return opts
}

// secretMetadataCache is a cache of the metadata of every Secret. It is
// separate from the manager's cache, whose Secret informer only sees managed
// Secrets. Implementing GetCache makes the manager start it with its other
// caches, before controllers and regardless of leader election.
type secretMetadataCache struct{ cache.Cache }

func (c secretMetadataCache) GetCache() cache.Cache { return c.Cache }

// keepAnnotations are the only annotations kept in the metadata cache:
// others (kubectl's last-applied-configuration can hold a whole Secret) would
// only cost memory.
var keepAnnotations = []string{v1alpha1.OwnerAnnotation}

func trimSecretMetadata(in any) (any, error) {
	m, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil
	}
	m.ManagedFields = nil
	var ann map[string]string
	for _, k := range keepAnnotations {
		if v, ok := m.Annotations[k]; ok {
			if ann == nil {
				ann = map[string]string{}
			}
			ann[k] = v
		}
	}
	m.Annotations = ann
	return m, nil
}

// SetupWithManager registers the field indexes, the Secret metadata cache
// and the watches. opts tunes the controller (e.g. MaxConcurrentReconciles).
func (r *OAuthClientTokenReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	metaCache, err := r.setupCaches(ctx, mgr)
	if err != nil {
		return err
	}
	secretMeta := &metav1.PartialObjectMetadata{TypeMeta: secretTypeMeta}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.OAuthClientToken{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(source.Kind(metaCache, secretMeta,
			handler.TypedEnqueueRequestsFromMapFunc(r.tokensForSecret))).
		WithOptions(opts).
		Named("oauthclienttoken").
		Complete(r)
}

// setupCaches registers the field indexes and the Secret metadata cache, and
// fills in the readers the reconciler uses.
func (r *OAuthClientTokenReconciler) setupCaches(ctx context.Context, mgr ctrl.Manager) (cache.Cache, error) {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClientToken{}, credentialsIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.OAuthClientToken).Spec.CredentialsRef.Name}
	}); err != nil {
		return nil, fmt.Errorf("indexing %s: %w", credentialsIndex, err)
	}
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClientToken{}, targetIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.OAuthClientToken).TargetName()}
	}); err != nil {
		return nil, fmt.Errorf("indexing %s: %w", targetIndex, err)
	}

	metaCache, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: trimSecretMetadata,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the Secret metadata cache: %w", err)
	}
	if err := mgr.Add(secretMetadataCache{metaCache}); err != nil {
		return nil, err
	}
	if r.SecretMetadata == nil {
		r.SecretMetadata = metaCache
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return metaCache, nil
}

// tokensForSecret maps a Secret event to the OAuthClientTokens that read it
// as credentials or write it as their target: a rotated client secret gets a
// new token at once, a deleted or edited target Secret is repaired, and a
// Secret created for creationPolicy Merge is filled.
func (r *OAuthClientTokenReconciler) tokensForSecret(ctx context.Context, s *metav1.PartialObjectMetadata) []reconcile.Request {
	var reqs []reconcile.Request
	for _, field := range []string{credentialsIndex, targetIndex} {
		var list v1alpha1.OAuthClientTokenList
		if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingFields{field: s.Name}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClientTokens for a Secret event", "secret", s.Name)
			continue
		}
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
