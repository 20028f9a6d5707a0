// Package dot runs a real OAuth 2.0 server for end-to-end tests: Debian's
// Django OAuth Toolkit 1.7 (python3-django-oauth-toolkit), on loopback, with
// a throwaway sqlite database. hack/install-oauth-server.sh installs it.
//
// The toolkit decodes HTTP Basic client credentials as RFC 6749 section
// 2.3.1 says: base64, split at the first ':', then unquote_plus on each part
// (so '+' means space and %XX escapes are decoded). It also accepts
// client_id and client_secret in the form body.
package dot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// DefaultPython is Debian's interpreter, which sees Debian's packages.
const DefaultPython = "/usr/bin/python3"

// Options configure the server.
type Options struct {
	// AccessTokenExpireSeconds is the token lifetime; the toolkit's 36000
	// when zero.
	AccessTokenExpireSeconds int
	// JSONBackend makes the token endpoint accept application/json bodies
	// (oauth2_provider.oauth2_backends.JSONOAuthLibCore).
	JSONBackend bool
	// Stderr receives the server's request log (never bodies or secrets).
	Stderr io.Writer
	// Python is the interpreter; DefaultPython when empty.
	Python string
}

// Server is a running Django OAuth Toolkit.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:PORT.
	URL string
	// TokenURL is the token endpoint.
	TokenURL string

	python string
	dir    string
	env    []string
	cmd    *exec.Cmd
	done   chan struct{}
}

func serverScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "server", "dot.py")
}

// Available reports whether the toolkit can be run.
func Available() error {
	if err := exec.Command(DefaultPython, "-c", "import django, oauth2_provider").Run(); err != nil {
		return fmt.Errorf("Django OAuth Toolkit is not importable by %s (%v): run hack/install-oauth-server.sh", DefaultPython, err)
	}
	return nil
}

// Start migrates a new database and starts the server on a free loopback port.
func Start(ctx context.Context, opts Options) (*Server, error) {
	python := opts.Python
	if python == "" {
		python = DefaultPython
	}
	dir, err := os.MkdirTemp("", "tokensync-dot-")
	if err != nil {
		return nil, err
	}
	s := &Server{python: python, dir: dir, done: make(chan struct{})}
	s.env = append(os.Environ(), "DOT_DB="+filepath.Join(dir, "db.sqlite3"), "PYTHONDONTWRITEBYTECODE=1")
	if opts.AccessTokenExpireSeconds > 0 {
		s.env = append(s.env, fmt.Sprintf("DOT_ACCESS_TOKEN_EXPIRE_SECONDS=%d", opts.AccessTokenExpireSeconds))
	}
	if opts.JSONBackend {
		s.env = append(s.env, "DOT_JSON_BACKEND=1")
	}
	if err := s.run(ctx, "", "migrate"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s.URL = "http://" + addr
	s.TokenURL = s.URL + "/o/token/"
	s.cmd = exec.Command(python, serverScript(), "serve", "--addr", addr)
	s.cmd.Env = s.env
	s.cmd.Dir = dir
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if opts.Stderr != nil {
		s.cmd.Stdout, s.cmd.Stderr = opts.Stderr, opts.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting Django OAuth Toolkit: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			_ = os.RemoveAll(dir)
			return nil, errors.New("Django OAuth Toolkit exited before it served")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("Django OAuth Toolkit did not listen on %s within 30s", addr)
		}
	}
}

// run runs a management subcommand, with stdin (a secret) piped in.
func (s *Server) run(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, s.python, append([]string{serverScript()}, args...)...)
	cmd.Env = s.env
	cmd.Dir = s.dir
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dot.py %s: %v: %s", args[0], err, out)
	}
	return nil
}

// CreateApplication registers a confidential client allowed the
// client-credentials grant.
func (s *Server) CreateApplication(ctx context.Context, clientID, clientSecret string) error {
	return s.run(ctx, clientSecret, "create-app", "--client-id", clientID)
}

// RotateSecret changes a client's secret; the old one stops working at once.
func (s *Server) RotateSecret(ctx context.Context, clientID, newSecret string) error {
	return s.run(ctx, newSecret, "rotate-secret", "--client-id", clientID)
}

// CheckToken calls a protected resource (scope read) with the token and
// returns the token's scope as the server records it.
func (s *Server) CheckToken(ctx context.Context, accessToken string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/hello/", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("protected resource answered %s", resp.Status)
	}
	var body struct {
		Scope string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Scope, nil
}

// Stop kills the server and removes its database.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	return os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
