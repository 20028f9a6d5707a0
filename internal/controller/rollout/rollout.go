// Package rollout restarts the workloads named in an OAuthClientToken's
// rolloutRestartTargets after its token rotates, so that pods reading the
// token from environment variables get the new one. It is its own
// controller: it watches the token's issue time in status, restarts only
// workloads whose pod template references the target Secret, at most once
// per interval, and needs RBAC the default install does not grant
// (config/rollout-restart).
package rollout

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
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// FieldManager is the field manager of the restart patches.
const FieldManager = "tokensync"

// RetryInterval is how soon restarting is tried again after a failure. The
// token is fine meanwhile; only consumers that read it from environment
// variables wait for it.
const RetryInterval = time.Minute

// DefaultMinInterval is the default shortest time between two restarts of
// one workload, however often the tokens it reads rotate.
const DefaultMinInterval = 5 * time.Minute

// Reconciler restarts rolloutRestartTargets.
type Reconciler struct {
	// Client reads OAuthClientTokens from the manager's cache and patches
	// their status and the workloads.
	Client client.Client
	// API reads workloads directly: they are read once per rotation, not
	// worth a cache (nor the list and watch RBAC one needs).
	API      client.Reader
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// MinInterval is the shortest time between two restarts of one
	// workload (--min-rollout-restart-interval), kept on the workload in
	// LastRestartAnnotation; DefaultMinInterval when 0.
	MinInterval time.Duration
}

// SetupWithManager watches OAuthClientTokens whose token or targets changed.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	changed := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, cur := e.ObjectOld.(*v1alpha1.OAuthClientToken), e.ObjectNew.(*v1alpha1.OAuthClientToken)
			return old.Generation != cur.Generation || !old.Status.IssuedAt.Equal(cur.Status.IssuedAt)
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.OAuthClientToken{}, builder.WithPredicates(changed)).
		WithOptions(opts).
		Named("rolloutrestart").
		Complete(r)
}

func (r *Reconciler) minInterval() time.Duration {
	if r.MinInterval > 0 {
		return r.MinInterval
	}
	return DefaultMinInterval
}

// Reconcile restarts the targets of one object when its token was issued
// at another time than the one they were last restarted for.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &v1alpha1.OAuthClientToken{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	orig := obj.DeepCopy()
	retry := r.restart(ctx, obj)
	if !equalTimes(orig.Status.RolloutRestartedFor, obj.Status.RolloutRestartedFor) || !equalTimes(orig.Status.LastRolloutRestart, obj.Status.LastRolloutRestart) {
		if err := r.Client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

func equalTimes(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// lastRestart is when tokensync last restarted workload w, from its
// LastRestartAnnotation. A time in the future is no restart tokensync made
// (the workload's owner may write anything there) and is ignored.
func (r *Reconciler) lastRestart(w client.Object, now time.Time) (time.Time, bool) {
	last, err := time.Parse(time.RFC3339, w.GetAnnotations()[v1alpha1.LastRestartAnnotation])
	if err != nil || last.After(now) {
		return time.Time{}, false
	}
	return last, true
}

// restart does the work and returns how soon to look again (0: nothing
// left to do).
func (r *Reconciler) restart(ctx context.Context, obj *v1alpha1.OAuthClientToken) time.Duration {
	st := &obj.Status
	if len(obj.Spec.RolloutRestartTargets) == 0 {
		st.RolloutRestartedFor = nil
		return 0
	}
	if st.IssuedAt == nil {
		return 0
	}
	issued := *st.IssuedAt
	if st.RolloutRestartedFor == nil {
		// The first token, or targets just named: they start with this
		// token, nothing to roll out.
		st.RolloutRestartedFor = &issued
		return 0
	}
	if st.RolloutRestartedFor.Equal(&issued) {
		return 0
	}
	now := r.Clock.Now()

	value := issued.UTC().Format(time.RFC3339)
	secret := obj.TargetName()
	var restarted, missing, unrelated, failed, deferred []string
	var wait time.Duration
	for _, t := range obj.Spec.RolloutRestartTargets {
		ref := string(t.Kind) + "/" + t.Name
		w, tpl := workload(t.Kind)
		reader := r.API
		if reader == nil {
			reader = r.Client
		}
		err := reader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: t.Name}, w)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, ref)
			continue
		case err != nil:
			failed = append(failed, describe(ref, t.Kind, "get", err))
			continue
		case !References(tpl(), secret):
			unrelated = append(unrelated, ref)
			continue
		case tpl().Annotations[v1alpha1.RestartedAtAnnotation] == value:
			continue // already restarted for this token (a retry after a failure elsewhere)
		}
		// The interval is the workload's, whichever object restarted it
		// last: n objects whose Secrets it reads do not make n restarts.
		if last, ok := r.lastRestart(w, now); ok {
			if next := last.Add(r.minInterval()); now.Before(next) {
				deferred = append(deferred, ref)
				if d := next.Sub(now); wait == 0 || d < wait {
					wait = d
				}
				continue
			}
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{
				v1alpha1.LastRestartAnnotation: now.UTC().Truncate(time.Second).Format(time.RFC3339),
			}},
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
				"annotations": map[string]string{v1alpha1.RestartedAtAnnotation: value},
			}}},
		})
		if err != nil {
			panic(err) // a map of strings always marshals
		}
		if err := r.Client.Patch(ctx, w, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
			failed = append(failed, describe(ref, t.Kind, "patch", err))
			continue
		}
		restarted = append(restarted, ref)
	}
	if len(missing) > 0 {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventRolloutRestartSkipped, "Not restarted after the token rotation, not found: %s", strings.Join(missing, ", "))
	}
	if len(unrelated) > 0 {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventRolloutRestartSkipped, "Not restarted after the token rotation, their pod template does not reference Secret %s: %s", secret, strings.Join(unrelated, ", "))
	}
	if len(restarted) > 0 {
		r.event(obj, corev1.EventTypeNormal, v1alpha1.EventRolloutRestarted, "Restarted after the token rotation: %s", strings.Join(restarted, ", "))
		st.LastRolloutRestart = &metav1.Time{Time: now.Truncate(time.Second)}
	}
	if len(failed) > 0 {
		r.event(obj, corev1.EventTypeWarning, v1alpha1.EventRolloutRestartFailed, "Could not restart after the token rotation, retrying in %s: %s", RetryInterval, strings.Join(failed, "; "))
		if wait == 0 || RetryInterval < wait {
			wait = RetryInterval
		}
	}
	if len(deferred) > 0 {
		r.event(obj, corev1.EventTypeNormal, v1alpha1.EventRolloutRestartDeferred, "Restarted less than %s ago (for another token), restarting in %s: %s", r.minInterval(), wait.Round(time.Second), strings.Join(deferred, ", "))
	}
	if wait > 0 {
		return wait
	}
	st.RolloutRestartedFor = &issued
	return 0
}

