package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// Field indexes on OAuthClientToken, used to map Secret events to the objects
// that depend on them.
const (
	credentialsIndex = "spec.credentialsRef.name"
	targetIndex      = "spec.target.name"
)

var secretTypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}

func creationPolicy(obj *v1alpha1.OAuthClientToken) v1alpha1.CreationPolicy {
	if obj.Spec.Target != nil && obj.Spec.Target.CreationPolicy != "" {
		return obj.Spec.Target.CreationPolicy
	}
	return v1alpha1.CreationPolicyOwner
}

func expiryPolicy(obj *v1alpha1.OAuthClientToken) v1alpha1.ExpiryPolicy {
	if obj.Spec.Target != nil && obj.Spec.Target.ExpiryPolicy != "" {
		return obj.Spec.Target.ExpiryPolicy
	}
	return v1alpha1.ExpiryPolicyKeep
}

func defaultLifetime(obj *v1alpha1.OAuthClientToken) time.Duration {
	if r := obj.Spec.Refresh; r != nil && r.DefaultLifetime != nil && r.DefaultLifetime.Duration > 0 {
		return r.DefaultLifetime.Duration
	}
	return v1alpha1.DefaultLifetimeSeconds * time.Second
}

func renewBefore(obj *v1alpha1.OAuthClientToken) time.Duration {
	if r := obj.Spec.Refresh; r != nil && r.RenewBefore != nil {
		return r.RenewBefore.Duration
	}
	return 0
}

func (r *OAuthClientTokenReconciler) minRefreshInterval() time.Duration {
	if r.MinRefreshInterval > 0 {
		return r.MinRefreshInterval
	}
	return DefaultMinRefreshInterval
}

// checkPeers refuses a target Secret that an older OAuthClientToken in the
// namespace already names: the first one keeps it, neither overwrites the
// other.
func (r *OAuthClientTokenReconciler) checkPeers(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	var peers v1alpha1.OAuthClientTokenList
	if err := r.List(ctx, &peers, client.InNamespace(obj.Namespace), client.MatchingFields{targetIndex: obj.TargetName()}); err != nil {
		return fmt.Errorf("listing OAuthClientTokens: %w", err)
	}
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.UID == obj.UID || !p.DeletionTimestamp.IsZero() {
			continue
		}
		if olderThan(p, obj) {
			return stalled(v1alpha1.ReasonSecretConflict, "Secret %s is already written by OAuthClientToken %s; choose another target.name", obj.TargetName(), p.Name)
		}
	}
	return nil
}

func olderThan(a, b *v1alpha1.OAuthClientToken) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// targetSecret checks who the target Secret belongs to and returns it when
// tokensync manages it (nil when it does not exist yet or is to be merged
// into for the first time).
func (r *OAuthClientTokenReconciler) targetSecret(ctx context.Context, obj *v1alpha1.OAuthClientToken, policy v1alpha1.CreationPolicy) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.TargetName()}
	meta := &metav1.PartialObjectMetadata{TypeMeta: secretTypeMeta}
	if err := r.SecretMetadata.Get(ctx, key, meta); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading Secret %s metadata: %w", key.Name, err)
		}
		if policy == v1alpha1.CreationPolicyMerge {
			return nil, stalled(v1alpha1.ReasonTargetSecretNotFound, "Secret %s does not exist; creationPolicy Merge writes into an existing Secret (create it, or use creationPolicy Owner)", key.Name)
		}
		return nil, nil
	}
	managed := meta.Labels[v1alpha1.ManagedLabel] == "true"
	if owner := meta.Annotations[v1alpha1.OwnerAnnotation]; managed && owner != obj.Name {
		// Written by another OAuthClientToken: refuse while that one
		// exists, adopt what a deleted one left behind.
		other := &v1alpha1.OAuthClientToken{}
		err := r.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: owner}, other)
		if err == nil {
			return nil, stalled(v1alpha1.ReasonSecretConflict, "Secret %s is written by OAuthClientToken %s; choose another target.name", key.Name, owner)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading OAuthClientToken %s: %w", owner, err)
		}
	}
	if !managed {
		if policy != v1alpha1.CreationPolicyMerge {
			return nil, stalled(v1alpha1.ReasonSecretConflict, "Secret %s exists and was not created by tokensync; tokensync will not take it over with creationPolicy %s (delete it, choose another target.name, or use creationPolicy Merge)", key.Name, policy)
		}
		return nil, nil
	}
	for _, ref := range meta.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.UID != obj.UID && policy == v1alpha1.CreationPolicyOwner {
			if ref.Kind != "OAuthClientToken" {
				return nil, stalled(v1alpha1.ReasonSecretConflict, "Secret %s is controlled by %s %s", key.Name, ref.Kind, ref.Name)
			}
		}
	}
	live := &corev1.Secret{}
	err := r.Get(ctx, key, live)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	if apierrors.IsNotFound(err) || live.ResourceVersion != meta.ResourceVersion {
		// The managed-Secret cache lags the metadata cache (typically
		// right after tokensync wrote the Secret): read it directly rather
		// than take a stale view for a missing token and mint another.
		live = &corev1.Secret{}
		if err := r.APIReader.Get(ctx, key, live); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
		}
	}
	return live, nil
}

func (r *OAuthClientTokenReconciler) gated(key types.NamespacedName, hash string, now time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gates[key]
	if !ok || g.hash != hash || !now.Before(g.notBefore) {
		return 0, false
	}
	return g.notBefore.Sub(now), true
}

func (r *OAuthClientTokenReconciler) setGate(key types.NamespacedName, hash string, notBefore time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gates == nil {
		r.gates = map[types.NamespacedName]gate{}
	}
	r.gates[key] = gate{hash: hash, notBefore: notBefore}
}

func (r *OAuthClientTokenReconciler) clearGate(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.gates, key)
}

func (r *OAuthClientTokenReconciler) event(obj *v1alpha1.OAuthClientToken, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}

func setCondition(obj *v1alpha1.OAuthClientToken, condType string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            truncate(msg, 1024),
		ObservedGeneration: obj.Generation,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC())
	return &mt
}
