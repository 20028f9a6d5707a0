package token

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/controller/rollout"
)

// restarts runs the rollout-restart controller's reconcile of name, as the
// manager would after the token's status changed.
func (h *harness) restarts(name string, c client.Client, minInterval time.Duration) ctrl.Result {
	h.t.Helper()
	if c == nil {
		c = h.r.Client
	}
	h.syncCache(h.get(name))
	r := &rollout.Reconciler{Client: c, API: mgrAPI, Recorder: h.recorder, Clock: h.clock, MinInterval: minInterval}
	res, err := r.Reconcile(h.ctx, ctrl.Request{NamespacedName: keyIn(h.ns, name)})
	if err != nil {
		h.t.Fatalf("rollout reconcile: %v", err)
	}
	return res
}

// reconcileAndRestart runs both controllers.
func (h *harness) reconcileAndRestart(name string) ctrl.Result {
	h.t.Helper()
	h.reconcile(name)
	return h.restarts(name, nil, 0)
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example.com/app:1",
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "tok"}, Key: "access_token",
			}}}},
		}}},
	}
}

// createWorkloads creates a Deployment, a StatefulSet and a DaemonSet named
// app in the harness namespace and returns them.
func (h *harness) createWorkloads() []client.Object {
	h.t.Helper()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}
	objs := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: h.ns},
			Spec: appsv1.DeploymentSpec{Selector: sel, Template: podTemplate("app")}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: h.ns},
			Spec: appsv1.StatefulSetSpec{Selector: sel, Template: podTemplate("app")}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: h.ns},
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: podTemplate("app")}},
	}
	for _, o := range objs {
		if err := k8sClient.Create(h.ctx, o); err != nil {
			h.t.Fatal(err)
		}
	}
	return objs
}

// restartedAt returns the workload's pod-template restart annotation and
// its resourceVersion.
func (h *harness) restartedAt(o client.Object) (string, string) {
	h.t.Helper()
	fresh := o.DeepCopyObject().(client.Object)
	if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(o), fresh); err != nil {
		h.t.Fatal(err)
	}
	var tpl corev1.PodTemplateSpec
	switch w := fresh.(type) {
	case *appsv1.Deployment:
		tpl = w.Spec.Template
	case *appsv1.StatefulSet:
		tpl = w.Spec.Template
	case *appsv1.DaemonSet:
		tpl = w.Spec.Template
	}
	return tpl.Annotations[v1alpha1.RestartedAtAnnotation], fresh.GetResourceVersion()
}

func allTargets(extra ...v1alpha1.RolloutRestartTarget) []v1alpha1.RolloutRestartTarget {
	return append([]v1alpha1.RolloutRestartTarget{
		{Kind: v1alpha1.RolloutKindDeployment, Name: "app"},
		{Kind: v1alpha1.RolloutKindStatefulSet, Name: "app"},
		{Kind: v1alpha1.RolloutKindDaemonSet, Name: "app"},
	}, extra...)
}

func eventsWith(evs []string, reason string) []string {
	var out []string
	for _, e := range evs {
		if strings.Contains(e, " "+reason+" ") {
			out = append(out, e)
		}
	}
	return out
}

