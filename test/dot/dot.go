// Package dot runs a real OAuth 2.0 server for end-to-end tests: Debian's
// Django OAuth Toolkit 1.7 (python3-django-oauth-toolkit, Django 3.2) on
// loopback, with a throwaway sqlite database. hack/install-oauth-server.sh
// installs it; the Django project is in server/ (see server/dot.py).
//
//	srv, err := dot.Start(ctx, dot.Options{Stderr: os.Stderr})
//	defer srv.Stop()
//	err = srv.CreateApplication(ctx, "my-client", "my secret")
//	// POST srv.TokenURL: grant_type=client_credentials [scope=read write admin]
//	scope, err := srv.CheckToken(ctx, accessToken)
//
// The server knows the scopes read, write, admin and introspection, and
// grants "read write admin" to a client that asks for none (unless the
// application was created with its own scopes). Errors are RFC 6749 JSON as
// the toolkit writes it, e.g. 400 {"error": "invalid_scope"}, or 401
// {"error": "invalid_client"} with WWW-Authenticate: Bearer
// error="invalid_client".
//
// # Client authentication
//
// DOT 1.7 authenticates a client in OAuth2Validator.authenticate_client
// (oauth2_provider/oauth2_validators.py): HTTP Basic first, then the body.
//
// Basic (_authenticate_basic_auth): the Authorization header must be
// "Basic <b64>" with the scheme spelled exactly "Basic". The toolkit
// base64-decodes (non-strict: characters outside the alphabet are dropped),
// decodes the bytes as UTF-8, splits at the first ':' and applies Python's
// urllib.parse.unquote_plus to both halves, as RFC 6749 section 2.3.1 asks
// (client id and secret form-urlencoded before Basic encoding). So a client
// must send url.QueryEscape(id) + ":" + url.QueryEscape(secret): then any
// secret works. Sent raw, a '+' turns into a space and "%XX" is decoded, so
// a secret containing '+' or '%' fails (':', '/' and spaces survive; a space
// may be sent as '+' or "%20"). The secret is compared with the stored one
// in plain text (1.7 does not hash secrets).
//
// Body: if Basic is absent or fails, client_id and client_secret from the
// form body (decoded by Django like any form) are tried, so a bad Basic
// header with good body credentials still succeeds.
//
// With Options.JSONBackend the token endpoint uses
// oauth2_provider.oauth2_backends.JSONOAuthLibCore, which exists in 1.7: it
// reads the body only as a JSON object (Basic still works), and a
// form-encoded body then reads as empty: 400 {"error":
// "unsupported_grant_type"}.
package dot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokensync/tokensync/test/testutil"
)

// DefaultPython is Debian's interpreter, which sees Debian's packages (a
// python3 earlier on PATH may not). The environment variable DOT_PYTHON,
// which hack/install-oauth-server.sh also honours, overrides it.
const DefaultPython = "/usr/bin/python3"

// Options configure the server.
type Options struct {
	// AccessTokenExpireSeconds is the token lifetime; the toolkit's default,
	// 36000, when zero.
	AccessTokenExpireSeconds int
	// JSONBackend makes the token endpoint read application/json bodies,
	// and only those (JSONOAuthLibCore).
	JSONBackend bool
	// Stderr receives the server's output: startup messages and one line
	// per request (method, path without query, status, size). Never
	// headers or bodies, so never secrets or tokens. Discarded when nil.
	Stderr io.Writer
	// Python is the interpreter; $DOT_PYTHON or DefaultPython when empty.
	Python string
	// Host is the IPv4 address the server listens on; 127.0.0.1 when
	// empty. The cluster test (test/cluster) gives its node's IP, inside
	// the node's network namespace, so that pods reach the server.
	Host string
}

// Server is a running Django OAuth Toolkit.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:PORT.
	URL string
	// TokenURL is the token endpoint, URL + "/o/token/".
	TokenURL string
	// IntrospectURL is the RFC 7662 endpoint, URL + "/o/introspect/". It
	// accepts a client's own credentials, or a bearer token with scope
	// introspection.
	IntrospectURL string

	python string
	dir    string
	env    []string
	cmd    *exec.Cmd
	done   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

func python(p string) string {
	if p != "" {
		return p
	}
	if p := os.Getenv("DOT_PYTHON"); p != "" {
		return p
	}
	return DefaultPython
}

// pythonArgs runs the management script isolated from PYTHON* variables and
// user site-packages (-I), without writing bytecode into the source tree
// (-B), with unbuffered output (-u).
func pythonArgs(args ...string) []string {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "server", "dot.py")
	return append([]string{"-I", "-B", "-u", script}, args...)
}

// Available reports whether the toolkit can be run: nil if the interpreter
// ($DOT_PYTHON or DefaultPython) imports Django and oauth2_provider.
func Available() error {
	py := python("")
	out, err := exec.Command(py, "-I", "-c", "import django, oauth2_provider").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import Django OAuth Toolkit (%v: %s): run hack/install-oauth-server.sh",
			py, err, bytes.TrimSpace(out))
	}
	return nil
}

