//go:build cluster

package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZZNoSecretsInLogs runs last (go test runs tests in source order, and
// files in name order): no token or client secret the test saw appears in
// the manager's, the consumers', the toolkit's or the node's logs.
func TestZZNoSecretsInLogs(t *testing.T) {
	t.Run("NetworkStillIsolated", func(t *testing.T) { checkIsolated(t, true) })
	keepLog("django-oauth-toolkit", oauthLog.String())
	files, _ := filepath.Glob(filepath.Join(env.dir, "logs", "*.log"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			keepLog("node:"+filepath.Base(f), string(b))
		}
	}
	secretsMu.Lock()
	defer secretsMu.Unlock()
	logsMu.Lock()
	defer logsMu.Unlock()
	if len(secrets) < 4 {
		t.Fatalf("only %d secrets seen: the other tests did not run?", len(secrets))
	}
	for name, text := range seenLogs {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s's log contains a token or client secret (sha256 %s)", name, digest(s))
			}
		}
	}
	t.Logf("checked %d secrets against %d logs", len(secrets), len(seenLogs))
}
