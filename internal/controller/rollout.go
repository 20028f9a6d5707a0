package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// rolloutRetryInterval is how soon restarting the rolloutRestartTargets is
// tried again after a failure. The token is fine meanwhile; only consumers
// that read it from environment variables wait for it.
const rolloutRetryInterval = time.Minute

// restartRollouts bumps the pod-template annotation of every
// rolloutRestartTargets workload when the token in the Secret was issued at
// another time than the one they were last restarted for. It records the
// token it restarted them for in status, and returns how soon to try again
// when a workload could not be patched (0 when nothing is left to do).
//
// The patch is idempotent (the annotation's value is the token's issue time),
// so a retry after a lost status write rolls nothing out twice.
func (r *OAuthClientTokenReconciler) restartRollouts(ctx context.Context, obj *v1alpha1.OAuthClientToken, tok *storedToken) time.Duration {
	st := &obj.Status
	targets := obj.Spec.RolloutRestartTargets
	if len(targets) == 0 {
		st.RolloutRestartedFor = nil
		return 0
	}
	issued := metav1.NewTime(tok.issuedAt.UTC())
	if st.RolloutRestartedFor == nil {
		// The first token, or targets just named: they start with this
		// token, nothing to roll out.
		st.RolloutRestartedFor = &issued
		return 0
	}
	if st.RolloutRestartedFor.Equal(&issued) {
		return 0
	}

	value := issued.UTC().Format(time.RFC3339)
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{v1alpha1.RestartedAtAnnotation: value},
		}}},
	})
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	var restarted, missing, failed []string
	for _, t := range targets {
		w := workload(t.Kind)
		w.SetNamespace(obj.Namespace)
		w.SetName(t.Name)
		ref := string(t.Kind) + "/" + t.Name
		err := r.Patch(ctx, w, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager))
		switch {
		case err == nil:
			restarted = append(restarted, ref)
		case apierrors.IsNotFound(err):
			missing = append(missing, ref)
		case apierrors.IsForbidden(err):
			failed = append(failed, fmt.Sprintf("%s: forbidden: the manager needs patch on %ss in group apps (see config/rollout-restart)", ref, strings.ToLower(string(t.Kind))))
		default:
			failed = append(failed, fmt.Sprintf("%s: %v", ref, err))
		}
	}
	if len(missing) > 0 {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventRolloutRestartSkipped, "RolloutRestart",
			"Not restarted after the token rotation, not found: %s", strings.Join(missing, ", "))
	}
	if len(restarted) > 0 {
		r.event(obj, corev1.EventTypeNormal, v1alpha1.EventRolloutRestarted, "RolloutRestart",
			"Restarted after the token rotation: %s", strings.Join(restarted, ", "))
	}
	if len(failed) > 0 {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventRolloutRestartFailed, "RolloutRestart",
			"Could not restart after the token rotation, retrying in %s: %s", rolloutRetryInterval, strings.Join(failed, "; "))
		return rolloutRetryInterval
	}
	st.RolloutRestartedFor = &issued
	return 0
}

func workload(kind v1alpha1.RolloutKind) client.Object {
	switch kind {
	case v1alpha1.RolloutKindStatefulSet:
		return &appsv1.StatefulSet{}
	case v1alpha1.RolloutKindDaemonSet:
		return &appsv1.DaemonSet{}
	default:
		return &appsv1.Deployment{}
	}
}
