//go:build cluster

package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const leaseName = "tokensync-leader.oauth.tokensync.io"

// checker runs the checks of issue 16 against one install. The steps share
// state (the objects they create) and run in order; the first failure
// stops the rest.
type checker struct {
	mode  string
	d     deployment
	appNS string

	clientID, clientSecret string
	scraper                string // a token allowed to scrape metrics
	manager                pod    // the manager pod of the last check
	envPods                []string
}

type pod struct {
	Metadata struct {
		Name              string  `json:"name"`
		DeletionTimestamp *string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		ServiceAccountName string `json:"serviceAccountName"`
	} `json:"spec"`
	Status struct {
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name        string `json:"name"`
			ImageID     string `json:"imageID"`
			ContainerID string `json:"containerID"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (p pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

func runChecks(t *testing.T, mode string, d deployment) {
	c := &checker{mode: mode, d: d, appNS: "app-" + mode,
		clientID: "cluster-" + mode, clientSecret: "cl:uster/+secret %" + mode}
	if len(d.watched) > 0 {
		c.appNS = d.watched[0]
	}
	remember(c.clientSecret)
	mustApply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+c.appNS+"\n")
	t.Cleanup(func() {
		if out, err := kubectl("delete", "namespace", c.appNS, "--ignore-not-found", "--wait", "--timeout=120s"); err != nil {
			t.Errorf("deleting namespace %s: %v\n%s", c.appNS, err, out)
		}
	})
	// A scraper: a ServiceAccount bound to the install's metrics-reader
	// ClusterRole, as docs/monitoring.md tells a Prometheus to be.
	c.scraper = c.saToken(t, "metrics-scraper")
	binding := "cluster-test-scraper-" + c.mode
	mustApply(t, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %s}
subjects:
- {kind: ServiceAccount, name: metrics-scraper, namespace: %s}
`, binding, c.d.metricsReader, c.appNS))
	t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found") })
	for _, step := range []struct {
		name string
		f    func(t *testing.T)
	}{
		{"ManagerPod", c.managerPod},
		{"Metrics", c.metrics},
		{"Consumers", c.consumers},
		{"Keyless", c.keyless},
		{"Rotation", c.rotation},
		{"Restart", c.restart},
		{"GarbageCollection", c.garbageCollection},
	} {
		if !t.Run(step.name, step.f) {
			return
		}
	}
}

func (c *checker) managerPods(t *testing.T) []pod {
	t.Helper()
	var list struct {
		Items []pod `json:"items"`
	}
	getJSON(t, &list, "pods", "-n", c.d.namespace, "-l", c.d.podSelector)
	return list.Items
}

// waitManager waits for exactly one manager pod, Ready and not `not`.
func (c *checker) waitManager(t *testing.T, not string) pod {
	t.Helper()
	var p pod
	eventually(t, 2*time.Minute, "one Ready manager pod", func() (bool, string) {
		pods := c.managerPods(t)
		var states []string
		for _, q := range pods {
			states = append(states, fmt.Sprintf("%s ready=%v deleting=%v", q.Metadata.Name, q.ready(), q.Metadata.DeletionTimestamp != nil))
		}
		if len(pods) != 1 || pods[0].Metadata.Name == not || !pods[0].ready() || pods[0].Metadata.DeletionTimestamp != nil {
			return false, strings.Join(states, "; ")
		}
		p = pods[0]
		return true, ""
	})
	return p
}