// Start migrates a new database in a temporary directory and starts the
// server on a free port of Options.Host (loopback by default). It returns once the server answers HTTP.
// ctx bounds the start only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "tokensync-dot-")
	if err != nil {
		return nil, err
	}
	s := &Server{python: python(opts.Python), dir: dir}
	for _, kv := range os.Environ() {
		// Only this package configures the server.
		if !strings.HasPrefix(kv, "DOT_") && !strings.HasPrefix(kv, "DJANGO_") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env, "DOT_DB="+filepath.Join(dir, "db.sqlite3"))
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
	// The free port is found by binding and closing it; another process may
	// take it before the server binds. The server then exits: try another.
	for attempt := 1; ; attempt++ {
		err = s.serve(ctx, opts.Host, opts.Stderr)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExited) || attempt == 3 || ctx.Err() != nil {
			_ = s.Stop()
			return nil, err
		}
	}
}

var errExited = errors.New("the Django OAuth Toolkit server exited before it served")

func (s *Server) serve(ctx context.Context, host string, stderr io.Writer) error {
	// A port free on loopback is, in practice, free on the host's other
	// addresses too; if not, the server exits and Start tries another.
	port, err := testutil.FreePort()
	if err != nil {
		return err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr := fmt.Sprintf("%s:%d", host, port)
	s.URL = "http://" + addr
	s.TokenURL = s.URL + "/o/token/"
	s.IntrospectURL = s.URL + "/o/introspect/"
	s.cmd = exec.Command(s.python, pythonArgs("serve", "--addr", addr)...)
	s.cmd.Env = s.env
	s.cmd.Dir = s.dir
	// Its own process group, so that Stop reaches every process it starts.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stdout, s.cmd.Stderr = stderr, stderr
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("starting Django OAuth Toolkit: %w", err)
	}
	done := make(chan struct{})
	s.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(s.cmd)

	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Any HTTP answer will do: without a token this one is 403.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/hello/", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("%w (on %s)", errExited, addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Django OAuth Toolkit server did not answer on %s within 30s", addr)
		}
	}
}

// run runs a management subcommand of server/dot.py against the database,
// with a secret, if any, on stdin (not in argv, where ps would show it).
func (s *Server) run(ctx context.Context, secret string, args ...string) error {
	cmd := exec.CommandContext(ctx, s.python, pythonArgs(args...)...)
	cmd.Env = s.env
	cmd.Dir = s.dir
	// dot.py strips exactly one trailing newline.
	cmd.Stdin = strings.NewReader(secret + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dot.py %s: %v: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

// CreateApplication registers a confidential client allowed the
// client-credentials grant. The secret may contain any characters. With
// scopes, the client may request only those and gets them when it asks for
// none; otherwise it may request any of the server's scopes.
func (s *Server) CreateApplication(ctx context.Context, clientID, clientSecret string, scopes ...string) error {
	args := []string{"create-app", "--client-id", clientID}
	if len(scopes) > 0 {
		args = append(args, "--scopes")
		args = append(args, scopes...)
	}
	return s.run(ctx, clientSecret, args...)
}

// RotateSecret replaces a client's secret. The running server reads the
// database on every request, so the old secret fails from the next request
// on. Tokens issued before stay valid.
func (s *Server) RotateSecret(ctx context.Context, clientID, newSecret string) error {
	return s.run(ctx, newSecret, "rotate-secret", "--client-id", clientID)
}

// CountTokens returns how many access tokens the server issued to
// clientID: each one is a token request that succeeded, counted at the
// server.
func (s *Server) CountTokens(ctx context.Context, clientID string) (int, error) {
	cmd := exec.CommandContext(ctx, s.python, pythonArgs("count-tokens", "--client-id", clientID)...)
	cmd.Env = s.env
	cmd.Dir = s.dir
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("dot.py count-tokens: %v", err)
	}
	var n int
	if _, err := fmt.Sscan(string(out), &n); err != nil {
		return 0, fmt.Errorf("dot.py count-tokens printed %q: %v", bytes.TrimSpace(out), err)
	}
	return n, nil
}

// CheckToken calls the protected resource GET /api/hello/, which needs a
// valid token with scope read, and returns the token's scope as the server
// recorded it. Any answer but 200 (the toolkit says 403 to a bad token) is
// an error.
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
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("protected resource answered %s %s", resp.Status, bytes.TrimSpace(body))
	}
	var hello struct {
		Scope string `json:"scope"`
	}
	if err := json.Unmarshal(body, &hello); err != nil {
		return "", fmt.Errorf("protected resource: %w", err)
	}
	return hello.Scope, nil
}

// Stop kills the server's process group and removes its directory and
// database. It may be called more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil {
			pgid := -s.cmd.Process.Pid
			_ = syscall.Kill(pgid, syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(pgid, syscall.SIGKILL)
				<-s.done
			}
		}
		s.stopErr = os.RemoveAll(s.dir)
	})
	return s.stopErr
}
