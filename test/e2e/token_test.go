//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleWithURL returns the Django OAuth Toolkit sample of config/samples
// with its token URL pointed at the local server, as a user would edit it.
func sampleWithURL(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "config", "samples", "oauth_v1alpha1_oauthclienttoken_django.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "https://payments.example.com/o/token/", oauthSrv.TokenURL)
	if s == string(b) {
		t.Fatal("the sample's token URL was not found")
	}
	return s
}

type tokenStatus struct {
	Status struct {
		ObservedGeneration int64 `json:"observedGeneration"`
		Conditions         []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expiresAt"`
	} `json:"status"`
}

func getStatus(t *testing.T, ns, name string) tokenStatus {
	t.Helper()
	var st tokenStatus
	if err := json.Unmarshal([]byte(mustKubectl(t, "get", "oauthclienttoken", name, "-n", ns, "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func conditionOf(st tokenStatus, typ string) (status, reason, msg string) {
	for _, c := range st.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

// TestLifecycle walks through what a user does: apply the sample, wait for
// Ready, use the token, rotate the client secret, lose the Secret.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+appNS+"\n")
	// The credentials Secret, created the way the README shows.
	mustKubectl(t, "create", "secret", "generic", "payments-oauth-client", "-n", appNS,
		"--from-literal=client_id="+clientID, "--from-literal=client_secret="+clientSecret)
	mustApply(t, withNamespace(sampleWithURL(t), appNS))

	mustKubectl(t, "wait", "--for=condition=Ready", "oauthclienttoken/payments", "-n", appNS, "--timeout=90s")

	data := secretData(t, appNS, "payments-token")
	first := data["access_token"]
	if first == "" || data["token_type"] != "Bearer" || data["expires_at"] == "" {
		t.Fatalf("Secret keys: %v", keysOf(data))
	}
	scope, err := oauthSrv.CheckToken(ctx, first)
	if err != nil {
		t.Fatalf("the token in the Secret is refused by the server: %v", err)
	}
	if scope != "read write" {
		t.Fatalf("granted scope %q, want %q", scope, "read write")
	}
	st := getStatus(t, appNS, "payments")
	if strings.Join(st.Status.Scopes, " ") != "read write" {
		t.Fatalf("status scopes = %v", st.Status.Scopes)
	}
	// expires_at matches DOT's default lifetime (36000 s).
	exp, err := time.Parse(time.RFC3339, data["expires_at"])
	if err != nil || time.Until(exp) < 9*time.Hour || time.Until(exp) > 10*time.Hour+time.Minute {
		t.Fatalf("expires_at = %s", data["expires_at"])
	}

	// The printer columns a user sees.
	out := mustKubectl(t, "get", "oct", "-n", appNS)
	for _, col := range []string{"READY", "SECRET", "EXPIRES", "RENEW AT", "AGE", "payments-token", "True"} {
		if !strings.Contains(out, col) {
			t.Fatalf("kubectl get oct output lacks %q:\n%s", col, out)
		}
	}
	if wide := mustKubectl(t, "get", "oct", "-n", appNS, "-o", "wide"); !strings.Contains(wide, "MESSAGE") {
		t.Fatalf("-o wide lacks the message column:\n%s", wide)
	}

	t.Run("client secret rotated", func(t *testing.T) {
		if err := oauthSrv.RotateSecret(ctx, clientID, rotated); err != nil {
			t.Fatal(err)
		}
		manifest, _ := kubectl("create", "secret", "generic", "payments-oauth-client", "-n", appNS,
			"--from-literal=client_id="+clientID, "--from-literal=client_secret="+rotated,
			"--dry-run=client", "-o", "yaml")
		mustApply(t, manifest)
		var second string
		eventually(t, 30*time.Second, "a new token after the credentials changed", func() bool {
			second = secretData(t, appNS, "payments-token")["access_token"]
			return second != first
		})
		if _, err := oauthSrv.CheckToken(ctx, second); err != nil {
			t.Fatalf("the new token is refused: %v", err)
		}
		first = second
	})

	t.Run("target Secret deleted", func(t *testing.T) {
		mustKubectl(t, "delete", "secret", "payments-token", "-n", appNS)
		eventually(t, 30*time.Second, "the Secret to be recreated", func() bool {
			out, err := kubectl("get", "secret", "payments-token", "-n", appNS, "-o", "name")
			return err == nil && strings.TrimSpace(out) != ""
		})
		tok := secretData(t, appNS, "payments-token")["access_token"]
		if _, err := oauthSrv.CheckToken(ctx, tok); err != nil {
			t.Fatalf("the recreated Secret's token is refused: %v", err)
		}
	})
}

func TestClientSecretPostWithAdminScope(t *testing.T) {
	ctx := context.Background()
	ns := newAppNamespace(t, "post", "post-client", "p0st:/+ secret")
	applyToken(t, ns, "admin", "creds", "    authMethod: ClientSecretPost\n    scopes: [\"read\", \"write\", \"admin\"]\n")
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/admin", "-n", ns, "--timeout=90s")
	scope, err := oauthSrv.CheckToken(ctx, secretData(t, ns, "admin")["access_token"])
	if err != nil || scope != "read write admin" {
		t.Fatalf("scope %q, err %v", scope, err)
	}
}

func TestInvalidScopeStalls(t *testing.T) {
	ns := newAppNamespace(t, "badscope", "scope-client", "sc0pe secret")
	applyToken(t, ns, "bogus", "creds", "    scopes: [\"bogus\"]\n")
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/bogus", "-n", ns, "--timeout=90s")
	st := getStatus(t, ns, "bogus")
	status, reason, msg := conditionOf(st, "Ready")
	if status != "False" || reason != "InvalidScope" || !strings.Contains(msg, "invalid_scope") {
		t.Fatalf("Ready = %s/%s %q", status, reason, msg)
	}
	if _, err := kubectl("get", "secret", "bogus", "-n", ns); err == nil {
		t.Fatal("a Secret was created without a token")
	}
}

func TestInvalidClientStalls(t *testing.T) {
	ns := newAppNamespace(t, "badclient", "wrong-client", "the-right-secret")
	usedSecrets = append(usedSecrets, "not-the-secret")
	mustKubectl(t, "create", "secret", "generic", "wrong", "-n", ns,
		"--from-literal=client_id=wrong-client", "--from-literal=client_secret=not-the-secret")
	applyToken(t, ns, "wrong-token", "wrong", "")
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/wrong-token", "-n", ns, "--timeout=90s")
	if _, reason, _ := conditionOf(getStatus(t, ns, "wrong-token"), "Stalled"); reason != "InvalidClient" {
		t.Fatalf("Stalled reason = %q, want InvalidClient", reason)
	}
}

// applyToken applies an OAuthClientToken for the Django OAuth Toolkit
// server; provider holds extra lines of spec.provider, indented.
func applyToken(t *testing.T, ns, name, creds, provider string) {
	t.Helper()
	applyTokenAt(t, ns, name, creds, oauthSrv.TokenURL, provider)
}

// applyTokenAt applies an OAuthClientToken for the token endpoint tokenURL.
func applyTokenAt(t *testing.T, ns, name, creds, tokenURL, provider string) {
	t.Helper()
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: `+name+`
  namespace: `+ns+`
spec:
  credentialsRef:
    name: `+creds+`
  provider:
    tokenURL: `+tokenURL+"\n"+provider)
}

// newAppNamespace creates a namespace with a credentials Secret "creds" for
// a new application registered at the OAuth server.
func newAppNamespace(t *testing.T, ns, id, secret string) string {
	t.Helper()
	if err := oauthSrv.CreateApplication(context.Background(), id, secret); err != nil {
		t.Fatal(err)
	}
	usedSecrets = append(usedSecrets, secret)
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns,
		"--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
	return ns
}

func withNamespace(manifest, ns string) string {
	return strings.ReplaceAll(manifest, "metadata:\n", "metadata:\n  namespace: "+ns+"\n")
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