// managerPod: the manager runs from the image built from the Dockerfile's
// binary, becomes Ready through its probes, runs as 65532 with a read-only
// root filesystem, under its own ServiceAccount, and holds the lease.
func (c *checker) managerPod(t *testing.T) {
	mustKubectl(t, "wait", "--for=condition=Established", "crd/oauthclienttokens.oauth.tokensync.io", "--timeout=60s")
	p := c.waitManager(t, "")
	c.manager = p
	if p.Spec.ServiceAccountName != c.d.serviceAccount {
		t.Errorf("the manager runs as ServiceAccount %q, want %q", p.Spec.ServiceAccountName, c.d.serviceAccount)
	}
	if len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("want one container, got %+v", p.Status.ContainerStatuses)
	}
	cs := p.Status.ContainerStatuses[0]
	ids, err := os.ReadFile(filepath.Join(env.images, "manager.digest"))
	if err != nil {
		t.Fatal(err)
	}
	configDigest, manifestDigest, _ := strings.Cut(strings.TrimSpace(string(ids)), "\n")
	if !strings.HasSuffix(cs.ImageID, configDigest) && !strings.HasSuffix(cs.ImageID, manifestDigest) {
		t.Errorf("the manager runs image %s, want the one built here (%s)", cs.ImageID, configDigest)
	}

	// The process itself, seen from the node.
	pid := containerPID(t, cs.ContainerID)
	if got, want := fileSHA(t, fmt.Sprintf("/proc/%d/exe", pid)), fileSHA(t, filepath.Join(env.images, "manager")); got != want {
		t.Errorf("the manager process runs a binary with sha256 %s, want the Dockerfile's binary %s", got, want)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
			for _, id := range f[1:] {
				if id != "65532" {
					t.Errorf("the manager runs with %s, want 65532 (non-root) throughout", l)
					break
				}
			}
		}
	}
	if opts := rootMountOptions(t, pid); !strings.HasPrefix(opts, "ro") {
		t.Errorf("the manager's root filesystem is mounted %q, want read-only", opts)
	}

	eventually(t, time.Minute, "the manager pod to hold the leader election lease", func() (bool, string) {
		h := leaseHolder(t, c.d.namespace)
		return strings.HasPrefix(h, p.Metadata.Name+"_"), h
	})
}

func leaseHolder(t *testing.T, ns string) string {
	out, _ := kubectl("get", "lease", leaseName, "-n", ns, "-o", "jsonpath={.spec.holderIdentity}")
	return out
}

// containerPID finds a container's first process through its cgroup.
func containerPID(t *testing.T, containerID string) int {
	t.Helper()
	id := strings.TrimPrefix(containerID, "containerd://")
	var procs string
	for _, root := range []string{"/sys/fs/cgroup/pids/kubepods", "/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/kubepods"} {
		_ = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.IsDir() && de.Name() == id {
				procs = filepath.Join(p, "cgroup.procs")
				return filepath.SkipAll
			}
			return nil
		})
		if procs != "" {
			break
		}
	}
	if procs == "" {
		t.Fatalf("no cgroup for container %s", id)
	}
	b, err := os.ReadFile(procs)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b) + " x")[0])
	if err != nil {
		t.Fatalf("no process in %s", procs)
	}
	return pid
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rootMountOptions returns the per-mount options of a process's "/".
func rootMountOptions(t *testing.T, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	opts := ""
	for s.Scan() {
		if fl := strings.Fields(s.Text()); len(fl) > 5 && fl[4] == "/" {
			opts = fl[5] // the last mount on / is the one the process sees
		}
	}
	return opts
}

