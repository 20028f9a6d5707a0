//go:build e2e

// Package e2e runs the built manager binary as a process, under the RBAC of
// config/rbac (a ServiceAccount token, not cluster-admin), against a real
// kube-apiserver and etcd (envtest) and a real OAuth 2.0 server (Django OAuth
// Toolkit), and drives it with kubectl as a user would.
package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/test/dot"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

const (
	operatorNS = "tokensync-system"
	appNS      = "shop"
	// A client secret with the characters RFC 6749 section 2.3.1 makes
	// clients URL-encode in Basic credentials.
	clientID     = "payments-e2e"
	clientSecret = "s3cr:et/with+plus and space"
	rotated      = "r0tated:/+ secret"
)

var (
	repoRoot   string
	kubectlBin string
	adminKC    string
	managerKC  string
	oauthSrv   *dot.Server
	// everything the manager printed, for the leak check
	managerOut = &testutil.SyncBuffer{}
	mgrProc    *exec.Cmd
	// a fast Go token endpoint for the 1,000-object fleet
	fleetSrv *tokenserver.Server
	fleetURL string
	// the running manager's (plain http, loopback) metrics endpoint
	metricsURL string
	// the API server's audit log (auditPolicy), read by the RBAC test
	auditLog string
	// the manager's ServiceAccount token, which it must never log
	managerToken string
	// the API server's ServiceAccount issuer, which the keyless tests'
	// token server trusts, and its CA
	saIssuer *testutil.ServiceAccountIssuer
	apiCA    []byte
)

// auditPolicy records every request at Metadata level (who, verb, resource,
// response code; never a body), once it completed.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", args...)
		return 1
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	managerBin := os.Getenv("TOKENSYNC_MANAGER_BIN")
	if assets == "" || managerBin == "" {
		return fail("KUBEBUILDER_ASSETS and TOKENSYNC_MANAGER_BIN must be set: run `make test-e2e`")
	}
	if err := dot.Available(); err != nil {
		return fail("%v", err)
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	kubectlBin = filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectlBin); err != nil {
		return fail("no kubectl in %s", assets)
	}
	tmp, err := os.MkdirTemp("", "tokensync-e2e-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)

	env := &envtest.Environment{}
	policy := filepath.Join(tmp, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return fail("%v", err)
	}
	auditLog = filepath.Join(tmp, "audit.log")
	apiArgs := env.ControlPlane.GetAPIServer().Configure()
	apiArgs.Set("audit-policy-file", policy)
	apiArgs.Set("audit-log-path", auditLog)
	// Writing a Secret whose owner reference blocks its owner's deletion
	// needs update on oauthclienttokens/finalizers only with this plugin,
	// which clusters such as OpenShift enable: so the RBAC test may rely
	// on the suite to show that the permission is needed.
	apiArgs.Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	// A ServiceAccount issuer an identity provider can verify tokens of
	// (its discovery document and JWKS on loopback), for the keyless tests.
	if saIssuer, err = testutil.ConfigureServiceAccountIssuer(env, tmp); err != nil {
		return fail("configuring the ServiceAccount issuer: %v", err)
	}
	envCfg, err := env.Start()
	if err != nil {
		return fail("starting the control plane: %v", err)
	}
	defer func() { _ = env.Stop() }()
	apiCA = envCfg.CAData
	if err := testutil.AllowAnonymousIssuerDiscovery(context.Background(), envCfg); err != nil {
		return fail("%v", err)
	}
	admin, err := env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail("%v", err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		return fail("%v", err)
	}
	adminKC = filepath.Join(tmp, "admin.kubeconfig")
	if err := os.WriteFile(adminKC, kc, 0o600); err != nil {
		return fail("%v", err)
	}

	// Install the CRD and the manager's RBAC exactly as shipped.
	if out, err := kubectl("apply", "--server-side", "-k", filepath.Join(repoRoot, "test", "e2e", "install")); err != nil {
		return fail("installing CRD and RBAC: %v\n%s", err, out)
	}
	if out, err := kubectl("wait", "--for=condition=Established", "crd/oauthclienttokens.oauth.tokensync.io", "crd/oauthproviders.oauth.tokensync.io", "crd/clusteroauthproviders.oauth.tokensync.io", "--timeout=60s"); err != nil {
		return fail("%v\n%s", err, out)
	}
	// The manager authenticates as its ServiceAccount.
	saToken, err := kubectl("create", "token", "tokensync-controller-manager", "-n", operatorNS, "--duration=2h")
	if err != nil {
		return fail("creating a ServiceAccount token: %v\n%s", err, saToken)
	}
	managerToken = strings.TrimSpace(saToken)
	managerKC = filepath.Join(tmp, "manager.kubeconfig")
	if err := os.WriteFile(managerKC, testutil.TokenKubeconfig(env.Config.Host, env.Config.CAData, strings.TrimSpace(saToken)), 0o600); err != nil {
		return fail("%v", err)
	}

	ctx := context.Background()
	oauthSrv, err = dot.Start(ctx, dot.Options{Stderr: os.Stderr})
	if err != nil {
		return fail("starting Django OAuth Toolkit: %v", err)
	}
	defer func() { _ = oauthSrv.Stop() }()
	if err := oauthSrv.CreateApplication(ctx, clientID, clientSecret); err != nil {
		return fail("%v", err)
	}

	fleetSrv = tokenserver.New(tokenserver.Options{Clients: map[string]string{"fleet": "fleet-secret"}, ExpiresIn: 3600})
	var stopFleet func()
	fleetURL, stopFleet = fleetSrv.Start()
	defer stopFleet()

	if err := startManager(managerBin); err != nil {
		return fail("%v", err)
	}
	defer stopManager()
	return m.Run()
}

