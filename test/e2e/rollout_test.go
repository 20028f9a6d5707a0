//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type deploymentView struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		} `json:"template"`
	} `json:"spec"`
}

func getDeployment(t *testing.T, ns, name string) deploymentView {
	t.Helper()
	var d deploymentView
	if err := json.Unmarshal([]byte(mustKubectl(t, "get", "deployment", name, "-n", ns, "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func issuedAt(t *testing.T, ns, name string) string {
	t.Helper()
	return mustKubectl(t, "get", "oct", name, "-n", ns, "-o", "jsonpath={.status.issuedAt}")
}

// requestRefresh forces a rotation, as a user does, and waits for it.
func requestRefresh(t *testing.T, ns, name string) string {
	t.Helper()
	before := issuedAt(t, ns, name)
	time.Sleep(1100 * time.Millisecond) // issue times have one-second resolution
	mustKubectl(t, "annotate", "oct", name, "-n", ns, "--overwrite",
		fmt.Sprintf("oauth.tokensync.io/refresh-requested-at=%d", time.Now().UnixNano()))
	var after string
	eventually(t, 20*time.Second, "a rotation after the refresh request", func() bool {
		after = issuedAt(t, ns, name)
		return after != before
	})
	return after
}

// TestRolloutRestartUnderShippedRBAC runs spec.rolloutRestartTargets under
// the manager's shipped RBAC: refused (and said so in an event) without the
// optional config/rollout-restart component, working with it.
func TestRolloutRestartUnderShippedRBAC(t *testing.T) {
	ns := newAppNamespace(t, "rollout", "rollout-client", "r0llout:/+secret")
	// A Deployment, a StatefulSet and a DaemonSet: each kind has its own
	// permission.
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
		mustApply(t, `apiVersion: apps/v1
kind: `+kind+`
metadata:
  name: app
  namespace: `+ns+`
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: example.com/app:1
        env:
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: api-token, key: access_token}
`)
	}
	applyToken(t, ns, "api-token", "creds", `  rolloutRestartTargets:
  - kind: Deployment
    name: app
  - kind: StatefulSet
    name: app
  - kind: DaemonSet
    name: app
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/api-token", "-n", ns, "--timeout=60s")
	gen := getDeployment(t, ns, "app").Metadata.Generation

	// Without the optional RBAC: the rotation happens, the restart is
	// refused and reported.
	requestRefresh(t, ns, "api-token")
	eventually(t, 20*time.Second, "a RolloutRestartFailed event", func() bool {
		out, _ := kubectl("get", "events", "-n", ns, "--field-selector", "reason=RolloutRestartFailed", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, "forbidden") && strings.Contains(out, "config/rollout-restart")
	})
	if d := getDeployment(t, ns, "app"); d.Metadata.Generation != gen {
		t.Fatal("the Deployment changed although the manager may not patch it")
	}

	// With config/rollout-restart: the next rotation restarts it.
	if out, err := kubectl("apply", "--server-side", "-k", filepath.Join(repoRoot, "test", "e2e", "rollout-restart")); err != nil {
		t.Fatalf("installing the rollout-restart RBAC: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = kubectl("delete", "clusterrolebinding", "tokensync-rollout-restart-rolebinding", "--ignore-not-found")
	})
	issued := requestRefresh(t, ns, "api-token")
	eventually(t, 20*time.Second, "the Deployment's pod template annotated with the new token's issue time", func() bool {
		d := getDeployment(t, ns, "app")
		return d.Spec.Template.Metadata.Annotations["oauth.tokensync.io/restarted-at"] == issued && d.Metadata.Generation > gen
	})
	for _, kind := range []string{"statefulset", "daemonset"} {
		if got := mustKubectl(t, "get", kind, "app", "-n", ns, "-o", `jsonpath={.spec.template.metadata.annotations.oauth\.tokensync\.io/restarted-at}`); got != issued {
			t.Errorf("the %s's pod template has restarted-at %q, want %q", kind, got, issued)
		}
	}
	eventually(t, 10*time.Second, "status.rolloutRestartedFor", func() bool {
		return mustKubectl(t, "get", "oct", "api-token", "-n", ns, "-o", "jsonpath={.status.rolloutRestartedFor}") == issued
	})
}
