//go:build cluster

// Package cluster tests tokensync where users meet it: on a real node
// (hack/cluster/up.sh: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd, kubelet and kube-proxy in a network namespace
// of their own), installed from its container image the ways the README
// shows (installs in install_test.go), with pods that mount and read the
// Secrets it writes. Run it with `make test-cluster`, which builds the
// images, starts the node, runs this binary inside the node's network
// namespace and tears everything down.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/dot"
	"github.com/tokensync/tokensync/test/testutil"
)

// env is what hack/cluster/test.sh tells the test (TOKENSYNC_CLUSTER_*).
var env struct {
	dir       string // CLUSTER_DIR: admin.kubeconfig, logs/
	images    string // images.sh's output: the binaries and NAME.digest
	kubectl   string
	kustomize string
	helm      string
	nodeIP    string
	netns     string
	hostNetns string // a path to the host's network namespace
	manager   string // MANAGER_IMAGE
	consumer  string // CONSUMER_IMAGE
}

var (
	repoRoot   string
	kubeconfig string
	oauthSrv   *dot.Server
	oauthLog   = &testutil.SyncBuffer{}

	// Everything a token or client secret must never appear in, and those
	// values (kept in memory only), for TestZZNoSecretsInLogs.
	logsMu    sync.Mutex
	seenLogs  = map[string]string{}
	secretsMu sync.Mutex
	secrets   []string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "cluster setup: "+format+"\n", args...)
		return 1
	}
	for name, p := range map[string]*string{
		"DIR": &env.dir, "IMAGES": &env.images, "KUBECTL": &env.kubectl, "KUSTOMIZE": &env.kustomize,
		"HELM": &env.helm, "NODE_IP": &env.nodeIP, "NETNS": &env.netns, "HOST_NETNS": &env.hostNetns,
		"MANAGER_IMAGE": &env.manager, "CONSUMER_IMAGE": &env.consumer,
	} {
		if *p = os.Getenv("TOKENSYNC_CLUSTER_" + name); *p == "" {
			return fail("TOKENSYNC_CLUSTER_%s is not set: run `make test-cluster`", name)
		}
	}
	if err := dot.Available(); err != nil {
		return fail("%v", err)
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	if r := os.Getenv("TOKENSYNC_CLUSTER_REPO"); r != "" {
		repoRoot = r
	}
	kubeconfig = filepath.Join(env.dir, "admin.kubeconfig")

	// The toolkit runs in the node's network namespace (this process is in
	// it), on the node IP, where pods reach it; never on host loopback.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	oauthSrv, err = dot.Start(ctx, dot.Options{Host: env.nodeIP, Stderr: oauthLog})
	if err != nil {
		return fail("starting Django OAuth Toolkit on %s: %v", env.nodeIP, err)
	}
	defer func() { _ = oauthSrv.Stop() }()
	return m.Run()
}

// kube runs kubectl as the cluster admin.
func kube() testutil.Kubectl { return testutil.Kubectl{Bin: env.kubectl, Kubeconfig: kubeconfig} }

func kubectl(args ...string) (string, error) { return kube().Run("", args...) }

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	return kube().Must(t, args...)
}

func mustApply(t *testing.T, manifest string) {
	t.Helper()
	kube().Apply(t, manifest)
}

// getJSON decodes `kubectl get ARGS -o json` into v.
func getJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustKubectl(t, append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl get %s: %v", strings.Join(args, " "), err)
	}
}

