//go:build e2e

package e2e

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// TestNoSecretsAtAnyLogLevel runs the manager binary once per
// --zap-log-level from 0 (info) to 10, each time until it has issued a
// token for a new OAuthClientToken whose credentials hold everything secret
// a manager reads: a client secret and a PEM private key (private_key_jwt),
// a kubernetes.io/tls Secret's tls.key (mutual TLS) and, in its kubeconfig,
// its ServiceAccount token. Nothing it printed may hold any of them, nor the
// tokens it wrote, in any form findLeaks knows. At 8 and above client-go
// would log the bodies of API requests and responses (the manager caps its
// logger below that).
func TestNoSecretsAtAnyLogLevel(t *testing.T) {
	const ns, id, secret = "loglevels", "loglevels-client", "l0g:levels/+ secret"
	fx := foIsolate(t)

	ca, err := tokenserver.NewCA("tokensync-e2e-loglevels")
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.ServerCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, tlsKeyPEM, err := ca.ClientCert(id)
	if err != nil {
		t.Fatal(err)
	}
	signer, privateKeyPEM, err := tokenserver.GenerateClientKey("RS256")
	if err != nil {
		t.Fatal(err)
	}
	srv := tokenserver.New(tokenserver.Options{ClientKeys: map[string]crypto.PublicKey{id: signer.Public()}, ExpiresIn: 3600})
	url, stop := srv.StartTLS(serverCert, ca.Pool()) // asks for (and verifies) a client certificate
	t.Cleanup(stop)

	dir := t.TempDir()
	files := map[string][]byte{"private_key": privateKeyPEM, "tls.crt": certPEM, "tls.key": tlsKeyPEM, "ca.crt": ca.CertPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns, "--from-literal=client_id="+id,
		"--from-literal=client_secret="+secret, "--from-file=private_key="+filepath.Join(dir, "private_key"))
	mustKubectl(t, "create", "secret", "tls", "client-tls", "-n", ns,
		"--cert="+filepath.Join(dir, "tls.crt"), "--key="+filepath.Join(dir, "tls.key"))
	mustKubectl(t, "create", "configmap", "token-ca", "-n", ns, "--from-file=ca.crt="+filepath.Join(dir, "ca.crt"))
	usedSecrets = append(usedSecrets, secret, string(privateKeyPEM), string(tlsKeyPEM))
	t.Cleanup(func() {
		_, _ = kubectl("delete", "oauthclienttoken", "--all", "-n", ns, "--wait=true", "--timeout=30s")
		_, _ = kubectl("delete", "secrets", "--all", "-n", ns)
	})

	lines := map[string]int{}
	for level := 0; level <= 10; level++ {
		flag := fmt.Sprint(level)
		if level == 0 {
			flag = "info" // the flag takes no 0
		}
		name := fmt.Sprintf("level-%d", level)
		m := fx.start(name, "--zap-log-level="+flag)
		m.waitLeader(t, 30*time.Second)
		applyTokenAt(t, ns, name, "creds", url+"/token", `    authMethod: PrivateKeyJWT
    tls:
      caBundle:
        configMapRef:
          name: token-ca
      clientCertificateSecretRef:
        name: client-tls
`)
		if out, err := kubectl("wait", "--for=condition=Ready", "oct/"+name, "-n", ns, "--timeout=60s"); err != nil {
			t.Fatalf("level %s: %v\n%s\nmanager output (tail):\n%s", flag, err, out, tail(m.out.String(), 4000))
		}
		tok := secretData(t, ns, name)["access_token"]
		if !srv.Valid(tok) {
			t.Fatalf("level %s: the Secret holds a token the server did not issue", flag)
		}
		m.stop()
		out := m.out.String()
		lines[flag] = strings.Count(out, "\n")
		var secrets []string
		for _, it := range srv.Issued() {
			secrets = append(secrets, it.AccessToken)
		}
		// And those of the earlier tests' objects, whose Secrets it reads too.
		secrets = append(secrets, managerToken, clientSecret, rotated)
		secrets = append(append(secrets, usedSecrets...), seenTokens...)
		for _, leak := range findLeaks(out, secrets) {
			t.Errorf("--zap-log-level=%s: the manager's output contains %s", flag, leak)
		}
	}
	t.Logf("lines of output by --zap-log-level: %v", lines)
	// The levels do something: the debug levels log more than info.
	if lines["1"] <= lines["info"] || lines["10"] < lines["1"] {
		t.Errorf("lines of output by level %v: want more at 1 than at info, and at 10 no fewer than at 1", lines)
	}
}
