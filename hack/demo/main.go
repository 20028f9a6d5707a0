// Command demo shows tokensync at work on a throwaway local control plane:
// it starts kube-apiserver and etcd (envtest), a local HTTPS token endpoint
// that issues 30-second tokens, installs the CRD, applies an
// OAuthClientToken, runs the manager binary, and prints the Secret as it is
// filled and rotated. Run it with `make demo`.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/test/tokenserver"
)

func main() {
	managerBin := flag.String("manager", "bin/manager", "path of the manager binary (make build)")
	rotations := flag.Int("rotations", 2, "how many rotations to watch before stopping")
	lifetime := flag.Int("expires-in", 30, "lifetime in seconds of the tokens the local endpoint issues")
	keep := flag.Bool("keep", false, "keep everything running after the rotations, until Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *managerBin, *rotations, *lifetime, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", args...)
}

func run(ctx context.Context, managerBin string, rotations, lifetime int, keep bool) error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make demo`")
	}
	work, err := filepath.Abs(".demo")
	if err != nil {
		return err
	}
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	kubectlBin := filepath.Join(assets, "kubectl")

	step("Starting a throwaway control plane (kube-apiserver + etcd from %s)", assets)
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "demo", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	show := func(stdin string, args ...string) error {
		fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
		out, err := kubectl(stdin, args...)
		fmt.Print(out)
		return err
	}

	step("Starting a local HTTPS token endpoint issuing %d-second tokens", lifetime)
	srv := tokenserver.New(tokenserver.Options{
		Clients:   map[string]string{"demo-client": "demo-secret"},
		ExpiresIn: lifetime,
	})
	ts := httptest.NewTLSServer(srv)
	defer ts.Close()
	caFile := filepath.Join(work, "token-endpoint-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		return err
	}
	fmt.Printf("token endpoint: %s/token\n", ts.URL)

	step("Installing the CRD")
	if err := show("", "apply", "--server-side", "-f", filepath.Join("config", "crd", "bases")); err != nil {
		return err
	}
	if _, err := kubectl("", "wait", "--for=condition=Established", "crd/oauthclienttokens.oauth.tokensync.io", "--timeout=60s"); err != nil {
		return err
	}

	step("Creating the credentials Secret and an OAuthClientToken")
	if err := show("", "create", "secret", "generic", "demo-oauth-client",
		"--from-literal=client_id=demo-client", "--from-literal=client_secret=demo-secret"); err != nil {
		return err
	}
	manifest := fmt.Sprintf(`apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: demo
spec:
  credentialsRef:
    name: demo-oauth-client
  provider:
    tokenURL: %s/token
    scopes: ["wallets:read", "wallets:write"]
  target:
    name: demo-token
`, ts.URL)
	fmt.Print(manifest)
	if err := show(manifest, "apply", "-f", "-"); err != nil {
		return err
	}

	step("Running the manager (log: %s)", filepath.Join(work, "manager.log"))
	logFile, err := os.Create(filepath.Join(work, "manager.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	mgr := exec.Command(managerBin, "--kubeconfig", kubeconfig, "--health-probe-bind-address", "0",
		"--metrics-bind-address", "0", "--min-refresh-interval", "5s")
	// Trust the demo endpoint's self-signed certificate, and nothing else.
	mgr.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
	mgr.Stdout, mgr.Stderr = logFile, logFile
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	defer func() {
		_ = mgr.Process.Signal(syscall.SIGTERM)
		_ = mgr.Wait()
	}()

	if err := show("", "wait", "--for=condition=Ready", "oauthclienttoken/demo", "--timeout=60s"); err != nil {
		return err
	}
	if err := show("", "get", "oauthclienttokens", "-o", "wide"); err != nil {
		return err
	}

	last := ""
	for seen := 0; seen <= rotations; {
		fp, expires, err := secretFingerprint(kubectl)
		if err == nil && fp != last {
			if last == "" {
				step("Secret demo-token filled")
			} else {
				step("Token rotated")
				seen++
			}
			fmt.Printf("access_token: sha256 %s… (the token itself is never printed)\nexpires_at:   %s\n", fp, expires)
			_ = show("", "describe", "secret", "demo-token")
			if err := show("", "get", "oct", "demo"); err != nil {
				return err
			}
			last = fp
			if seen == rotations {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	step("Events")
	_ = show("", "get", "events", "--field-selector", "involvedObject.name=demo", "-o", "custom-columns=REASON:.reason,MESSAGE:.message")
	fmt.Printf("\nThe token endpoint issued %d tokens. Done.\n", len(srv.Issued()))
	if keep {
		step("Still running. Try: kubectl --kubeconfig %s get oct -w    (Ctrl-C to stop)", kubeconfig)
		<-ctx.Done()
	}
	return nil
}

// secretFingerprint returns a short digest of the Secret's access token and
// its expires_at value.
func secretFingerprint(kubectl func(string, ...string) (string, error)) (string, string, error) {
	out, err := kubectl("", "get", "secret", "demo-token", "-o", "json")
	if err != nil {
		return "", "", err
	}
	var s struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return "", "", err
	}
	tok, err := base64.StdEncoding.DecodeString(s.Data["access_token"])
	if err != nil || len(tok) == 0 {
		return "", "", fmt.Errorf("no token yet")
	}
	exp, _ := base64.StdEncoding.DecodeString(s.Data["expires_at"])
	sum := sha256.Sum256(tok)
	return hex.EncodeToString(sum[:])[:12], string(exp), nil
}
