//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests run last (file order): they look back at everything the
// earlier ones did.

// TestRestartMintsNoToken restarts the manager while every token is valid:
// the new process must request no token and rewrite no Secret.
func TestRestartMintsNoToken(t *testing.T) {
	before := managedSecrets(t)
	if len(before) == 0 {
		t.Fatal("no managed Secrets to restart with")
	}
	stopManager()
	logStart := len(managerOut.String())
	if err := startManager(os.Getenv("TOKENSYNC_MANAGER_BIN")); err != nil {
		t.Fatal(err)
	}
	// Every OAuthClientToken with a token is reconciled and found up to date.
	eventually(t, 60*time.Second, "the restarted manager to reconcile every token", func() bool {
		return strings.Count(managerOut.String()[logStart:], `"outcome":"unchanged"`) >= len(before)
	})
	after := managedSecrets(t)
	for name, rv := range before {
		if after[name] != rv {
			t.Errorf("Secret %s was rewritten by the restarted manager", name)
		}
	}
	if n := strings.Count(managerOut.String()[logStart:], `"outcome":"issued"`); n != 0 {
		t.Errorf("the restarted manager requested %d tokens", n)
	}
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
// every status for the client secrets and tokens the suite used.
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
		for _, s := range secrets {
			for _, form := range []string{s, url.QueryEscape(s), base64.StdEncoding.EncodeToString([]byte(s))} {
				if strings.Contains(text, form) {
					t.Errorf("%s contains a secret or token (%d characters)", where, len(s))
				}
			}
		}
	}
}

var (
	usedSecrets []string
	seenTokens  []string
)
