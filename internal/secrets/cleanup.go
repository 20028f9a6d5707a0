package secrets

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// Release lets go of Secret name, which obj wrote before it was retargeted
// (or before it was deleted), as the policy it was written with says: a
// Secret tokensync created with obj's controller reference (Owner) is
// deleted, one without it (Orphan) is kept, and tokensync's keys, labels
// and annotations are removed from one it merged into. Its state Secret is
// deleted. A Secret that obj no longer writes (another object took it) is
// left alone.
func (w *Writer) Release(ctx context.Context, obj *v1alpha1.OAuthClientToken, name string) error {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: name}
	s := &corev1.Secret{}
	err := w.API.Get(ctx, key, s)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading Secret %s: %w", name, err)
	case s.Annotations[v1alpha1.OwnerAnnotation] != obj.Name || s.Labels[v1alpha1.ManagedLabel] != "true":
	default:
		switch originOf(s, func() bool { return w.legacyCreated(ctx, key) }, func() bool { return w.Signer.intact(s) }) {
		case Created:
			if hasControllerRef(s, obj) {
				if err := w.deleteExactly(ctx, s); err != nil {
					return err
				}
			}
		case Merged:
			if err := w.unmerge(ctx, key); err != nil {
				return err
			}
		}
	}
	return w.deleteState(ctx, obj, name)
}

// Finalize removes tokensync's keys from the Secrets obj merged into, for
// an object being deleted: its target and the one it wrote before a
// retarget not yet released. Secrets it created go with garbage collection
// (Owner) or stay (Orphan).
func (w *Writer) Finalize(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	for _, name := range namesOf(obj) {
		key := types.NamespacedName{Namespace: obj.Namespace, Name: name}
		s, err := w.read(ctx, key)
		if err != nil {
			return err
		}
		if s == nil || s.Annotations[v1alpha1.OwnerAnnotation] != obj.Name {
			continue
		}
		if originOf(s, func() bool { return w.legacyCreated(ctx, key) }, func() bool { return w.Signer.intact(s) }) == Merged {
			if err := w.unmerge(ctx, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// NeedsFinalizer reports whether deleting obj must first remove its keys
// from a Secret it merged into: with creationPolicy Merge, or while the
// Secret t obj writes is a merged one.
func NeedsFinalizer(obj *v1alpha1.OAuthClientToken, t *Target) bool {
	if Policy(obj) == v1alpha1.CreationPolicyMerge {
		return true
	}
	return t != nil && t.Origin == Merged && t.Owner == obj.Name
}

func namesOf(obj *v1alpha1.OAuthClientToken) []string {
	names := []string{obj.TargetName()}
	if n := obj.Status.SecretName; n != "" && n != names[0] {
		names = append(names, n)
	}
	return names
}

// unmerge applies an empty configuration: the API server drops every field
// only tokensync's field manager owned, and the Secret's creator's keys
// stay.
func (w *Writer) unmerge(ctx context.Context, key types.NamespacedName) error {
	if err := w.applySecret(ctx, corev1ac.Secret(key.Name, key.Namespace)); err != nil && !apierrors.IsNotFound(err) {
		return failure.NewTransient(v1alpha1.ReasonSecretWriteFailed, 0, "removing tokensync's keys from Secret %s: %v", key.Name, apiMessage(err))
	}
	return nil
}

// deleteExactly deletes s as read, not a Secret that replaced it.
func (w *Writer) deleteExactly(ctx context.Context, s *corev1.Secret) error {
	uid, rv := s.UID, s.ResourceVersion
	err := w.Client.Delete(ctx, s, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return failure.NewTransient(v1alpha1.ReasonSecretWriteFailed, 0, "deleting Secret %s: %v", s.Name, apiMessage(err))
	}
	if apierrors.IsConflict(err) {
		return fmt.Errorf("secret %s changed while being deleted; retrying", s.Name)
	}
	return nil
}

func hasControllerRef(s *corev1.Secret, obj *v1alpha1.OAuthClientToken) bool {
	for _, ref := range s.OwnerReferences {
		if ref.UID == obj.UID && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}
