package testutil

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// StartZitadelHarness runs test/zitadel/harness (an independent RFC 8693
// server, zitadel/oidc's OpenID Provider; binary from
// hack/install-zitadel-harness.sh, path in $ZITADEL_HARNESS or bin) on a
// free loopback port, trusting subject tokens of saIssuer (whose https CA
// is caFile, if any) for audience and subject, and returns its issuer URL,
// with a trailing slash. Its one client is "web" with secret "secret".
func StartZitadelHarness(t *testing.T, bin, saIssuer, caFile, audience, subject string) string {
	t.Helper()
	if env := os.Getenv("ZITADEL_HARNESS"); env != "" {
		bin = env
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no harness binary (%v): run ZITADEL_HARNESS=$(hack/install-zitadel-harness.sh bin)", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-sa-issuer", saIssuer, "-audience", audience, "-subject", subject}
	if caFile != "" {
		args = append(args, "-sa-ca", caFile)
	}
	var out SyncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("harness output:\n%s", out.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(base + ".well-known/openid-configuration")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the harness did not come up: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
