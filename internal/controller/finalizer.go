package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// Finalizer is set on OAuthClientTokens with creationPolicy Merge, so that
// deleting one removes tokensync's keys from a Secret that someone else
// owns and that garbage collection will not delete.
const Finalizer = "oauth.tokensync.io/merged-keys"

// syncFinalizer adds the finalizer when the policy is Merge and removes it
// otherwise.
func (r *OAuthClientTokenReconciler) syncFinalizer(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	want := creationPolicy(obj) == v1alpha1.CreationPolicyMerge
	if want == controllerutil.ContainsFinalizer(obj, Finalizer) {
		return nil
	}
	orig := obj.DeepCopy()
	if want {
		controllerutil.AddFinalizer(obj, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(obj, Finalizer)
	}
	if err := r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating finalizers: %w", err)
	}
	return nil
}

// finalize removes, for an object being deleted under the finalizer, the
// keys, labels and annotations tokensync wrote into the merged-into Secret:
// an apply with none of them makes the API server drop every field only
// tokensync's field manager owned. The user's keys stay.
func (r *OAuthClientTokenReconciler) finalize(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return nil
	}
	meta, err := r.secretMeta(ctx, obj.Namespace, obj.TargetName())
	if err != nil {
		return err
	}
	if meta != nil && ownedBy(meta, obj.Name) {
		ac := corev1ac.Secret(obj.TargetName(), obj.Namespace)
		if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing tokensync's keys from Secret %s: %w", obj.TargetName(), err)
		}
	}
	orig := obj.DeepCopy()
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	return nil
}