func describe(ref string, kind v1alpha1.RolloutKind, verb string, err error) string {
	if apierrors.IsForbidden(err) {
		return fmt.Sprintf("%s: forbidden: the manager needs get and patch on %ss in group apps (see config/rollout-restart)", ref, strings.ToLower(string(kind)))
	}
	return fmt.Sprintf("%s: %s: %v", ref, verb, err)
}

func (r *Reconciler) event(obj *v1alpha1.OAuthClientToken, eventType, reason, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, "RolloutRestart", note, args...)
	}
}

// workload returns an empty workload of kind, and its pod template.
func workload(kind v1alpha1.RolloutKind) (client.Object, func() *corev1.PodTemplateSpec) {
	switch kind {
	case v1alpha1.RolloutKindStatefulSet:
		w := &appsv1.StatefulSet{}
		return w, func() *corev1.PodTemplateSpec { return &w.Spec.Template }
	case v1alpha1.RolloutKindDaemonSet:
		w := &appsv1.DaemonSet{}
		return w, func() *corev1.PodTemplateSpec { return &w.Spec.Template }
	default:
		w := &appsv1.Deployment{}
		return w, func() *corev1.PodTemplateSpec { return &w.Spec.Template }
	}
}

// References reports whether a pod template reads Secret name: as a
// volume, in a projected volume, or through env or envFrom of any
// container (init and ephemeral containers included).
func References(t *corev1.PodTemplateSpec, name string) bool {
	for _, v := range t.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil && s.Secret.Name == name {
					return true
				}
			}
		}
	}
	env := func(envs []corev1.EnvVar, from []corev1.EnvFromSource) bool {
		for _, e := range envs {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
				return true
			}
		}
		for _, f := range from {
			if f.SecretRef != nil && f.SecretRef.Name == name {
				return true
			}
		}
		return false
	}
	for _, c := range append(append([]corev1.Container{}, t.Spec.InitContainers...), t.Spec.Containers...) {
		if env(c.Env, c.EnvFrom) {
			return true
		}
	}
	for _, c := range t.Spec.EphemeralContainers {
		if env(c.Env, c.EnvFrom) {
			return true
		}
	}
	return false
}
