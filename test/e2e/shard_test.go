//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/internal/shard"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// Sharding tests. Each runs on a control plane of its own, with the
// ShardedListAndWatch feature gate on (the API server applies the shard
// selector) or off (the managers drop other shards' objects themselves),
// the CRD and RBAC installed as for the suite, and managers under the
// manager's ServiceAccount.

type shardCluster struct {
	kube      testutil.Kubectl
	managerKC string
}

func newShardCluster(t *testing.T, gate bool) *shardCluster {
	t.Helper()
	env := &envtest.Environment{}
	if gate {
		env.ControlPlane.GetAPIServer().Configure().Append("feature-gates", "ShardedListAndWatch=true")
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := env.AddUser(envtest.User{Name: "shard-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl := &shardCluster{kube: testutil.Kubectl{Bin: kubectlBin, Kubeconfig: filepath.Join(dir, "admin.kubeconfig")}}
	if err := os.WriteFile(cl.kube.Kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	cl.kube.Must(t, "apply", "--server-side", "-k", filepath.Join(repoRoot, "test", "e2e", "install"))
	cl.kube.Must(t, "wait", "--for=condition=Established", "crd/oauthclienttokens.oauth.tokensync.io", "--timeout=60s")
	tok := strings.TrimSpace(cl.kube.Must(t, "create", "token", "tokensync-controller-manager", "-n", operatorNS, "--duration=1h"))
	cl.managerKC = filepath.Join(dir, "manager.kubeconfig")
	if err := os.WriteFile(cl.managerKC, testutil.TokenKubeconfig(cfg.Host, cfg.CAData, tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return cl
}

// start runs a manager replica against the cluster, with short lease
// timings and debug logs (which name every reconcile), then args. It is
// stopped when the test ends; its output also goes to managerOut for the
// leak check.
func (cl *shardCluster) start(t *testing.T, name string, args ...string) *foManager {
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
	m.cmd = exec.Command(os.Getenv("TOKENSYNC_MANAGER_BIN"),
		"--kubeconfig", cl.managerKC,
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
	)
	m.cmd.Args = append(m.cmd.Args, args...)
	w := io.MultiWriter(m.out, managerOut)
	m.cmd.Stdout, m.cmd.Stderr = w, w
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting manager %s: %v", name, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(m.stop)
	return m
}

// reconciledNamespaces returns the namespaces of the objects m logged a
// reconcile of.
func reconciledNamespaces(m *foManager) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(m.out.String(), "\n") {
		if !strings.Contains(line, `"msg":"reconciled"`) {
			continue
		}
		var l struct {
			Namespace string `json:"namespace"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Namespace != "" {
			out[l.Namespace]++
		}
	}
	return out
}

// scrape returns the sum of the samples of metric name whose labels
// contain match.
func scrape(t *testing.T, m *foManager, name, match string) float64 {
	t.Helper()
	resp, err := http.Get(m.metricsURL)
	if err != nil {
		t.Fatalf("scraping %s: %v", m.name, err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if (strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ")) && strings.Contains(line, match) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

func (cl *shardCluster) token(t *testing.T, ns string) (string, time.Time) {
	t.Helper()
	out := cl.kube.Must(t, "get", "secret", "api", "-n", ns, "-o", "json")
	var s struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	tok, _ := base64.StdEncoding.DecodeString(s.Data["access_token"])
	exp, _ := base64.StdEncoding.DecodeString(s.Data["expires_at"])
	e, err := time.Parse(time.RFC3339, string(exp))
	if err != nil {
		t.Fatalf("%s: expires_at %q: %v", ns, exp, err)
	}
	seenTokens = append(seenTokens, string(tok))
	return string(tok), e
}

func TestShardsServerSide(t *testing.T) { testShards(t, true) }

func TestShardsClientSide(t *testing.T) { testShards(t, false) }

// testShards runs two shards, shard 0 with a standby, over objects in 14
// namespaces: each object is reconciled by its own shard only (so, once
// each), each shard elects its leader on a Lease of its own, and says (in
// its log and tokensync_shard_mode) whether the API server applied the
// selector. Then shard 0's leader is killed: its standby takes over its
// Lease and keeps its objects' tokens fresh, never reconciling the other
// shard's objects, while shard 1 goes on.
func testShards(t *testing.T, gate bool) {
	const id, secret = "shard-client", "sh4rd:/+ secret"
	usedSecrets = append(usedSecrets, secret)
	cl := newShardCluster(t, gate)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 30})
	url, stopSrv := srv.Start()
	t.Cleanup(stopSrv)

	shards := []shard.Shard{{Index: 0, Count: 2}, {Index: 1, Count: 2}}
	owner := map[string]int{}
	var nss []string
	for i := 0; i < 14; i++ {
		// FNV-1a's high bits, which pick the shard, hardly depend on a
		// name's last two characters: "tenant-00".."tenant-13" would all
		// be one shard's.
		ns := fmt.Sprintf("t%02d-tenant", i)
		nss = append(nss, ns)
		for k, s := range shards {
			if s.Owns(ns) {
				owner[ns] = k
			}
		}
		cl.kube.Apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
		cl.kube.Must(t, "create", "secret", "generic", "creds", "-n", ns, "--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
		cl.kube.Apply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: api
  namespace: `+ns+`
spec:
  credentialsRef:
    name: creds
  provider:
    tokenURL: `+url+`/token
`)
	}
	per := [2]int{}
	for _, k := range owner {
		per[k]++
	}
	if per[0] < 3 || per[1] < 3 {
		t.Fatalf("the namespaces split %v between the shards; pick others", per)
	}

	a := cl.start(t, "shard0-a", "--shard-count=2", "--shard-index=0")
	b := cl.start(t, "shard0-b", "--shard-count=2", "--shard-index=0")
	c := cl.start(t, "shard1", "--shard-count=2", "--shard-index=1")
	eventually(t, 60*time.Second, "every object Ready", func() bool {
		for _, ns := range nss {
			out, _ := cl.kube.Run("", "get", "oct", "api", "-n", ns, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if strings.TrimSpace(out) != "True" {
				return false
			}
		}
		return true
	})
	if !c.leads() {
		t.Fatalf("shard 1's only replica does not lead:\n%s", tail(c.out.String(), 4000))
	}
	var leader, standby *foManager
	switch {
	case a.leads() && !b.leads():
		leader, standby = a, b
	case b.leads() && !a.leads():
		leader, standby = b, a
	default:
		t.Fatalf("shard 0: replica a leads %v, b leads %v; want exactly one", a.leads(), b.leads())
	}
	for i := range 2 {
		lease := fmt.Sprintf("tokensync-leader-shard-%d.oauth.tokensync.io", i)
		if h := strings.TrimSpace(cl.kube.Must(t, "get", "lease", lease, "-n", operatorNS, "-o", "jsonpath={.spec.holderIdentity}")); h == "" {
			t.Errorf("Lease %s has no holder", lease)
		}
	}
	if out, err := cl.kube.Run("", "get", "lease", foLeaseName, "-n", operatorNS); err == nil {
		t.Errorf("the unsharded Lease %s exists: %s", foLeaseName, out)
	}

	// Each object reconciled by its own shard, never by the other.
	checkOwn := func(when string) {
		t.Helper()
		for k, m := range map[int][]*foManager{0: {a, b}, 1: {c}} {
			for _, r := range m {
				for ns, n := range reconciledNamespaces(r) {
					if owner[ns] != k {
						t.Errorf("%s: %s (shard %d) reconciled %s/api %d times, an object of shard %d", when, r.name, k, ns, n, owner[ns])
					}
				}
			}
		}
	}
	checkOwn("before the kill")
	for _, ns := range nss {
		if reconciledNamespaces(leader)[ns]+reconciledNamespaces(c)[ns] == 0 {
			t.Errorf("no shard reconciled %s/api", ns)
		}
	}
	if n := len(reconciledNamespaces(standby)); n != 0 {
		t.Errorf("the standby of shard 0 reconciled objects of %d namespaces before it led", n)
	}

	mode, other := shard.ModeServer, shard.ModeClient
	if !gate {
		mode, other = shard.ModeClient, shard.ModeServer
	}
	for _, m := range []*foManager{leader, c} {
		if !strings.Contains(m.out.String(), `"mode":"`+mode+`"`) || strings.Contains(m.out.String(), `"mode":"`+other+`"`) {
			t.Errorf("%s does not log only mode %s:\n%s", m.name, mode, tail(m.out.String(), 3000))
		}
		if v := scrape(t, m, "tokensync_shard_mode", `mode="`+mode+`"`); v != 1 {
			t.Errorf("%s: tokensync_shard_mode{mode=%q} = %v, want 1", m.name, mode, v)
		}
		if v := scrape(t, m, "tokensync_shard_mode", `mode="`+other+`"`); v != 0 {
			t.Errorf("%s: tokensync_shard_mode{mode=%q} = %v, want 0", m.name, other, v)
		}
		dropped := scrape(t, m, "tokensync_shard_dropped_objects_total", "")
		if gate && dropped != 0 {
			t.Errorf("%s dropped %v objects the API server sent although it applied the selector", m.name, dropped)
		}
		if !gate && dropped == 0 {
			t.Errorf("%s dropped no object of the other shard with the gate off", m.name)
		}
	}

	// Kill shard 0's leader; its standby must keep shard 0's tokens fresh.
	before := map[string]string{}
	for _, ns := range nss {
		before[ns], _ = cl.token(t, ns)
	}
	killedAt := time.Now()
	leader.kill()
	t.Logf("killed %s, shard 0's leader", leader.name)
	renewed := map[string]bool{}
	for time.Since(killedAt) < 45*time.Second {
		for _, ns := range nss {
			tok, exp := cl.token(t, ns)
			if !time.Now().Before(exp.Add(-500 * time.Millisecond)) {
				t.Errorf("%v after the kill, %s (shard %d) holds a token that expired at %s", time.Since(killedAt).Round(time.Millisecond), ns, owner[ns], exp.Format(time.RFC3339))
			}
			if !srv.Valid(tok) {
				t.Errorf("%s holds a token the server does not accept", ns)
			}
			if tok != before[ns] {
				renewed[ns] = true
			}
		}
		time.Sleep(time.Second)
	}
	if !standby.leads() {
		t.Fatalf("the standby %s never took over shard 0's Lease:\n%s", standby.name, tail(standby.out.String(), 4000))
	}
	for _, ns := range nss {
		if !renewed[ns] {
			t.Errorf("%s (shard %d) was not renewed in the 45s after the kill", ns, owner[ns])
		}
	}
	checkOwn("after the kill")
	if n := len(reconciledNamespaces(standby)); n == 0 {
		t.Error("the standby reconciled nothing after it took over")
	}
	if c.exited() || !c.leads() {
		t.Error("shard 1 stopped leading")
	}
	// Every object's token requests: one per lifetime at most (plus the
	// first), however many shards and replicas ran.
	elapsed := time.Since(killedAt) + 30*time.Second
	if issued, limit := len(foIssuedTo(srv, id)), len(nss)*(int(elapsed/(15*time.Second))+2); issued > limit {
		t.Errorf("%d tokens issued for %d objects, want at most %d", issued, len(nss), limit)
	}
}

// TestShardCountChangeMintsNothing changes the shard count the way a
// rolling update does, with the old and new layouts running side by side
// for a while: one manager (no shards) with valid tokens in 10 namespaces,
// then two shards started next to it, then the old manager stopped. While
// both layouts run, and after, no token is requested and no target Secret
// is written: every object keeps its valid token.
func TestShardCountChangeMintsNothing(t *testing.T) {
	const id, secret = "reshard-client", "r3shard:/+ secret"
	usedSecrets = append(usedSecrets, secret)
	cl := newShardCluster(t, true)
	srv := tokenserver.New(tokenserver.Options{Clients: map[string]string{id: secret}, ExpiresIn: 3600})
	url, stopSrv := srv.Start()
	t.Cleanup(stopSrv)
	var nss []string
	for i := 0; i < 10; i++ {
		ns := fmt.Sprintf("reshard-%02d", i)
		nss = append(nss, ns)
		cl.kube.Apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
		cl.kube.Must(t, "create", "secret", "generic", "creds", "-n", ns, "--from-literal=client_id="+id, "--from-literal=client_secret="+secret)
		cl.kube.Apply(t, `apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata:
  name: api
  namespace: `+ns+`
spec:
  credentialsRef:
    name: creds
  provider:
    tokenURL: `+url+`/token
`)
	}
	old := cl.start(t, "unsharded")
	versions := func() map[string]string {
		out := map[string]string{}
		for _, ns := range nss {
			out[ns] = strings.TrimSpace(cl.kube.Must(t, "get", "secret", "api", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}"))
		}
		return out
	}
	eventually(t, 60*time.Second, "every object Ready", func() bool {
		for _, ns := range nss {
			out, _ := cl.kube.Run("", "get", "oct", "api", "-n", ns, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			if strings.TrimSpace(out) != "True" {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	issued, before := len(foIssuedTo(srv, id)), versions()
	if issued != len(nss) {
		t.Fatalf("%d tokens for %d objects", issued, len(nss))
	}
	// The new layout starts while the old one still runs.
	s0 := cl.start(t, "new-0", "--shard-count=2", "--shard-index=0")
	s1 := cl.start(t, "new-1", "--shard-count=2", "--shard-index=1")
	eventually(t, 30*time.Second, "both shards to reconcile their objects", func() bool {
		return len(reconciledNamespaces(s0))+len(reconciledNamespaces(s1)) >= len(nss)
	})
	time.Sleep(3 * time.Second)
	old.stop()
	time.Sleep(5 * time.Second)
	if n := len(foIssuedTo(srv, id)); n != issued {
		t.Errorf("%d tokens requested while the layouts overlapped and after, want none", n-issued)
	}
	for ns, rv := range versions() {
		if rv != before[ns] {
			t.Errorf("Secret %s/api was written (resourceVersion %s, before %s)", ns, rv, before[ns])
		}
	}
}