func startManager(bin string) error {
	probe, err := testutil.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := testutil.FreePort()
	if err != nil {
		return err
	}
	metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	mgrProc = exec.Command(bin,
		"--kubeconfig", managerKC,
		"--allow-insecure-http", // Django's development server speaks plain http on loopback
		"--leader-elect",
		"--leader-election-namespace", operatorNS,
		// ClusterOAuthProviders' credentials live in the manager's namespace.
		"--cluster-provider-namespace", operatorNS,
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--metrics-secure=false",
		"--zap-log-level", "debug",
		// The fleet test creates 1,000 objects at once.
		"--kube-api-qps", "500", "--kube-api-burst", "1000", "--concurrent-reconciles", "8",
	)
	mgrProc.Stdout = managerOut
	mgrProc.Stderr = managerOut
	mgrProc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := mgrProc.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	return nil
}

func stopManager() {
	if mgrProc != nil && mgrProc.Process != nil {
		_ = mgrProc.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = mgrProc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = mgrProc.Process.Kill()
			<-done
		}
		mgrProc = nil
	}
}

func kube() testutil.Kubectl { return testutil.Kubectl{Bin: kubectlBin, Kubeconfig: adminKC} }

func kubectl(args ...string) (string, error) { return kube().Run("", args...) }

func kubectlIn(stdin string, args ...string) (string, error) { return kube().Run(stdin, args...) }

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	return kube().Must(t, args...)
}

func mustApply(t *testing.T, manifest string) {
	t.Helper()
	kube().Apply(t, manifest)
}

// secretData returns the decoded data of a Secret.
func secretData(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	out := mustKubectl(t, "get", "secret", name, "-n", ns, "-o", "json")
	var s struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	dec := map[string]string{}
	for k, v := range s.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		dec[k] = string(b)
	}
	if tok := dec["access_token"]; tok != "" {
		seenTokens = append(seenTokens, tok)
	}
	return dec
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	if dir := os.Getenv("TOKENSYNC_E2E_LOG_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "manager.log"), []byte(managerOut.String()), 0o644)
	}
	t.Fatalf("timed out after %v waiting for %s\nmanager output (tail):\n%s", timeout, what, tail(managerOut.String(), 4000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