// scrape GETs https://addr/metrics with a bearer token (none if empty).
func scrape(addr, token string) (int, string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The manager serves a self-signed certificate, as in kubebuilder.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// saToken creates a ServiceAccount in the app namespace and a token for it.
func (c *checker) saToken(t *testing.T, name string) string {
	t.Helper()
	mustApply(t, fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n  namespace: %s\n", name, c.appNS))
	tok := strings.TrimSpace(mustKubectl(t, "create", "token", name, "-n", c.appNS, "--duration=1h"))
	remember(tok)
	return tok
}

// metrics: through the metrics Service (kube-proxy), a scrape without a
// token is refused (401), one by a ServiceAccount without the metrics
// reader role is forbidden (403), one with it gets the metrics.
func (c *checker) metrics(t *testing.T) {
	ip := strings.TrimSpace(mustKubectl(t, "get", "service", c.d.metricsService, "-n", c.d.namespace, "-o", "jsonpath={.spec.clusterIP}"))
	addr := ip + ":8443"
	nobody := c.saToken(t, "metrics-nobody")
	reader := c.scraper

	for _, want := range []struct {
		who    string
		token  string
		status int
	}{{"no token", "", http.StatusUnauthorized}, {"a ServiceAccount without the metrics-reader role", nobody, http.StatusForbidden}, {"the scraper", reader, http.StatusOK}} {
		eventually(t, time.Minute, fmt.Sprintf("a scrape by %s through %s to answer %d", want.who, c.d.metricsService, want.status), func() (bool, string) {
			code, body, err := scrape(addr, want.token)
			if err != nil {
				return false, err.Error()
			}
			if code == http.StatusOK && !strings.Contains(body, "controller_runtime_reconcile_total") {
				return false, "200 without the controller's metrics"
			}
			return code == want.status, fmt.Sprint(code)
		})
	}
}

// metricSum adds up the samples of a metric whose labels contain all of
// labels (e.g. `controller="oauthclienttoken"`).
func metricSum(body, name string, labels ...string) float64 {
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		match := true
		for _, lb := range labels {
			match = match && strings.Contains(l, lb)
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); match && err == nil {
			sum += v
		}
	}
	return sum
}

// consumerPodSpec is the pod spec of a consumer (test/cluster/consumer):
// non-root, read-only, its image never pulled, indented for a Pod (2) or a
// pod template (6). args and extra (volumes, env) are YAML at that level.
func consumerPodSpec(indent int, args []string, containerExtra, podExtra string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	spec := `securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
terminationGracePeriodSeconds: 1
containers:
- name: consumer
  image: ` + env.consumer + `
  imagePullPolicy: Never
  args: [` + strings.Join(quoted, ", ") + `]
  securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
` + containerExtra + podExtra
	pad := strings.Repeat(" ", indent)
	return pad + strings.ReplaceAll(strings.TrimSuffix(spec, "\n"), "\n", "\n"+pad) + "\n"
}

// consumers: two OAuthClientTokens against the toolkit on the node IP (one
// Owner with a rollout restart target, one Orphan), a Pod that mounts the
// Secret and a Deployment that reads it from env; both call the toolkit's
// protected endpoint with the token and succeed.
func (c *checker) consumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := oauthSrv.CreateApplication(ctx, c.clientID, c.clientSecret); err != nil {
		t.Fatal(err)
	}
	// stdin, not argv: the client secret never shows in a process list.
	mustApply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: oauth-client, namespace: %s}
stringData:
  client_id: %q
  client_secret: %q
`, c.appNS, c.clientID, c.clientSecret))
	for _, o := range []struct{ name, policy, extra string }{
		{"api-token", "Owner", "  rolloutRestartTargets:\n  - {kind: Deployment, name: env-app}\n"},
		{"orphan-token", "Orphan", ""},
	} {
		mustApply(t, fmt.Sprintf(`apiVersion: oauth.tokensync.io/v1alpha1
kind: OAuthClientToken
metadata: {name: %s, namespace: %s}
spec:
  credentialsRef: {name: oauth-client}
  provider:
    tokenURL: %s
    authMethod: ClientSecretBasic
    scopes: [read]
  target: {name: %s, creationPolicy: %s}
