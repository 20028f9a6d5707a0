//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// TestTokenExchangeWithAnIndependentServer: the manager, under its own
// RBAC, exchanges a ServiceAccount token from the TokenRequest API at an
// RFC 8693 server tokensync's authors did not write: zitadel/oidc's
// OpenID Provider (test/zitadel/harness), which verifies the subject token
// against the API server's discovery document and JWKS. The provider is
// found by discovery (issuerURL); the client authenticates with Basic, the
// only way zitadel reads a token exchange's client credentials.
func TestTokenExchangeWithAnIndependentServer(t *testing.T) {
	const ns, audience = "zitadel", "https://zitadel.test"
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, apiCA, 0o600); err != nil {
		t.Fatal(err)
	}
	issuer := testutil.StartZitadelHarness(t, filepath.Join("..", "..", "bin", "zitadel-harness"), saIssuer.URL, caFile, audience,
		tokenserver.ServiceAccountSubject(ns, "payments"))

	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") })
	mustApply(t, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: payments
  namespace: `+ns+`
  annotations:
    oauth.tokensync.io/allow-token-requests: "true"
---
apiVersion: v1
kind: Secret
metadata:
  name: zitadel-client
  namespace: `+ns+`
stringData:
  client_id: web
  client_secret: secret
---
apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: exchanged
  namespace: `+ns+`
spec:
  credentialsRef: {name: zitadel-client}
  serviceAccount:
    name: payments
    audience: `+audience+`
  provider:
    issuerURL: `+strings.TrimSuffix(issuer, "/")+`
    grant: TokenExchange
    authMethod: ClientSecretBasic
    tokenExchange:
      requestedTokenType: urn:ietf:params:oauth:token-type:access_token
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/exchanged", "-n", ns, "--timeout=60s")
	if got := strings.TrimSpace(mustKubectl(t, "get", "oct", "exchanged", "-n", ns, "-o", "jsonpath={.status.issuedTokenType}")); got != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("status.issuedTokenType %q", got)
	}
	data := secretData(t, ns, "exchanged")
	if data["access_token"] == "" || data["expires_at"] == "" {
		t.Fatalf("the Secret holds keys %v", keysOf(data))
	}
	usedSecrets = append(usedSecrets, data["access_token"])

	// Another ServiceAccount, which the server does not let exchange: the
	// server's refusal is reported, the other object's token stays.
	mustApply(t, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: other
  namespace: `+ns+`
  annotations:
    oauth.tokensync.io/allow-token-requests: "true"
---
apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: refused
  namespace: `+ns+`
spec:
  credentialsRef: {name: zitadel-client}
  serviceAccount:
    name: other
    audience: `+audience+`
  provider:
    issuerURL: `+strings.TrimSuffix(issuer, "/")+`
    grant: TokenExchange
    authMethod: ClientSecretBasic
`)
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/refused", "-n", ns, "--timeout=60s")
	if reason := strings.TrimSpace(mustKubectl(t, "get", "oct", "refused", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type=='Stalled')].reason}")); reason != "TokenRequestRejected" {
		t.Fatalf("a subject the server does not accept: Stalled reason %q", reason)
	}
	if secretData(t, ns, "exchanged")["access_token"] != data["access_token"] {
		t.Fatal("the first object's token changed")
	}
}
