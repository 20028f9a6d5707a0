package controller

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
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

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
	h.reconcile("tok")
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
		h.reconcile("tok")
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
		h.reconcile("tok")
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
	h.reconcile("tok")
	if o = h.get("tok"); o.Status.RolloutRestartedFor != nil {
		t.Fatalf("rolloutRestartedFor = %v with no targets", o.Status.RolloutRestartedFor)
	}
	before, _ := h.restartedAt(workloads[0])
	h.clock.Step(41 * time.Minute)
	h.reconcile("tok") // rotation with no targets
	o = h.get("tok")
	o.Spec.RolloutRestartTargets = allTargets()
	if err := k8sClient.Update(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(o)
	h.reconcile("tok")
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
	h.reconcile("tok")
	first := h.get("tok").Status.RolloutRestartedFor
	f := &forbidApps{Client: h.r.Client, forbid: true}
	h.r.Client = f

	h.clock.Step(41 * time.Minute)
	res := h.reconcile("tok")
	// The token is fine: Ready stays True; the restart is retried soon.
	o := wantReady(h, "tok")
	if res.RequeueAfter > rolloutRetryInterval {
		t.Fatalf("requeue in %v after a failed restart, want at most %v", res.RequeueAfter, rolloutRetryInterval)
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
	h.clock.Step(rolloutRetryInterval)
	h.reconcile("tok")
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
