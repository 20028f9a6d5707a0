//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// TestKeyless runs the manager, under its own RBAC, with no client secret
// anywhere: ServiceAccount tokens from the TokenRequest API as the client
// assertion and as the subject of an RFC 8693 token exchange, verified by
// the token server against the API server's discovery document and JWKS.
func TestKeyless(t *testing.T) {
	const ns, audience = "keyless", "https://idp.keyless.test"
	srv := tokenserver.New(tokenserver.Options{
		ExpiresIn:      3600,
		TrustedIssuers: []tokenserver.TrustedIssuer{saIssuer.TrustedIssuer(apiCA, audience)},
	})
	url, stop := srv.Start()
	t.Cleanup(stop)
	sub := tokenserver.ServiceAccountSubject(ns, "payments")
	srv.RegisterFederatedClient("payments-federated", tokenserver.FederatedClient{Issuer: saIssuer.URL, Subject: sub})
	srv.AddExchangePolicy(tokenserver.ExchangePolicy{Issuer: saIssuer.URL, Subject: sub})

	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustApply(t, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: payments
  namespace: `+ns+`
  annotations:
    oauth.tokensync.io/allow-token-requests: "true"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: not-asked
  namespace: `+ns+`
`)
	t.Cleanup(func() { _, _ = kubectl("delete", "namespace", ns, "--wait=false") })
	objects := map[string]string{
		"assertion": `
  provider:
    tokenURL: ` + url + `/token
    authMethod: ServiceAccountAssertion
    clientID: payments-federated`,
		"exchange": `
  provider:
    tokenURL: ` + url + `/token
    authMethod: None
    grant: TokenExchange
    audience: payments-api`,
	}
	// One at a time, so that the ServiceAccount token each one sent can be
	// read off the server for the leak check (the manager's output, events
	// and status must not hold it).
	for _, name := range []string{"assertion", "exchange"} {
		mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: `+name+`
  namespace: `+ns+`
spec:
  serviceAccount:
    name: payments
    audience: `+audience+objects[name]+"\n")
		mustKubectl(t, "wait", "--for=condition=Ready", "oct/"+name, "-n", ns, "--timeout=60s")
		if !srv.Valid(secretData(t, ns, name)["access_token"]) {
			t.Fatalf("%s: the Secret does not hold a token the server issued", name)
		}
		form := srv.LastRequest().Form
		saToken := form.Get("client_assertion") + form.Get("subject_token")
		if saToken == "" {
			t.Fatalf("%s: the server received no ServiceAccount token", name)
		}
		usedSecrets = append(usedSecrets, saToken)
	}
	var clients, subjects []string
	for _, it := range srv.Issued() {
		clients = append(clients, it.ClientID)
		subjects = append(subjects, it.Subject)
	}
	if !contains(clients, "payments-federated") || !contains(subjects, sub) {
		t.Fatalf("issued to clients %v, subjects %v", clients, subjects)
	}

	// A ServiceAccount that did not opt in: Stalled, nothing requested.
	before := srv.Requests()
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: refused
  namespace: `+ns+`
spec:
  serviceAccount:
    name: not-asked
    audience: `+audience+objects["assertion"]+"\n")
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/refused", "-n", ns, "--timeout=60s")
	if reason := mustKubectl(t, "get", "oct", "refused", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type=='Stalled')].reason}"); strings.TrimSpace(reason) != "ServiceAccountNotAllowed" {
		t.Fatalf("a ServiceAccount that did not opt in: Stalled reason %q", reason)
	}
	if srv.Requests() != before {
		t.Fatal("a request was sent for a ServiceAccount that did not opt in")
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
