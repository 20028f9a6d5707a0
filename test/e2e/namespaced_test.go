//go:build e2e

package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// managerUser is the manager's ServiceAccount as the API server names it.
const managerUser = "system:serviceaccount:" + operatorNS + ":tokensync-controller-manager"

// TestNamespacedInstall runs the manager with --watch-namespaces=team-a,team-b
// under exactly the RBAC of config/namespaced (the cluster-wide binding of
// the suite's install removed meanwhile): it gets a token for an object in
// team-a, never reconciles the one in an unwatched namespace, whose Secrets
// its ServiceAccount cannot read, and is never refused a request. It serves
// secure metrics, which a ServiceAccount bound to the metrics-reader
// ClusterRole may scrape.
func TestNamespacedInstall(t *testing.T) {
	const id, secret = "namespaced-client", "n4mespaced:/+ secret"
	fx := foIsolate(t)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600})
	plain, stopPlain := srv.Start()
	t.Cleanup(stopPlain)

	for _, ns := range []string{"team-a", "team-b", "unwatched"} {
		mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	}
	// The namespaced RBAC instead of the cluster-wide one, until the end.
	mustKubectl(t, "delete", "clusterrolebinding", "tokensync-manager-rolebinding")
	t.Cleanup(func() {
		for _, ns := range []string{"team-a", "team-b"} {
			_, _ = kubectl("delete", "rolebinding", "tokensync-manager-rolebinding", "-n", ns, "--ignore-not-found")
			_, _ = kubectl("delete", "role", "tokensync-manager-role", "-n", ns, "--ignore-not-found")
		}
		_, _ = kubectl("delete", "deployment,service", "-n", operatorNS, "--all")
		if out, err := kubectl("apply", "--server-side", "-k", filepath.Join(repoRoot, "test", "e2e", "install")); err != nil {
			t.Errorf("restoring the cluster-wide RBAC: %v\n%s", err, out)
		}
	})
	if out, err := kubectl("apply", "--server-side", "-k", filepath.Join(repoRoot, "config", "namespaced")); err != nil {
		t.Fatalf("applying config/namespaced: %v\n%s", err, out)
	}

	// What the ServiceAccount may do, as the API server decides it.
	canI := func(args ...string) string {
		out, _ := kubectl(append([]string{"auth", "can-i", "--as", managerUser}, args...)...)
		return strings.TrimSpace(out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "secrets", "-n", "team-a"}, "yes"},
		{[]string{"watch", "oauthclienttokens.oauth.tokensync.io", "-n", "team-b"}, "yes"},
		{[]string{"get", "secrets", "-n", "unwatched"}, "no"},
		{[]string{"list", "secrets", "-n", "unwatched"}, "no"},
		{[]string{"list", "secrets", "--all-namespaces"}, "no"},
		{[]string{"list", "oauthclienttokens.oauth.tokensync.io", "--all-namespaces"}, "no"},
		{[]string{"get", "leases.coordination.k8s.io", "-n", operatorNS}, "yes"},
		{[]string{"get", "secrets/tokensync-signing-key", "-n", operatorNS}, "yes"},
		{[]string{"create", "secrets", "-n", operatorNS}, "yes"},
		{[]string{"get", "secrets/other", "-n", operatorNS}, "no"},
	} {
		if got := canI(c.args...); got != c.want {
			t.Errorf("kubectl auth can-i %s as the manager: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}

	// A new install: no signing key yet, so that the manager creates it
	// under the namespace-scoped RBAC. The cluster-wide manager's key comes
	// back afterwards, byte for byte, so that its records stay trusted.
	key := strings.TrimSpace(mustKubectl(t, "get", "secret", "tokensync-signing-key", "-n", operatorNS, "-o", "jsonpath={.data.key}"))
	mustKubectl(t, "delete", "secret", "tokensync-signing-key", "-n", operatorNS)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "secret", "tokensync-signing-key", "-n", operatorNS, "--ignore-not-found")
		if out, err := kubectlIn("apiVersion: v1\nkind: Secret\nmetadata:\n  name: tokensync-signing-key\n  namespace: "+operatorNS+"\ndata:\n  key: "+key+"\n", "apply", "-f", "-"); err != nil {
			t.Errorf("restoring the signing key: %v\n%s", err, out)
		}
	})

	// Without client-go's watch-list (streaming lists), as against an API
	// server before Kubernetes 1.34: its informers list, and need list.
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	m := fx.start("namespaced", "--watch-namespaces=team-a,team-b", "--metrics-secure=true")
	m.waitLeader(t, 30*time.Second)
	foNamespace(t, "unwatched", id, secret, plain)
	foNamespace(t, "team-a", id, secret, plain)
	if out, err := kubectl("wait", "--for=condition=Ready", "oct/api", "-n", "team-a", "--timeout=60s"); err != nil {
		t.Fatalf("%v\n%s\nmanager output (tail):\n%s", err, out, tail(m.out.String(), 4000))
	}
	if tok, _ := foToken(t, "team-a"); !srv.Valid(tok) {
		t.Fatal("the Secret in team-a holds a token the server did not issue")
	}
	// The object in the unwatched namespace was created first: had the
	// manager seen it, it would be reconciled by now.
	time.Sleep(3 * time.Second)
	if st := mustKubectl(t, "get", "oct", "api", "-n", "unwatched", "-o", "jsonpath={.status.conditions}"); st != "" {
		t.Errorf("the object in the unwatched namespace has conditions: %s", st)
	}
	if out, err := kubectl("get", "secret", "api", "-n", "unwatched", "-o", "name"); err == nil {
		t.Errorf("a target Secret was written in the unwatched namespace: %s", out)
	}
	if n := len(foIssuedTo(srv, id)); n != 1 {
		t.Errorf("%d tokens issued, want 1 (team-a only)", n)
	}
	if strings.Contains(m.out.String(), "forbidden") {
		t.Errorf("the manager was refused a request under config/namespaced's RBAC:\n%s", tail(m.out.String(), 4000))
	}

	// Secure metrics: TokenReview and SubjectAccessReview decide who may
	// scrape (the metrics-auth ClusterRole, kept by config/namespaced).
	mustKubectl(t, "create", "serviceaccount", "scraper", "-n", "team-b")
	mustKubectl(t, "create", "clusterrolebinding", "e2e-scraper", "--clusterrole=tokensync-metrics-reader", "--serviceaccount=team-b:scraper")
	t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", "e2e-scraper") })
	mustKubectl(t, "create", "serviceaccount", "stranger", "-n", "team-b")
	scrape := func(sa string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, strings.Replace(m.metricsURL, "http://", "https://", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if sa != "" {
			tok := strings.TrimSpace(mustKubectl(t, "create", "token", sa, "-n", "team-b"))
			usedSecrets = append(usedSecrets, tok)
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		// The manager serves a self-signed certificate.
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback test server
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("scraping %s: %v", req.URL, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := scrape("scraper"); code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("scraping as a metrics reader: %d\n%s", code, tail(body, 500))
	}
	if code, _ := scrape("stranger"); code != http.StatusForbidden {
		t.Errorf("scraping as a ServiceAccount without the metrics-reader role: %d, want 403", code)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("scraping without a token: %d, want 401", code)
	}
}
