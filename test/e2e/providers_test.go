//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestClusterProviderSharedByTwoNamespaces: a platform team defines a
// ClusterOAuthProvider for Django OAuth Toolkit, with the client's
// credentials in the manager's namespace and tokenSharing Shared; two
// application namespaces it selects each reference it, a third it does
// not select is refused. The server issues exactly one token per lifetime
// for both objects, counted at the server.
func TestClusterProviderSharedByTwoNamespaces(t *testing.T) {
	const id, secret = "coap-shared-client", "sh4red:/+ provider"
	ctx := context.Background()
	if err := oauthSrv.CreateApplication(ctx, id, secret); err != nil {
		t.Fatal(err)
	}
	usedSecrets = append(usedSecrets, secret)
	mustKubectl(t, "create", "secret", "generic", "coap-shared-creds", "-n", operatorNS,
		"--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
	for _, ns := range []string{"coap-a", "coap-b"} {
		mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n  labels:\n    tokensync.io/provider-dot: allowed\n")
	}
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: coap-c\n")
	// Tokens are renewed 20 s after issue (they live 36000 s), so that a
	// renewal happens within the test.
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: ClusterOAuthProvider
metadata:
  name: dot-shared
spec:
  tokenURL: `+oauthSrv.TokenURL+`
  authMethod: ClientSecretBasic
  scopes: ["read"]
  allowed:
    scopes: ["read", "write"]
  credentialsRef:
    name: coap-shared-creds
  tokenSharing: Shared
  conditions:
  - namespaceSelector:
      matchLabels:
        tokensync.io/provider-dot: allowed
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "clusteroauthprovider/dot-shared", "--timeout=60s")
	if out := mustKubectl(t, "get", "coap", "dot-shared"); !strings.Contains(out, "Shared") || !strings.Contains(out, "True") {
		t.Fatalf("kubectl get coap:\n%s", out)
	}
	token := func(ns string) {
		mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: api
  namespace: `+ns+`
spec:
  providerRef:
    kind: ClusterOAuthProvider
    name: dot-shared
  refresh:
    renewBefore: 35980s
    defaultLifetime: 10h
`)
	}
	token("coap-a")
	token("coap-b")
	for _, ns := range []string{"coap-a", "coap-b"} {
		mustKubectl(t, "wait", "--for=condition=Ready", "oct/api", "-n", ns, "--timeout=60s")
	}
	count := func() int {
		n, err := oauthSrv.CountTokens(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("the server issued %d tokens for two objects sharing one provider, want 1", n)
	}
	a, b := secretData(t, "coap-a", "api")["access_token"], secretData(t, "coap-b", "api")["access_token"]
	if a == "" || a != b {
		t.Fatal("the two namespaces do not hold the same token")
	}
	if scope, err := oauthSrv.CheckToken(ctx, a); err != nil || scope != "read" {
		t.Fatalf("the shared token: scope %q, %v", scope, err)
	}

	// A namespace the provider does not select gets nothing.
	token("coap-c")
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/api", "-n", "coap-c", "--timeout=60s")
	if _, reason, _ := conditionOf(getStatus(t, "coap-c", "api"), "Stalled"); reason != "ProviderNotAllowed" {
		t.Fatalf("Stalled reason in a namespace not selected = %q, want ProviderNotAllowed", reason)
	}

	// One renewal: one more token for both.
	firstA, firstB := issuedAt(t, "coap-a", "api"), issuedAt(t, "coap-b", "api")
	eventually(t, 60*time.Second, "both objects renewed", func() bool {
		return issuedAt(t, "coap-a", "api") != firstA && issuedAt(t, "coap-b", "api") != firstB
	})
	if n := count(); n != 2 {
		t.Fatalf("after one renewal the server issued %d tokens in all, want 2", n)
	}
	a, b = secretData(t, "coap-a", "api")["access_token"], secretData(t, "coap-b", "api")["access_token"]
	if a == "" || a != b {
		t.Fatal("after the renewal the two namespaces do not hold the same token")
	}
	for _, ns := range []string{"coap-a", "coap-b", "coap-c"} {
		mustKubectl(t, "delete", "oct", "api", "-n", ns, "--timeout=30s")
	}
	mustKubectl(t, "delete", "clusteroauthprovider", "dot-shared", "--timeout=30s")
}

// TestClusterProviderNamespacedKind: an OAuthProvider serves the objects of
// its own namespace with the credentials Secret there, and reports Ready.
func TestClusterProviderNamespacedKind(t *testing.T) {
	const ns, id, secret = "oap-team", "oap-client", "n4mespaced:/+ provider"
	newAppNamespace(t, ns, id, secret)
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthProvider
metadata:
  name: dot
  namespace: `+ns+`
spec:
  tokenURL: `+oauthSrv.TokenURL+`
  authMethod: ClientSecretBasic
  scopes: ["read", "write"]
  credentialsRef:
    name: creds
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oauthprovider/dot", "-n", ns, "--timeout=60s")
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: api
  namespace: `+ns+`
spec:
  providerRef:
    kind: OAuthProvider
    name: dot
    scopes: ["read"]
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/api", "-n", ns, "--timeout=60s")
	if scope, err := oauthSrv.CheckToken(context.Background(), secretData(t, ns, "api")["access_token"]); err != nil || scope != "read" {
		t.Fatalf("the token: scope %q, %v", scope, err)
	}
	// The credentials Secret loses its secret: the provider is no longer Ready.
	mustKubectl(t, "patch", "secret", "creds", "-n", ns, "--type=json", "-p", `[{"op":"remove","path":"/data/client_secret"}]`)
	mustKubectl(t, "wait", "--for=condition=Stalled", "oauthprovider/dot", "-n", ns, "--timeout=60s")
	if out := mustKubectl(t, "get", "oap", "dot", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Stalled\")].reason}"); out != "CredentialsKeyMissing" {
		t.Fatalf("Stalled reason = %q, want CredentialsKeyMissing", out)
	}
}
