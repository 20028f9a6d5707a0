//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// Leader election and crash tests. They run replicas of the manager binary
// of their own, with short lease timings, so the suite's manager (mgrProc)
// is stopped for their duration and started again, with startManager, when
// they end: the tests after them find it as it was.

const (
	foLeaseName     = "tokensync-leader.oauth.tokensync.io"
	foLeaseDuration = 4 * time.Second
	foRenewDeadline = 3 * time.Second
	foRetryPeriod   = 1 * time.Second
	// foAcquiredLog is what client-go's leader election logs (through
	// controller-runtime's logger) when a process becomes the leader.
	foAcquiredLog = `"msg":"Successfully acquired lease"`
)

// foManager is one replica of the manager binary started by these tests.
type foManager struct {
	name       string
	cmd        *exec.Cmd
	out        *testutil.SyncBuffer // this process's output only
	metricsURL string
	done       chan struct{} // closed once the process has exited
}

// foFixture stops the suite's manager for the duration of a test and
// starts it again at the end.
type foFixture struct {
	t     *testing.T
	bin   string
	procs []*foManager
}

// foIsolate stops the suite's manager and registers a cleanup that stops
// every replica the test started (gracefully, releasing the lease) and
// starts the suite's manager again the way TestMain did, waiting until it
// leads.
func foIsolate(t *testing.T) *foFixture {
	t.Helper()
	fx := &foFixture{t: t, bin: os.Getenv("TOKENSYNC_MANAGER_BIN")}
	if mgrProc == nil {
		t.Fatal("the suite's manager is not running")
	}
	stopManager()
	t.Cleanup(func() {
		for _, m := range fx.procs {
			m.stop()
		}
		from := len(managerOut.String())
		if err := startManager(fx.bin); err != nil {
			t.Errorf("restarting the suite's manager: %v", err)
			return
		}
		// The suite's manager uses the default 15s lease: if a replica was
		// killed holding the lease it waits that long.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(managerOut.String()[from:], foAcquiredLog) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("the restarted suite manager did not acquire the lease within 60s:\n%s", tail(managerOut.String()[from:], 4000))
	})
	return fx
}

// start runs a replica with the flags of startManager and short lease
// timings, then args (a flag given twice takes its last value). Its output
// also goes to managerOut, so that the leak check covers it.
func (fx *foFixture) start(name string, args ...string) *foManager {
	t := fx.t
	t.Helper()
	probe, err := testutil.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := testutil.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	m := &foManager{
		name:       name,
		out:        &testutil.SyncBuffer{},
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		done:       make(chan struct{}),
	}
	m.cmd = exec.Command(fx.bin,
		"--kubeconfig", managerKC,
		"--allow-insecure-http",
		"--leader-elect",
		"--leader-election-namespace", operatorNS,
		"--leader-election-lease-duration", foLeaseDuration.String(),
		"--leader-election-renew-deadline", foRenewDeadline.String(),
		"--leader-election-retry-period", foRetryPeriod.String(),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--metrics-secure=false",
		"--zap-log-level", "debug",
		"--kube-api-qps", "500", "--kube-api-burst", "1000", "--concurrent-reconciles", "8",
	)
	m.cmd.Args = append(m.cmd.Args, args...)
	w := io.MultiWriter(m.out, managerOut)
	m.cmd.Stdout = w
	m.cmd.Stderr = w
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting manager %s: %v", name, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	fx.procs = append(fx.procs, m)
	return m
}

