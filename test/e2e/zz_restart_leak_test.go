//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run last (file order): they look back at everything the
// earlier ones did.

// TestRestartMintsNoToken restarts the manager while every token is valid:
// the new process must request no token and rewrite no Secret.
func TestRestartMintsNoToken(t *testing.T) {
	createFleet(t, fleetSize)
	before := managedSecrets(t)
	fleetRequests := fleetSrv.Requests()
	if len(before) == 0 {
		t.Fatal("no managed Secrets to restart with")
	}
	stopManager()
	logStart := len(managerOut.String())
	if err := startManager(os.Getenv("TOKENSYNC_MANAGER_BIN")); err != nil {
		t.Fatal(err)
	}
	// Every OAuthClientToken is reconciled by the new process: its
	// reconcile counter reaches the number of objects.
	eventually(t, 3*time.Minute, "the restarted manager to reconcile every object", func() bool {
		return reconcileCount() >= float64(len(before))
	})
	after := managedSecrets(t)
	for name, rv := range before {
		if after[name] != rv {
			t.Errorf("Secret %s was rewritten by the restarted manager", name)
		}
	}
	if n := fleetSrv.Requests() - fleetRequests; n != 0 {
		t.Errorf("the restarted manager sent %d token requests for the %d-object fleet", n, fleetSize)
	}
	_ = logStart
}

// managedSecrets maps namespace/name to resourceVersion of every Secret
// tokensync wrote, and records their tokens for the leak check.
func managedSecrets(t *testing.T) map[string]string {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name, Namespace, ResourceVersion string
			} `json:"metadata"`
			Data map[string]string `json:"data"`
		} `json:"items"`
	}
	out := mustKubectl(t, "get", "secrets", "-A", "-l", "oauth.tokensync.io/managed=true", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range list.Items {
		m[s.Metadata.Namespace+"/"+s.Metadata.Name] = s.Metadata.ResourceVersion
		if b, err := base64.StdEncoding.DecodeString(s.Data["access_token"]); err == nil && len(b) > 0 {
			seenTokens = append(seenTokens, string(b))
		}
	}
	return m
}

// TestNoSecretLeaks greps everything the manager printed, every event and
// every status for the client secrets and tokens the suite used, in every
// form findLeaks knows.
func TestNoSecretLeaks(t *testing.T) {
	managedSecrets(t)
	secrets := append([]string{clientSecret, rotated}, usedSecrets...)
	secrets = append(secrets, seenTokens...)
	if len(seenTokens) == 0 {
		t.Fatal("no token was seen: the leak check would check nothing")
	}
	sources := map[string]string{
		"manager output": managerOut.String(),
		"events":         mustKubectl(t, "get", "events", "-A", "-o", "json"),
		"events.k8s.io":  mustKubectl(t, "get", "events.events.k8s.io", "-A", "-o", "json"),
		"status":         mustKubectl(t, "get", "oauthclienttokens", "-A", "-o", "json"),
	}
	if !strings.Contains(sources["events.k8s.io"], "TokenIssued") {
		t.Fatal("no TokenIssued event recorded: the leak check of events would check nothing")
	}
	for where, text := range sources {
		for _, leak := range findLeaks(text, secrets) {
			t.Errorf("%s contains %s", where, leak)
		}
	}
}

var (
	usedSecrets []string
	seenTokens  []string
)

const fleetSize = 1000

// createFleet applies n OAuthClientTokens in one namespace and waits until
// every one is Ready.
func createFleet(t *testing.T, n int) {
	t.Helper()
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fleet\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", "fleet",
		"--from-literal=client_id=fleet", "--from-literal=client_secret=fleet-secret")
	usedSecrets = append(usedSecrets, "fleet-secret")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: oauth.tokensync.io/v1alpha1\nkind: OAuthClientToken\nmetadata:\n  name: t%04d\n  namespace: fleet\nspec:\n  credentialsRef:\n    name: creds\n  provider:\n    tokenURL: %s/token\n", i, fleetURL)
	}
	mustApply(t, b.String())
	eventually(t, 5*time.Minute, fmt.Sprintf("%d OAuthClientTokens to be Ready", n), func() bool {
		out, err := kubectl("get", "oct", "-n", "fleet", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		return err == nil && strings.Count(out, "True") == n
	})
	if got := fleetSrv.Requests(); got != n {
		t.Fatalf("%d token requests for %d objects, want exactly one each", got, n)
	}
}

// reconcileCount reads controller_runtime_reconcile_total for the
// controller from the manager's metrics endpoint.
func reconcileCount() float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var total float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "controller_runtime_reconcile_total{") && strings.Contains(line, `controller="oauthclienttoken"`) {
			if f := strings.Fields(line); len(f) == 2 {
				if v, err := strconv.ParseFloat(f[1], 64); err == nil {
					total += v
				}
			}
		}
	}
	return total
}