%s`, o.name, c.appNS, oauthSrv.TokenURL, o.name, o.policy, o.extra))
	}
	for _, name := range []string{"api-token", "orphan-token"} {
		mustKubectl(t, "wait", "--for=condition=Ready", "oct/"+name, "-n", c.appNS, "--timeout=90s")
	}
	token, _ := secretValue(t, c.appNS, "api-token", "access_token")
	if token == "" {
		t.Fatal("Secret api-token has no access_token")
	}

	hello := oauthSrv.URL + "/api/hello/"
	mustApply(t, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: file-consumer, namespace: %s}\nspec:\n", c.appNS)+
		consumerPodSpec(2, []string{"-file", "/var/run/token/access_token", "-url", hello, "-interval", "1s"},
			"  volumeMounts: [{name: token, mountPath: /var/run/token, readOnly: true}]\n",
			"volumes: [{name: token, secret: {secretName: api-token}}]\n"))
	mustApply(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: env-app, namespace: %s}
spec:
  selector: {matchLabels: {app: env-app}}
  template:
    metadata: {labels: {app: env-app}}
    spec:
`, c.appNS)+consumerPodSpec(6, []string{"-env", "API_TOKEN", "-url", hello, "-interval", "1s"},
		"  env: [{name: API_TOKEN, valueFrom: {secretKeyRef: {name: api-token, key: access_token}}}]\n", ""))

	want := "event=call digest=" + digest(token) + " status=200"
	c.waitLog(t, "pod/file-consumer", want)
	eventually(t, 2*time.Minute, "an env-app pod", func() (bool, string) {
		c.envPods = c.podNames(t, "app=env-app")
		return len(c.envPods) == 1, strings.Join(c.envPods, ",")
	})
	c.waitLog(t, "pod/"+c.envPods[0], want)
}

func (c *checker) podNames(t *testing.T, selector string) []string {
	t.Helper()
	var list struct {
		Items []pod `json:"items"`
	}
	getJSON(t, &list, "pods", "-n", c.appNS, "-l", selector)
	var names []string
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp == nil {
			names = append(names, p.Metadata.Name)
		}
	}
	return names
}

// logOf returns a pod's log (kubectl logs), kept for the leak check.
func (c *checker) logOf(t *testing.T, ns, obj string) string {
	t.Helper()
	out, err := kubectl("logs", obj, "-n", ns)
	if err != nil {
		return ""
	}
	keepLog(c.mode+":"+ns+"/"+obj, out)
	return out
}

// waitLog waits for a line of the consumer's log that contains want, and
// returns it.
func (c *checker) waitLog(t *testing.T, obj, want string) string {
	t.Helper()
	var line string
	eventually(t, 2*time.Minute, obj+" to log "+want, func() (bool, string) {
		out := c.logOf(t, c.appNS, obj)
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, want) {
				line = l
				return true, ""
			}
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return false, lines[len(lines)-1]
	})
	return line
}

// rotation: a forced rotation reaches the mounted file, whose next call
// succeeds with the new token, and rolls the env Deployment out: its new
// pods carry the new token. It measures how long the file took.
func (c *checker) rotation(t *testing.T) {
	old, _ := secretValue(t, c.appNS, "api-token", "access_token")
	time.Sleep(1100 * time.Millisecond) // issue times have one-second resolution
	mustKubectl(t, "annotate", "oct", "api-token", "-n", c.appNS, "--overwrite",
		fmt.Sprintf("oauth.tokensync.io/refresh-requested-at=%d", time.Now().UnixNano()))
	var rotated string
	var seen time.Time
	eventually(t, time.Minute, "a new token in Secret api-token", func() (bool, string) {
		rotated, _ = secretValue(t, c.appNS, "api-token", "access_token")
		seen = time.Now()
		return rotated != "" && rotated != old, "the old token"
	})
	d := digest(rotated)

	changed := c.waitLog(t, "pod/file-consumer", "event=file-changed digest="+d)
	at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(changed)[0], "time="))
	if err != nil {
		t.Fatalf("consumer line %q: %v", changed, err)
	}
	t.Logf("MEASURED: the mounted file changed %.1fs after the Secret was updated", at.Sub(seen).Seconds())
	// The first call with the new token comes after the change.
	eventually(t, time.Minute, "a successful call with the new token after the file changed", func() (bool, string) {
		out := c.logOf(t, c.appNS, "pod/file-consumer")
		_, after, _ := strings.Cut(out, changed)
		return strings.Contains(after, "event=call digest="+d+" status=200"), "none yet"
	})

	oldPods := strings.Join(c.envPods, " ")
	eventually(t, 2*time.Minute, "env-app rolled out to a new pod", func() (bool, string) {
		pods := c.podNames(t, "app=env-app")
		if len(pods) != 1 || strings.Contains(oldPods, pods[0]) {
			return false, strings.Join(pods, ",")
		}
		c.envPods = pods
		return true, ""
	})
	c.waitLog(t, "pod/"+c.envPods[0], "event=call digest="+d+" status=200")
}

