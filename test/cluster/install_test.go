//go:build cluster

package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deployment is what an install put on the cluster, as the checks need it.
type deployment struct {
	namespace      string // the manager's
	name           string // its Deployment
	serviceAccount string
	metricsService string
	metricsReader  string // the ClusterRole that allows a scrape
	podSelector    string // label selector of the manager's pods
	// watched are the namespaces the manager serves; empty: all. The checks
	// run their objects in the first one (point 5 of issue 16: a
	// namespace-scoped install).
	watched []string
}

// An installMode deploys tokensync one way the README tells users to. Each
// runs every check (TestInstallModes). To add one (e.g. the namespace-scoped
// install, config/namespaced and Helm's watchNamespaces), add an entry with
// its install and uninstall functions; set deployment.watched so that the
// checks create their objects in a watched namespace.
type installMode struct {
	name      string
	install   func(t *testing.T) deployment
	uninstall func(t *testing.T, d deployment)
}

var installModes = []installMode{
	{name: "kustomize", install: installKustomize, uninstall: uninstallKustomize},
	{name: "helm", install: installHelm, uninstall: uninstallHelm},
	{name: "helm-namespaced", install: installHelmNamespaced, uninstall: uninstallHelm},
}

// The names both installs give (kustomize's namePrefix tokensync-, Helm
// release "tokensync").
func defaultDeployment() deployment {
	return deployment{
		namespace:      "tokensync-system",
		name:           "tokensync-controller-manager",
		serviceAccount: "tokensync-controller-manager",
		metricsService: "tokensync-controller-manager-metrics-service",
		metricsReader:  "tokensync-metrics-reader",
		podSelector:    "app.kubernetes.io/name=tokensync,app.kubernetes.io/component=manager",
	}
}

// kustomizeDir is the copy of config/ the kustomize install applies.
var kustomizeDir string

// installKustomize does what `make deploy IMG=...` does, in a copy of
// config/: `kustomize edit set image controller=IMG` in config/manager,
// then `kubectl apply -k config/default`. In the copy, as a user would,
// config/default also enables the optional config/rollout-restart RBAC and
// patches the manager for this cluster: plain http to the toolkit (which
// serves no TLS) and imagePullPolicy Never (the image cannot be pulled).
func installKustomize(t *testing.T) deployment {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-R", filepath.Join(repoRoot, "config"), dir).CombinedOutput(); err != nil {
		t.Fatalf("copying config/: %v\n%s", err, out)
	}
	kustomizeDir = filepath.Join(dir, "config")
	edit := exec.Command(env.kustomize, "edit", "set", "image", "controller="+env.manager)
	edit.Dir = filepath.Join(kustomizeDir, "manager")
	if out, err := edit.CombinedOutput(); err != nil {
		t.Fatalf("kustomize edit set image: %v\n%s", err, out)
	}
	k := filepath.Join(kustomizeDir, "default", "kustomization.yaml")
	b, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte(`
components:
- ../rollout-restart
patches:
- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --allow-insecure-http
    - op: add
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
`)...)
	if err := os.WriteFile(k, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("apply", "--server-side", "-k", filepath.Join(kustomizeDir, "default")); err != nil {
		t.Fatalf("kubectl apply -k config/default: %v\n%s", err, out)
	}
	return defaultDeployment()
}

func uninstallKustomize(t *testing.T, d deployment) {
	if out, err := kubectl("delete", "-k", filepath.Join(kustomizeDir, "default"), "--ignore-not-found", "--wait", "--timeout=120s"); err != nil {
		t.Errorf("kubectl delete -k config/default: %v\n%s", err, out)
	}
}

// installHelm runs the README's helm install, with the image built here,
// the optional rollout-restart RBAC and plain http to the toolkit.
func installHelm(t *testing.T) deployment {
	d := defaultDeployment()
	helm(t, "install", "tokensync", filepath.Join(repoRoot, "charts", "tokensync"),
		"-n", d.namespace, "--create-namespace",
		"--set", "image.repository="+imageRepo(env.manager), "--set", "image.tag="+imageTag(env.manager),
		"--set", "image.pullPolicy=Never",
		"--set", "controller.allowInsecureHTTP=true",
		"--set", "rbac.rolloutRestart.enabled=true")
	return d
}

// installHelmNamespaced is the namespace-scoped install (issue 14): Helm's
// watchNamespaces, so that the manager has Roles in one namespace only and
// watches nothing else.
func installHelmNamespaced(t *testing.T) deployment {
	d := defaultDeployment()
	d.watched = []string{"watched-a"}
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+d.watched[0]+"\n")
	helm(t, "install", "tokensync", filepath.Join(repoRoot, "charts", "tokensync"),
		"-n", d.namespace, "--create-namespace",
		"--set", "image.repository="+imageRepo(env.manager), "--set", "image.tag="+imageTag(env.manager),
		"--set", "image.pullPolicy=Never",
		"--set", "controller.allowInsecureHTTP=true",
		"--set", "rbac.rolloutRestart.enabled=true",
		"--set", "watchNamespaces={"+strings.Join(d.watched, ",")+"}")
	if out, _ := kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", "--as", "system:serviceaccount:"+d.namespace+":"+d.serviceAccount); strings.TrimSpace(out) != "no" {
		t.Fatalf("the namespace-scoped install may list Secrets cluster-wide: %q", out)
	}
	return d
}

func uninstallHelm(t *testing.T, d deployment) {
	helm(t, "uninstall", "tokensync", "-n", d.namespace, "--wait", "--timeout", "120s")
	// Helm leaves the CRD (crds/) and the namespace it created.
	for _, obj := range []string{"crd/oauthclienttokens.oauth.tokensync.io", "namespace/" + d.namespace} {
		if out, err := kubectl("delete", obj, "--ignore-not-found", "--wait", "--timeout=120s"); err != nil {
			t.Errorf("kubectl delete %s: %v\n%s", obj, err, out)
		}
	}
}

func helm(t *testing.T, args ...string) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(env.helm, append(args, "--kubeconfig", kubeconfig)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func imageRepo(ref string) string { return ref[:strings.LastIndex(ref, ":")] }
func imageTag(ref string) string  { return ref[strings.LastIndex(ref, ":")+1:] }

// TestInstallModes installs tokensync each way in turn and runs every check
// against it, then uninstalls it and checks that nothing is left.
func TestInstallModes(t *testing.T) {
	for _, mode := range installModes {
		ok := t.Run(mode.name, func(t *testing.T) {
			d := mode.install(t)
			t.Cleanup(func() {
				mode.uninstall(t, d)
				for _, obj := range []string{"crd/oauthclienttokens.oauth.tokensync.io", "namespace/" + d.namespace} {
					eventually(t, 2*time.Minute, obj+" to be gone", func() (bool, string) {
						out, err := kubectl("get", obj, "--ignore-not-found", "-o", "name")
						return err == nil && strings.TrimSpace(out) == "", out
					})
				}
			})
			runChecks(t, mode.name, d)
		})
		if !ok {
			// The next install would meet this one's leftovers.
			return
		}
	}
}
