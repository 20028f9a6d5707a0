//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"
)

// TestFixedCredentialsAreRetriedAtOnce applies an OAuthClientToken before
// its credentials Secret, then with a Secret missing a key: each time it
// goes Stalled, and each fix is picked up through the watch within
// seconds, far sooner than the stalled backoff (one minute and more).
func TestFixedCredentialsAreRetriedAtOnce(t *testing.T) {
	const ns, id, secret = "latecreds", "late-client", "l4te:/+ secret"
	if err := oauthSrv.CreateApplication(context.Background(), id, secret); err != nil {
		t.Fatal(err)
	}
	usedSecrets = append(usedSecrets, secret)
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	applyToken(t, ns, "late", "creds", "")
	mustKubectl(t, "wait", "--for=condition=Stalled", "oct/late", "-n", ns, "--timeout=60s")
	if _, reason, _ := conditionOf(getStatus(t, ns, "late"), "Stalled"); reason != "CredentialsNotFound" {
		t.Fatalf("reason %q, want CredentialsNotFound", reason)
	}

	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns, "--from-literal=client_id="+id)
	eventually(t, 15*time.Second, "CredentialsKeyMissing after the Secret appeared", func() bool {
		_, reason, _ := conditionOf(getStatus(t, ns, "late"), "Stalled")
		return reason == "CredentialsKeyMissing"
	})

	start := time.Now()
	manifest, _ := kubectl("create", "secret", "generic", "creds", "-n", ns,
		"--from-literal=client_id="+id, "--from-literal=client_secret="+secret, "--dry-run=client", "-o", "yaml")
	mustApply(t, manifest)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/late", "-n", ns, "--timeout=20s")
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("the fix took %s to be noticed", took)
	}
}