// restart: deleting the manager pod brings a new one that takes the lease,
// reconciles every object and requests no token (theirs are valid).
func (c *checker) restart(t *testing.T) {
	old := c.manager
	c.logOf(t, c.d.namespace, "pod/"+old.Metadata.Name)
	requests := strings.Count(oauthLog.String(), "POST /o/token/")
	var tokens []string
	for _, s := range []string{"api-token", "orphan-token"} {
		v, _ := secretValue(t, c.appNS, s, "access_token")
		tokens = append(tokens, v)
	}

	mustKubectl(t, "delete", "pod", old.Metadata.Name, "-n", c.d.namespace, "--wait=false")
	p := c.waitManager(t, old.Metadata.Name)
	c.manager = p
	eventually(t, time.Minute, "the new pod to take the lease", func() (bool, string) {
		h := leaseHolder(t, c.d.namespace)
		return strings.HasPrefix(h, p.Metadata.Name+"_"), h
	})
	// Its own metrics, scraped on its pod IP.
	reader := c.scraper
	var body string
	eventually(t, time.Minute, "the new manager to reconcile both objects", func() (bool, string) {
		code, b, err := scrape(p.Status.PodIP+":8443", reader)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprint(code, err)
		}
		body = b
		// success, requeue or requeue_after: all but error.
		n := metricSum(b, "controller_runtime_reconcile_total", `controller="oauthclienttoken"`) -
			metricSum(b, "controller_runtime_reconcile_total", `controller="oauthclienttoken"`, `result="error"`)
		return n >= 2, fmt.Sprintf("%v successful reconciles", n)
	})
	if n := metricSum(body, "tokensync_token_requests_total"); n != 0 {
		t.Errorf("the new manager sent %v token requests, want none", n)
	}
	if got := strings.Count(oauthLog.String(), "POST /o/token/"); got != requests {
		t.Errorf("the token endpoint got %d requests across the restart, want none", got-requests)
	}
	for i, s := range []string{"api-token", "orphan-token"} {
		if v, _ := secretValue(t, c.appNS, s, "access_token"); v != tokens[i] {
			t.Errorf("Secret %s got a new token across the restart", s)
		}
	}
}

// garbageCollection: with the manager scaled to zero, so that only the
// cluster's garbage collector can act, deleting the OAuthClientTokens
// deletes the Owner Secret and keeps the Orphan one.
func (c *checker) garbageCollection(t *testing.T) {
	c.logOf(t, c.d.namespace, "pod/"+c.manager.Metadata.Name)
	mustKubectl(t, "scale", "deployment", c.d.name, "-n", c.d.namespace, "--replicas=0")
	eventually(t, time.Minute, "no manager pod", func() (bool, string) {
		n := len(c.managerPods(t))
		return n == 0, fmt.Sprintf("%d pods", n)
	})
	mustKubectl(t, "delete", "oct", "api-token", "orphan-token", "-n", c.appNS, "--wait", "--timeout=60s")
	eventually(t, 90*time.Second, "the garbage collector to delete Secret api-token", func() (bool, string) {
		_, exists := secretValue(t, c.appNS, "api-token", "access_token")
		return !exists, "still there"
	})
	time.Sleep(2 * time.Second)
	if _, exists := secretValue(t, c.appNS, "orphan-token", "access_token"); !exists {
		t.Error("Secret orphan-token (creationPolicy Orphan) was deleted with its OAuthClientToken")
	}
}
