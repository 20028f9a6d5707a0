package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/test/testutil"
)

// Who the API server's audit log records: the manager's ServiceAccount, as
// which the baseline also runs (on a control plane of its own). Everything
// else (the benchmark's own requests) is left out, so that the log stays
// small and costs the API server little.
const (
	operatorNS  = "tokensync-system"
	managerSA   = "tokensync-controller-manager"
	managerUser = "system:serviceaccount:" + operatorNS + ":" + managerSA
)

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["` + managerUser + `"]
- level: None
`

// cluster is an envtest control plane (kube-apiserver and etcd) with an
// audit log of the manager's and the baseline's requests.
type cluster struct {
	env      *envtest.Environment
	dir      string
	admin    *rest.Config // system:masters, not audited, not rate limited
	c        client.Client
	audit    *auditLog
	kubectl  string
	adminKC  string
	repoRoot string
}

// shardedListWatch enables the API server's sharded list and watch
// (KEP-5866) on the control planes started.
var shardedListWatch bool

// startCluster starts a control plane; installManager installs the CRD and
// the manager's RBAC on it.
func startCluster(ctx context.Context, assets, repoRoot, dir string) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "audit.log")
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	api := env.ControlPlane.GetAPIServer()
	if shardedListWatch {
		api.Configure().Append("feature-gates", "ShardedListAndWatch=true")
	}
	api.Configure().
		Append("audit-policy-file", policy).
		Append("audit-log-path", logPath).
		Append("audit-log-maxsize", "0")
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	cl := &cluster{env: env, dir: dir, kubectl: filepath.Join(assets, "kubectl"), repoRoot: repoRoot, audit: &auditLog{path: logPath}}
	cl.admin = rest.CopyConfig(env.Config)
	cl.admin.QPS = -1 // no client-side limit: the benchmark must not be the bottleneck
	cl.admin.UserAgent = "tokensync-bench"
	var err error
	if cl.c, err = client.New(cl.admin, client.Options{Scheme: scheme}); err != nil {
		_ = env.Stop()
		return nil, err
	}
	admin, err := env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	cl.adminKC = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(cl.adminKC, kc, 0o600); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) stop() {
	if cl != nil && cl.env != nil {
		_ = cl.env.Stop()
	}
}

func (cl *cluster) kubectlRun(args ...string) (string, error) {
	out, err := exec.Command(cl.kubectl, append([]string{"--kubeconfig", cl.adminKC}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// installManager installs the CRD and the manager's RBAC exactly as the
// e2e suite does (config/crd and config/rbac through test/e2e/install) and
// writes a kubeconfig that authenticates as the manager's ServiceAccount.
func (cl *cluster) installManager() (string, error) {
	if _, err := cl.kubectlRun("apply", "--server-side", "-k", filepath.Join(cl.repoRoot, "test", "e2e", "install")); err != nil {
		return "", err
	}
	if _, err := cl.kubectlRun("wait", "--for=condition=Established", "crd/oauthclienttokens.oauth.tokensync.io",
		"crd/oauthproviders.oauth.tokensync.io", "crd/clusteroauthproviders.oauth.tokensync.io", "--timeout=60s"); err != nil {
		return "", err
	}
	token, err := cl.kubectlRun("create", "token", managerSA, "-n", operatorNS, "--duration=12h")
	if err != nil {
		return "", err
	}
	kc := testutil.TokenKubeconfig(cl.env.Config.Host, cl.env.Config.CAData, strings.TrimSpace(token))
	path := filepath.Join(cl.dir, "manager.kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// baselineConfig returns a rest.Config for the baseline, with the
// manager's client-side limits. It installs the manager's CRD and RBAC
// (installManager) and authenticates as the manager's ServiceAccount, so
// that the API server treats the baseline's requests as it treats the
// manager's: the same authorization, and the same priority level of its
// priority and fairness (a member of system:masters would be exempt from
// both, and its requests never queued). The baseline's requests are
// counted as managerUser's.
func (cl *cluster) baselineConfig(qps float32, burst int) (*rest.Config, error) {
	kubeconfig, err := cl.installManager()
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = qps
	cfg.Burst = burst
	cfg.UserAgent = "tokensync-baseline"
	return cfg, nil
}

// waitFor polls cond every interval until it holds or timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
