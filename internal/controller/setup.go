package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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

// SetupWithManager registers the field indexes and the watches. opts tunes
// the controller (e.g. MaxConcurrentReconciles). Secrets are watched through
// a secretIndex, which keeps only the name and resourceVersion of each
// Secret; r.Client is wrapped so that the reconciler's own Secret
// writes do not trigger another reconcile (see secretVersions).
func (r *OAuthClientTokenReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	reader, err := r.setupCaches(ctx, mgr)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return fmt.Errorf("creating the Secret metadata client: %w", err)
	}
	secrets := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets"))
	index := &secretIndex{
		secrets:  secrets,
		versions: reader.versions,
		mapper:   r.tokensForSecret,
		all:      r.allTokens,
		log:      mgr.GetLogger().WithName("secret-index"),
	}
	// --watch-namespaces: list and watch each namespace on its own, so that
	// the manager needs no cluster-wide permission on Secrets.
	if len(r.Namespaces) > 0 {
		index.namespaces = map[string]metadata.ResourceInterface{}
		for _, ns := range r.Namespaces {
			index.namespaces[ns] = secrets.Namespace(ns)
		}
	}
	reader.index = index
	r.Client = versionsClient{Client: r.Client, versions: reader.versions}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.OAuthClientToken{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(index).
		WithOptions(opts).
		Named("oauthclienttoken").
		Complete(r)
}

// setupCaches registers the field indexes and fills in the readers the
// reconciler uses.
func (r *OAuthClientTokenReconciler) setupCaches(ctx context.Context, mgr ctrl.Manager) (*secretMetadataReader, error) {
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
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	reader := &secretMetadataReader{cache: mgr.GetCache(), api: r.APIReader, versions: &secretVersions{}}
	if r.SecretMetadata == nil {
		r.SecretMetadata = reader
	}
	return reader, nil
}

// allTokens lists every OAuthClientToken, for a resync after the Secret
// watch missed events.
func (r *OAuthClientTokenReconciler) allTokens(ctx context.Context) ([]reconcile.Request, error) {
	var list v1alpha1.OAuthClientTokenList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs, nil
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