func (m *foManager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// leads reports whether the process has logged that it acquired the lease.
func (m *foManager) leads() bool { return strings.Contains(m.out.String(), foAcquiredLog) }

// foBecameLeader matches the LeaderElection event a new leader records on
// the Lease, "<identity> became leader", as the manager logs it; the
// identity is controller-runtime's hostname + "_" + a UUID.
var foBecameLeader = regexp.MustCompile(`"msg":"([^"\s]+_[0-9a-f-]{36}) became leader"`)

// identity returns the lease holder identity the process logged when it
// became the leader, or "".
func (m *foManager) identity() string {
	if s := foBecameLeader.FindStringSubmatch(m.out.String()); s != nil {
		return s[1]
	}
	return ""
}

// kill sends SIGKILL: no lease release, no graceful shutdown.
func (m *foManager) kill() {
	if m.exited() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// stop sends SIGTERM, as stopManager does, and kills after 15s.
func (m *foManager) stop() {
	if m.exited() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		m.kill()
	}
}

func (m *foManager) waitLeader(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m.leads() {
			return
		}
		if m.exited() {
			t.Fatalf("manager %s exited:\n%s", m.name, tail(m.out.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("manager %s did not acquire the lease within %v:\n%s", m.name, timeout, tail(m.out.String(), 4000))
}

// foLeaseHolder returns the holderIdentity and leaseTransitions of the
// leader election Lease.
func foLeaseHolder(t *testing.T) (string, int) {
	t.Helper()
	var l struct {
		Spec struct {
			HolderIdentity   *string `json:"holderIdentity"`
			LeaseTransitions *int    `json:"leaseTransitions"`
		} `json:"spec"`
	}
	out := mustKubectl(t, "get", "lease", foLeaseName, "-n", operatorNS, "-o", "json")
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	h, n := "", 0
	if l.Spec.HolderIdentity != nil {
		h = *l.Spec.HolderIdentity
	}
	if l.Spec.LeaseTransitions != nil {
		n = *l.Spec.LeaseTransitions
	}
	return h, n
}

// foNamespace creates a namespace with a credentials Secret "creds" and an
// OAuthClientToken "api" for the token endpoint at tokenURL, and removes
// the object and the Secrets when the test ends (envtest runs no garbage
// collector), recording the token for the leak check first.
func foNamespace(t *testing.T, ns, id, secret, tokenURL string) {
	t.Helper()
	usedSecrets = append(usedSecrets, secret)
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	mustKubectl(t, "create", "secret", "generic", "creds", "-n", ns,
		"--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
	t.Cleanup(func() {
		if out, err := kubectl("get", "secret", "api", "-n", ns, "-o", "name"); err == nil && strings.TrimSpace(out) != "" {
			secretData(t, ns, "api")
		}
		_, _ = kubectl("delete", "oauthclienttoken", "--all", "-n", ns, "--wait=true", "--timeout=30s")
		_, _ = kubectl("delete", "secrets", "-n", ns, "-l", "oauth.tokensync.io/managed=true")
		_, _ = kubectl("delete", "secret", "creds", "-n", ns)
	})
	mustApply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: api
  namespace: `+ns+`
spec:
  credentialsRef:
    name: creds
  provider:
    tokenURL: `+tokenURL+`/token
`)
}

// foToken reads the access token and expiry of the Secret api.
func foToken(t *testing.T, ns string) (string, time.Time) {
	t.Helper()
	d := secretData(t, ns, "api")
	exp, err := time.Parse(time.RFC3339, d["expires_at"])
	if err != nil {
		t.Fatalf("expires_at %q: %v", d["expires_at"], err)
	}
	return d["access_token"], exp
}

func foIssuedTo(srv *tokenserver.Server, id string) []tokenserver.IssuedToken {
	var out []tokenserver.IssuedToken
	for _, it := range srv.Issued() {
		if it.ClientID == id {
			out = append(out, it)
		}
	}
	return out
}

// TestLeaderFailover runs two replicas, kills the leader with SIGKILL right
// after it renewed a 12-second token, and checks that the other one takes
// the lease within the lease duration (plus a margin) and keeps renewing
// the token so that the Secret never holds an expired one, without a
// burst of token requests.
func TestLeaderFailover(t *testing.T) {
	const ns, id, secret = "failover", "failover-client", "f4il:over/+ secret"
	fx := foIsolate(t)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 12})
	url, stopSrv := srv.Start()
	t.Cleanup(stopSrv)

	replicas := []*foManager{fx.start("a"), fx.start("b")}
	var leader, follower *foManager
	eventually(t, 30*time.Second, "one replica to acquire the lease", func() bool {
		for i, m := range replicas {
			if m.leads() {
				leader, follower = m, replicas[1-i]
				return true
			}
		}
		return false
	})
	hostname, _ := os.Hostname()
	eventually(t, 10*time.Second, "the leader to log its identity", func() bool { return leader.identity() != "" })
	holder, transitions := foLeaseHolder(t)
	if holder != leader.identity() || !strings.HasPrefix(holder, hostname+"_") {
		t.Fatalf("lease holder %q, want the leader's identity %q (%s_<uuid>)", holder, leader.identity(), hostname)
	}
	t.Logf("replica %s leads as %s (transitions %d)", leader.name, holder, transitions)

	created := time.Now()
	foNamespace(t, ns, id, secret, url)
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/api", "-n", ns, "--timeout=60s")
	first, _ := foToken(t, ns)
	if !srv.Valid(first) {
		t.Fatal("the Secret holds a token the server did not issue or that expired")
	}
	// Kill right after a renewal: the new leader then has the whole
	// renewal window (10s, the minimum refresh interval) to take over, and
	// the Secret's token must never be found expired.
	var renewed string
	eventually(t, 20*time.Second, "the leader to renew the token", func() bool {
		renewed, _ = foToken(t, ns)
		return renewed != first
	})
	if follower.leads() {
		t.Fatalf("both replicas logged that they acquired the lease:\n%s", tail(follower.out.String(), 4000))
	}
	killedAt := time.Now()
	leader.kill()
	t.Logf("killed leader %s (SIGKILL) %v after the object was created", leader.name, killedAt.Sub(created).Round(time.Millisecond))

	// The follower's takeover, timed to 50ms.
	acquired := make(chan time.Duration, 1)
	go func() {
		for time.Since(killedAt) < 60*time.Second && !follower.exited() {
			if follower.leads() {
				acquired <- time.Since(killedAt)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(acquired)
	}()

	const clockMargin = 500 * time.Millisecond
	tokens := []string{renewed}
	stale := 0
	for time.Since(killedAt) < 26*time.Second {
		tok, exp := foToken(t, ns)
		now := time.Now()
		if !now.Before(exp.Add(-clockMargin)) {
			stale++
			if stale <= 3 {
				t.Errorf("%v after the kill the Secret holds a token that expires at %s (now %s)",
					now.Sub(killedAt).Round(time.Millisecond), exp.Format(time.RFC3339), now.UTC().Format(time.RFC3339Nano))
			}
		}
		if !srv.Valid(tok) {
			t.Errorf("%v after the kill the Secret holds a token the server does not accept", now.Sub(killedAt).Round(time.Millisecond))
		}
		if tok != tokens[len(tokens)-1] {
			tokens = append(tokens, tok)
			t.Logf("token renewed %v after the kill, expires at %s", now.Sub(killedAt).Round(time.Millisecond), exp.Format(time.RFC3339))
		}
		time.Sleep(500 * time.Millisecond)
	}

	took, ok := <-acquired
	if !ok {
		t.Fatalf("replica %s never acquired the lease after the leader was killed:\n%s", follower.name, tail(follower.out.String(), 4000))
	}
	t.Logf("replica %s acquired the lease %v after the kill", follower.name, took.Round(time.Millisecond))
	if limit := foLeaseDuration + 3*foRetryPeriod + 2*time.Second; took > limit {
		t.Errorf("takeover took %v, want at most %v (lease duration %v plus a margin)", took, limit, foLeaseDuration)
	}
	newHolder, newTransitions := foLeaseHolder(t)
	if newHolder == holder || newHolder != follower.identity() {
		t.Errorf("lease holder after the kill %q, want replica %s's identity %q (before: %q)", newHolder, follower.name, follower.identity(), holder)
	}
	if newTransitions <= transitions {
		t.Errorf("lease transitions %d, before %d", newTransitions, transitions)
	}
	if n := len(tokens) - 1; n < 2 {
		t.Errorf("the token was renewed %d times in the 26s after the kill, want at least 2 (every ~10s)", n)
	}
	elapsed := time.Since(created)
	issued := len(foIssuedTo(srv, id))
	if limit := int(elapsed/(8*time.Second)) + 3; issued > limit {
		t.Errorf("%d tokens issued in %v, want at most %d", issued, elapsed.Round(time.Second), limit)
	}
	t.Logf("%d tokens issued in %v", issued, elapsed.Round(time.Second))
}

// foReconciled returns the outcome of the first reconcile of ns/name the
// process logged (at debug level), or "".
func foReconciled(m *foManager, ns, name string) string {
	for _, line := range strings.Split(m.out.String(), "\n") {
		if !strings.Contains(line, `"msg":"reconciled"`) {
			continue
		}
		var l struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			Outcome   string `json:"outcome"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Namespace == ns && l.Name == name {
			return l.Outcome
		}
	}
	return ""
}

// foSlowHandler delays the first token request after arm by delay, then
// lets the server answer it.
type foSlowHandler struct {
	h        http.Handler
	delay    time.Duration
	mu       sync.Mutex
	armed    bool
	inFlight chan struct{} // closed when the delayed request arrives
	answered chan struct{} // closed when the server answered it
}

func (s *foSlowHandler) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = true
	s.inFlight = make(chan struct{})
	s.answered = make(chan struct{})
}

func (s *foSlowHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	slow := s.armed
	s.armed = false
	inFlight, answered := s.inFlight, s.answered
	s.mu.Unlock()
	if slow {
		close(inFlight)
		time.Sleep(s.delay)
		defer close(answered)
	}
	s.h.ServeHTTP(w, r)
}

// TestKillMidRefresh kills the manager with SIGKILL while its first token
// request is in flight, starts another one, and checks that the object
// ends with one Secret holding a valid token, and that a further restart
// requests no token.
func TestKillMidRefresh(t *testing.T) {
	const ns, id, secret = "killmid", "killmid-client", "k1ll:mid/+ secret"
	fx := foIsolate(t)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600})
	slow := &foSlowHandler{h: srv, delay: 3 * time.Second}
	slow.arm()
	ts := httptest.NewServer(slow)
	t.Cleanup(ts.Close)

	m1 := fx.start("m1")
	m1.waitLeader(t, 30*time.Second)
	foNamespace(t, ns, id, secret, ts.URL)
	select {
	case <-slow.inFlight:
	case <-time.After(60 * time.Second):
		t.Fatalf("no token request arrived:\n%s", tail(m1.out.String(), 4000))
	}
	m1.kill()
	t.Log("killed the manager (SIGKILL) with its token request in flight")

	m2 := fx.start("m2")
	start := time.Now()
	mustKubectl(t, "wait", "--for=condition=Ready", "oct/api", "-n", ns, "--timeout=90s")
	t.Logf("Ready %v after the restart", time.Since(start).Round(time.Millisecond))
	<-slow.answered // the killed request's token is issued too, to nobody

	var list struct {
		Items []struct {
			Metadata struct {
				Name            string `json:"name"`
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		} `json:"items"`
	}
	out := mustKubectl(t, "get", "secrets", "-n", ns, "-l", "oauth.tokensync.io/managed=true", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "api" {
		var names []string
		for _, s := range list.Items {
			names = append(names, s.Metadata.Name)
		}
		t.Fatalf("managed Secrets in %s: %v, want exactly [api]", ns, names)
	}
	rv := list.Items[0].Metadata.ResourceVersion
	tok, exp := foToken(t, ns)
	found := false
	for _, it := range foIssuedTo(srv, id) {
		found = found || it.AccessToken == tok
	}
	if !found || !srv.Valid(tok) {
		t.Fatalf("the Secret's token was not issued by the server or is not valid (issued here: %v)", found)
	}
	if time.Until(exp) < 50*time.Minute {
		t.Fatalf("expires_at %s", exp.Format(time.RFC3339))
	}
	issued := len(foIssuedTo(srv, id))
	t.Logf("%d tokens issued (one for the killed request)", issued)

	// A graceful restart now must not request a token.
	requests := srv.Requests()
	m2.stop()
	m3 := fx.start("m3")
	m3.waitLeader(t, 30*time.Second)
	eventually(t, 30*time.Second, "the restarted manager to reconcile the object", func() bool {
		return foReconciled(m3, ns, "api") != ""
	})
	if outcome := foReconciled(m3, ns, "api"); outcome != "unchanged" {
		t.Errorf("the restarted manager's first reconcile had outcome %q, want unchanged", outcome)
	}
	time.Sleep(10 * time.Second)
	if n := len(foIssuedTo(srv, id)); n != issued {
		t.Errorf("the restarted manager had %d new tokens issued, want none", n-issued)
	}
	if n := srv.Requests(); n != requests {
		t.Errorf("the restarted manager sent %d token requests, want none", n-requests)
	}
	if out := mustKubectl(t, "get", "secret", "api", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}"); out != rv {
		t.Errorf("the restarted manager rewrote the Secret (resourceVersion %s, was %s)", out, rv)
	}
	if st, reason, _ := conditionOf(getStatus(t, ns, "api"), "Ready"); st != "True" {
		t.Errorf("Ready = %s/%s after the restart", st, reason)
	}
}
