// Package testutil holds helpers shared by the end-to-end suite, the
// benchmark and the test servers' harnesses.
package testutil

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a process's output and the test reading
// it may use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TokenKubeconfig returns a kubeconfig for the API server at server, whose
// serving certificate is signed by the PEM CA caData, that authenticates
// with a bearer token (a ServiceAccount's, for a manager run under its own
// RBAC).
func TokenKubeconfig(server string, caData []byte, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: tokensync
  user:
    token: %s
contexts:
- name: tokensync
  context:
    cluster: envtest
    user: tokensync
current-context: tokensync
`, server, base64.StdEncoding.EncodeToString(caData), token)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a process that must be told its port before it starts.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LeakForms returns the forms a secret could leak in: as it is,
// URL-encoded, base64 (standard and URL alphabets, padded or not),
// JSON-escaped and hex.
func LeakForms(s string) []string {
	b := []byte(s)
	j, _ := json.Marshal(s) // a string always marshals
	forms := []string{
		s,
		url.QueryEscape(s),
		url.PathEscape(s),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		strings.Trim(string(j), `"`),
		hex.EncodeToString(b),
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// Leaks returns a description of each secret of secrets that text holds in
// one of its LeakForms (never the secret itself).
func Leaks(text string, secrets ...string) []string {
	var out []string
	for i, s := range secrets {
		if len(s) < 6 {
			continue // too short to search for without false alarms
		}
		for k, f := range LeakForms(s) {
			if strings.Contains(text, f) {
				out = append(out, fmt.Sprintf("secret #%d (%d characters), in its form #%d", i, len(s), k))
				break
			}
		}
	}
	return out
}

// Kubectl runs kubectl against one cluster, as the user of Kubeconfig.
type Kubectl struct {
	Bin        string
	Kubeconfig string
}

// Run runs kubectl with args, and stdin unless empty, and returns its
// combined output.
func (k Kubectl) Run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(k.Bin, append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Must runs kubectl with args and fails the test if it fails.
func (k Kubectl) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := k.Run("", args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Apply runs kubectl apply -f - with manifest and fails the test if it fails.
func (k Kubectl) Apply(t testing.TB, manifest string) {
	t.Helper()
	if out, err := k.Run(manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// HeapAlloc returns the bytes of live heap after two collections: what a
// memory test's objects hold is the difference of two readings.
func HeapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