func TestRolloutRestartTargetsRestartAfterEachRotation(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rollout-client", "rollout-secret")
	workloads := h.createWorkloads()
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.RolloutRestartTargets = allTargets(v1alpha1.RolloutRestartTarget{Kind: v1alpha1.RolloutKindDeployment, Name: "gone"})
	})

	// The first token restarts nothing: the pods start with it.
	h.reconcileAndRestart("tok")
	o := wantReady(h, "tok")
	if o.Status.RolloutRestartedFor == nil || !o.Status.RolloutRestartedFor.Equal(o.Status.IssuedAt) {
		t.Fatalf("rolloutRestartedFor = %v, want the first token's issuedAt %v", o.Status.RolloutRestartedFor, o.Status.IssuedAt)
	}
	for _, w := range workloads {
		if v, _ := h.restartedAt(w); v != "" {
			t.Fatalf("%T restarted for the first token (%s)", w, v)
		}
	}
	if ev := eventsWith(h.events(), v1alpha1.EventRolloutRestarted); len(ev) != 0 {
		t.Fatalf("events for the first token: %q", ev)
	}

	// Each rotation restarts every named workload, once.
	for rotation := 1; rotation <= 2; rotation++ {
		h.clock.Step(41 * time.Minute) // past renewal at 2/3 of the hour
		h.reconcileAndRestart("tok")
		o = wantReady(h, "tok")
		if n := len(h.issued("rollout-client")); n != rotation+1 {
			t.Fatalf("%d tokens issued, want %d", n, rotation+1)
		}
		want := o.Status.IssuedAt.UTC().Format(time.RFC3339)
		versions := map[client.Object]string{}
		for _, w := range workloads {
			v, rv := h.restartedAt(w)
			if v != want {
				t.Fatalf("rotation %d: %T pod template %s = %q, want %q", rotation, w, v1alpha1.RestartedAtAnnotation, v, want)
			}
			versions[w] = rv
		}
		if !o.Status.RolloutRestartedFor.Equal(o.Status.IssuedAt) {
			t.Fatalf("rolloutRestartedFor = %v, want %v", o.Status.RolloutRestartedFor, o.Status.IssuedAt)
		}
		evs := h.events()
		restarted := eventsWith(evs, v1alpha1.EventRolloutRestarted)
		if len(restarted) != 1 || !strings.Contains(restarted[0], "Deployment/app, StatefulSet/app, DaemonSet/app") {
			t.Fatalf("rotation %d: RolloutRestarted events %q", rotation, restarted)
		}
		if skipped := eventsWith(evs, v1alpha1.EventRolloutRestartSkipped); len(skipped) != 1 || !strings.Contains(skipped[0], "Deployment/gone") {
			t.Fatalf("rotation %d: want one RolloutRestartSkipped event naming Deployment/gone, got %q", rotation, skipped)
		}

		// A reconcile with nothing to do patches nothing.
		h.writes.n.Store(0)
		h.reconcileAndRestart("tok")
		if n := h.writes.n.Load(); n != 0 {
			t.Fatalf("a reconcile after the rotation wrote %d times", n)
		}
		for _, w := range workloads {
			if _, rv := h.restartedAt(w); rv != versions[w] {
				t.Fatalf("%T patched again without a rotation", w)
			}
		}
	}

	// Removing the targets forgets them; naming them again restarts
	// nothing until the next rotation.
	o = h.get("tok")
	o.Spec.RolloutRestartTargets = nil
	if err := k8sClient.Update(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(o)
	h.reconcileAndRestart("tok")
	if o = h.get("tok"); o.Status.RolloutRestartedFor != nil {
		t.Fatalf("rolloutRestartedFor = %v with no targets", o.Status.RolloutRestartedFor)
	}
	before, _ := h.restartedAt(workloads[0])
	h.clock.Step(41 * time.Minute)
	h.reconcileAndRestart("tok") // rotation with no targets
	o = h.get("tok")
	o.Spec.RolloutRestartTargets = allTargets()
	if err := k8sClient.Update(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(o)
	h.reconcileAndRestart("tok")
	if v, _ := h.restartedAt(workloads[0]); v != before {
		t.Fatalf("naming the targets again restarted them (%q -> %q)", before, v)
	}
}

// forbidApps refuses patches of apps/v1 workloads, as the API server does
// when the optional RBAC is not installed.
type forbidApps struct {
	client.Client
	forbid bool
}

func (f *forbidApps) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	switch obj.(type) {
	case *appsv1.Deployment, *appsv1.StatefulSet, *appsv1.DaemonSet:
		if f.forbid {
			return apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, obj.GetName(), nil)
		}
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

func TestRolloutRestartRetriedWhenForbidden(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rollout-rbac", "rollout-secret")
	workloads := h.createWorkloads()
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.RolloutRestartTargets = allTargets()
	})
	h.reconcileAndRestart("tok")
	first := h.get("tok").Status.RolloutRestartedFor
	f := &forbidApps{Client: h.r.Client, forbid: true}

	h.clock.Step(41 * time.Minute)
	h.reconcile("tok")
	res := h.restarts("tok", f, 0)
	// The token is fine: Ready stays True; the restart is retried soon.
	o := wantReady(h, "tok")
	if res.RequeueAfter > rollout.RetryInterval {
		t.Fatalf("requeue in %v after a failed restart, want at most %v", res.RequeueAfter, rollout.RetryInterval)
	}
	if !o.Status.RolloutRestartedFor.Equal(first) {
		t.Fatal("rolloutRestartedFor moved on although no workload was restarted")
	}
	failed := eventsWith(h.events(), v1alpha1.EventRolloutRestartFailed)
	if len(failed) != 1 || !strings.Contains(failed[0], "forbidden") || !strings.Contains(failed[0], "config/rollout-restart") {
		t.Fatalf("want one RolloutRestartFailed event with the RBAC hint, got %q", failed)
	}

	// Once allowed, the retry restarts them for the token already issued.
	f.forbid = false
	h.clock.Step(rollout.RetryInterval)
	h.reconcile("tok")
	h.restarts("tok", f, 0)
	o = wantReady(h, "tok")
	if n := len(h.issued("rollout-rbac")); n != 2 {
		t.Fatalf("%d tokens issued, want 2: the retry must not request a token", n)
	}
	want := o.Status.IssuedAt.UTC().Format(time.RFC3339)
	for _, w := range workloads {
		if v, _ := h.restartedAt(w); v != want {
			t.Fatalf("%T not restarted after the RBAC was granted: %q", w, v)
		}
	}
	if !o.Status.RolloutRestartedFor.Equal(o.Status.IssuedAt) {
		t.Fatal("rolloutRestartedFor not recorded after the retry")
	}
}

