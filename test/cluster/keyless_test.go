//go:build cluster

package cluster

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// The cluster's ServiceAccount issuer (hack/cluster/up.sh).
const clusterIssuer = "https://kubernetes.default.svc.cluster.local"

// keyless: a keyless object end to end on the node. An identity provider
// on the node's network (the test token server) trusts the cluster's
// ServiceAccount issuer, reading its discovery document and keys from the
// API server as any outside provider would. The manager pod, under its
// shipped RBAC, obtains the ServiceAccount's token from the TokenRequest
// API and presents it as its client assertion; no secret is stored.
func (c *checker) keyless(t *testing.T) {
	ca, err := os.ReadFile(filepath.Join(env.dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	// As a cluster whose issuer an outside provider reads does.
	mustApply(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cluster-test-anonymous-issuer-discovery}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:service-account-issuer-discovery}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:unauthenticated}
`)
	t.Cleanup(func() {
		_, _ = kubectl("delete", "clusterrolebinding", "cluster-test-anonymous-issuer-discovery", "--ignore-not-found")
	})

	audience := "https://idp." + c.mode + ".test"
	srv := tokenserver.New(tokenserver.Options{ExpiresIn: 3600, TrustedIssuers: []tokenserver.TrustedIssuer{{
		Issuer:       clusterIssuer,
		DiscoveryURL: "https://" + env.nodeIP + ":6443/.well-known/openid-configuration",
		Audience:     audience,
		RootCAs:      pool,
	}}})
	srv.RegisterFederatedClient("keyless-"+c.mode, tokenserver.FederatedClient{Issuer: clusterIssuer, Subject: tokenserver.ServiceAccountSubject(c.appNS, "keyless")})
	l, err := net.Listen("tcp", env.nodeIP+":0") // the node's network, where pods reach it
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })

	mustApply(t, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: keyless
  namespace: %[1]s
  annotations: {oauth.tokensync.io/allow-token-requests: "true"}
---
apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata: {name: keyless, namespace: %[1]s}
spec:
  serviceAccount: {name: keyless, audience: %[2]q}
  provider:
    tokenURL: http://%[3]s/token
    authMethod: ServiceAccountAssertion
    clientID: keyless-%[4]s
`, c.appNS, audience, l.Addr(), c.mode))
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/keyless", "-n", c.appNS, "--timeout=90s")
	token, _ := secretValue(t, c.appNS, "keyless", "access_token")
	if !srv.Valid(token) {
		t.Fatal("the keyless Secret does not hold a token the provider issued")
	}
	last := srv.LastRequest()
	if last.AuthMethod != tokenserver.AuthFederated || last.ClientID != "keyless-"+c.mode {
		t.Fatalf("the provider saw client %q authenticate with %q", last.ClientID, last.AuthMethod)
	}
	remember(last.Form.Get("client_assertion")) // a secret: the leak check searches every log for it
}