// eventually polls f until it returns true. f's string says what it saw
// last, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var ok bool
		if ok, last = f(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// digest is the consumer's fingerprint of a token (test/cluster/consumer).
func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// secretValue returns one key of a Secret, decoded, and whether the Secret
// exists. Values are remembered for the leak check, never printed.
func secretValue(t *testing.T, ns, name, key string) (string, bool) {
	t.Helper()
	out, err := kubectl("get", "secret", name, "-n", ns, "-o", "json")
	if err != nil {
		if strings.Contains(out, "NotFound") {
			return "", false
		}
		t.Fatalf("getting Secret %s/%s: %v\n%s", ns, name, err, out)
	}
	var s struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(s.Data[key])
	if err != nil {
		t.Fatal(err)
	}
	remember(string(b))
	return string(b), true
}

func remember(secret string) {
	if secret == "" {
		return
	}
	secretsMu.Lock()
	defer secretsMu.Unlock()
	secrets = append(secrets, secret)
}

// keepLog records a log for the leak check (the latest copy per name).
func keepLog(name, text string) {
	logsMu.Lock()
	defer logsMu.Unlock()
	seenLogs[name] = text
}

type ipLink struct {
	Name     string `json:"ifname"`
	Master   string `json:"master"`
	NetnsID  *int   `json:"link_netnsid"`
	LinkType string `json:"link_type"`
	Info     struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

func ipJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-j"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
	}
}

// TestNetworkIsolated: the node's network namespace (this process's) has no
// default route and no interface leading out of it: only loopback (which
// holds the node IP), the pods' bridge and the pods' veths on that bridge, and no interface of the host's namespace is paired with one
// of its own. Addresses off the machine, private ranges included, are
// unreachable (route lookups only: nothing is sent).
func TestNetworkIsolated(t *testing.T) {
	checkIsolated(t, false)
}

// checkIsolated is TestNetworkIsolated; TestZZNoSecretsInLogs runs it again
// once pods have come and gone, with their bridge.
func checkIsolated(t *testing.T, wantBridge bool) {
	for _, fam := range []string{"-4", "-6"} {
		var routes []struct {
			Dst   string `json:"dst"`
			Dev   string `json:"dev"`
			Gw    string `json:"gateway"`
			Type  string `json:"type"`
			Table string `json:"table"`
		}
		ipJSON(t, &routes, fam, "route", "show", "table", "all")
		for _, r := range routes {
			if r.Dst == "default" || r.Gw != "" {
				t.Errorf("the node's namespace has a route off it: %+v", r)
			}
		}
	}
	var links []ipLink
	ipJSON(t, &links, "-d", "link", "show")
	bridge := false
	for _, l := range links {
		switch {
		case l.LinkType == "loopback" && l.Name == "lo": // and the node IP
		case l.Info.Kind == "bridge":
			bridge = true
		case l.Info.Kind == "veth" && l.Master != "":
			// A pod's end is in the pod's namespace, checked below from
			// the host's side.
		default:
			t.Errorf("interface %s (%s %s) may lead out of the node's namespace", l.Name, l.LinkType, l.Info.Kind)
		}
	}
	if wantBridge && !bridge {
		t.Error("no pod bridge: did pods run in this namespace?")
	}
	for _, dst := range []string{"1.1.1.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254"} {
		if out, err := exec.Command("ip", "route", "get", dst).CombinedOutput(); err == nil {
			t.Errorf("%s is routable from the node's namespace: %s", dst, out)
		}
	}

	// From the host's namespace (test.sh's): no interface whose peer is in
	// the node's namespace.
	host := "--net=" + env.hostNetns
	out, err := exec.Command("nsenter", host, "ip", "-j", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list in the host's namespace: %v", err)
	}
	var nss []struct {
		Name string `json:"name"`
		ID   *int   `json:"id"`
	}
	if err := json.Unmarshal(out, &nss); err != nil {
		t.Fatal(err)
	}
	var id *int
	for _, ns := range nss {
		if ns.Name == env.netns {
			id = ns.ID
		}
	}
	if id == nil {
		// Without an id the host's namespace holds no link into it.
		return
	}
	out, err = exec.Command("nsenter", host, "ip", "-j", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link in the host's namespace: %v", err)
	}
	var hostLinks []ipLink
	if err := json.Unmarshal(out, &hostLinks); err != nil {
		t.Fatal(err)
	}
	for _, l := range hostLinks {
		if l.NetnsID != nil && *l.NetnsID == *id {
			t.Errorf("host interface %s is paired with one in the node's namespace", l.Name)
		}
	}
}
