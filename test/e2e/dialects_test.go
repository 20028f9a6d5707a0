//go:build e2e

package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/dot"
)

// TestJSONRequestsToDjangoJSONBackend runs a second Django OAuth Toolkit
// whose token endpoint reads only JSON bodies (JSONOAuthLibCore): an
// OAuthClientToken with requestFormat JSON gets a working token there, and
// the same object with the default form encoding is refused, so the format
// is what makes it work.
func TestJSONRequestsToDjangoJSONBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jsonSrv, err := dot.Start(ctx, dot.Options{JSONBackend: true, Stderr: os.Stderr})
	if err != nil {
		t.Fatalf("starting the JSON-backend server: %v", err)
	}
	t.Cleanup(func() { _ = jsonSrv.Stop() })

	const id, secret = "json-client", "js0n:/+ secret"
	if err := jsonSrv.CreateApplication(ctx, id, secret); err != nil {
		t.Fatal(err)
	}
	usedSecrets = append(usedSecrets, secret)
	ns := "jsonbackend"
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns,
		"--from-literal=client_id="+id, "--from-literal=client_secret="+secret)

	for _, auth := range []string{"ClientSecretBasic", "ClientSecretPost"} {
		name := "json-" + strings.ToLower(strings.TrimPrefix(auth, "ClientSecret"))
		mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: `+name+`
  namespace: `+ns+`
spec:
  credentialsRef:
    name: creds
  provider:
    tokenURL: `+jsonSrv.TokenURL+`
    authMethod: `+auth+`
    requestFormat: JSON
    scopes: ["read", "write"]
`)
		mustKubectl(t, "wait", "--for=condition=Ready", "oct/"+name, "-n", ns, "--timeout=90s")
		scope, err := jsonSrv.CheckToken(ctx, secretData(t, ns, name)["access_token"])
		if err != nil || scope != "read write" {
			t.Fatalf("%s: scope %q, err %v", auth, scope, err)
		}
	}

	// The negative control: form encoding against the JSON-only endpoint.
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: form
  namespace: `+ns+`
spec:
  credentialsRef:
    name: creds
  provider:
    tokenURL: `+jsonSrv.TokenURL+`
    authMethod: ClientSecretBasic
`)
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/form", "-n", ns, "--timeout=90s")
	if _, reason, msg := conditionOf(getStatus(t, ns, "form"), "Stalled"); reason != "TokenRequestRejected" || !strings.Contains(msg, "unsupported_grant_type") {
		t.Fatalf("form request: %s %q", reason, msg)
	}
}

// TestTemplatedSecretForDjango renders an Authorization header and a
// .netrc from the token, as pods consume them, and checks the token in them
// works at the server.
func TestTemplatedSecretForDjango(t *testing.T) {
	ctx := context.Background()
	ns := newAppNamespace(t, "templated", "tpl-client", "tpl:/+ secret")
	applyToken(t, ns, "tpl", "creds", `    scopes: ["read"]
  target:
    data:
      Authorization: "{{ .TokenType }} {{ .AccessToken }}"
      .netrc: "machine payments.example.com login oauth password {{ .AccessToken }}"
`)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/tpl", "-n", ns, "--timeout=90s")
	data := secretData(t, ns, "tpl")
	tok := strings.TrimPrefix(data["Authorization"], "Bearer ")
	if tok == data["Authorization"] || !strings.HasSuffix(data[".netrc"], " password "+tok) {
		t.Fatalf("rendered keys: %v", keysOf(data))
	}
	if _, err := oauthSrv.CheckToken(ctx, tok); err != nil {
		t.Fatalf("the rendered token is refused: %v", err)
	}
}