// A workload whose pods do not read the target Secret is never restarted,
// however it is named; and restarts happen at most once per interval, for
// the token current then.
func TestRolloutRestartOnlyConsumersAtMostOncePerInterval(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rollout-limits", "rollout-secret")
	workloads := h.createWorkloads()
	unrelated := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "other"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
		}}}
	projected := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "projected", Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "p"}}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "p"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
				Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tok"}}}}}}}}},
		}}}
	for _, o := range []client.Object{unrelated, projected} {
		if err := k8sClient.Create(h.ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.RolloutRestartTargets = allTargets(
			v1alpha1.RolloutRestartTarget{Kind: v1alpha1.RolloutKindDeployment, Name: "other"},
			v1alpha1.RolloutRestartTarget{Kind: v1alpha1.RolloutKindDeployment, Name: "projected"})
		o.Spec.Refresh = &v1alpha1.RefreshSpec{DefaultLifetime: &metav1.Duration{Duration: time.Hour}}
	})
	const interval = time.Hour
	h.reconcile("tok")
	h.restarts("tok", nil, interval)

	h.clock.Step(41 * time.Minute)
	h.reconcile("tok")
	h.restarts("tok", nil, interval)
	firstRestart := h.get("tok").Status.IssuedAt.UTC().Format(time.RFC3339)
	for _, w := range append(workloads, projected) {
		if v, _ := h.restartedAt(w); v != firstRestart {
			t.Fatalf("%s not restarted: %q", w.GetName(), v)
		}
	}
	if v, _ := h.restartedAt(unrelated); v != "" {
		t.Fatalf("a Deployment that does not read Secret tok was restarted (%s)", v)
	}
	if skipped := eventsWith(h.events(), v1alpha1.EventRolloutRestartSkipped); len(skipped) != 1 || !strings.Contains(skipped[0], "Deployment/other") || !strings.Contains(skipped[0], "does not reference") {
		t.Fatalf("want one RolloutRestartSkipped naming Deployment/other, got %q", skipped)
	}

	// The next rotation comes 41 minutes later: within the hour, no
	// restart; the controller looks again when the hour is over.
	h.clock.Step(41 * time.Minute)
	h.reconcile("tok")
	res := h.restarts("tok", nil, interval)
	if v, _ := h.restartedAt(workloads[0]); v != firstRestart {
		t.Fatalf("restarted again within the interval: %q", v)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > 19*time.Minute {
		t.Fatalf("requeue after %s, want when the hour is over (19m)", res.RequeueAfter)
	}
	h.clock.Step(res.RequeueAfter)
	h.restarts("tok", nil, interval)
	latest := h.get("tok").Status.IssuedAt.UTC().Format(time.RFC3339)
	if v, _ := h.restartedAt(workloads[0]); v != latest || latest == firstRestart {
		t.Fatalf("after the interval, restarted for %q, want the current token's %q", v, latest)
	}
}
