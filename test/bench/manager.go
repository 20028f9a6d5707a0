package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokensync/tokensync/test/testutil"
)

// settings are the manager flags that the baseline copies.
type settings struct {
	concurrency int
	qps         float64
	burst       int
	tokenRate   float64
	tokenBurst  int
}

// managerSettings reads the defaults of the manager binary from its -help
// output and applies the overrides in args, so that the baseline runs with
// exactly the limits the manager runs with.
func managerSettings(bin string, args []string) (settings, error) {
	out, _ := exec.Command(bin, "-help").CombinedOutput() // exits 0 or 2 depending on the flag package; the text is what matters
	text := string(out)
	get := func(name string) (string, error) {
		v := flagValue(args, name)
		if v != "" {
			return v, nil
		}
		re := regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b[^\n]*\n[^\n]*\(default ([^)]+)\)`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			return "", fmt.Errorf("%s -help shows no default for --%s", bin, name)
		}
		return m[1], nil
	}
	var s settings
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"concurrent-reconciles", &s.concurrency},
		{"kube-api-qps", &s.qps},
		{"kube-api-burst", &s.burst},
		{"max-token-requests-per-host", &s.tokenRate},
		{"token-request-burst-per-host", &s.tokenBurst},
	} {
		v, err := get(f.name)
		if err != nil {
			return s, err
		}
		switch d := f.dst.(type) {
		case *int:
			if *d, err = strconv.Atoi(v); err != nil {
				return s, fmt.Errorf("--%s=%s: %w", f.name, v, err)
			}
		case *float64:
			if *d, err = strconv.ParseFloat(v, 64); err != nil {
				return s, fmt.Errorf("--%s=%s: %w", f.name, v, err)
			}
		}
	}
	return s, nil
}

// flagValue finds --name=v, -name=v, --name v or -name v in args.
func flagValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if k, val, ok := strings.Cut(a, "="); ok && k == name {
			v = val
		} else if a == name && i+1 < len(args) {
			v = args[i+1]
		}
	}
	return v
}

// manager is one run of the manager binary.
type manager struct {
	cmd        *exec.Cmd
	out        *testutil.SyncBuffer
	logFile    *os.File
	metricsURL string
	pprofURL   string
	// profiles is where liveHeap saves a heap profile at each reading
	// (beside the manager's log: kept with -keep).
	profiles string
	done     chan struct{}
	started  time.Time
}

// startManager runs bin with the benchmark's flags, then extra, logging to
// logPath, and waits until its OAuthClientToken controller has started its
// workers (caches synced), so that phase 1 times reconciles, not a start.
func startManager(ctx context.Context, bin, kubeconfig, logPath string, extra, env []string) (*manager, error) {
	probe, err := testutil.FreePort()
	if err != nil {
		return nil, err
	}
	mport, err := testutil.FreePort()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	pport, err := testutil.FreePort()
	if err != nil {
		return nil, err
	}
	m := &manager{out: &testutil.SyncBuffer{}, logFile: f, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport),
		pprofURL: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pport), done: make(chan struct{}),
		profiles: strings.TrimSuffix(logPath, filepath.Ext(logPath))}
	args := []string{
		"--kubeconfig", kubeconfig,
		"--allow-insecure-http", // the token server speaks plain http on loopback
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", mport),
		"--metrics-secure=false",
		"--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", pport),
	}
	args = append(args, extra...)
	m.cmd = exec.Command(bin, args...)
	m.cmd.Env = append(os.Environ(), env...)
	w := io.MultiWriter(m.out, f)
	m.cmd.Stdout, m.cmd.Stderr = w, w
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	err = waitFor(ctx, 2*time.Minute, 50*time.Millisecond, "the manager to start its workers", func() bool {
		return tokenWorkersStarted(m.out.String()) || m.exited()
	})
	if err == nil && m.exited() {
		err = fmt.Errorf("the manager exited:\n%s", tail(m.out.String(), 4000))
	}
	if err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// tokenWorkersRE matches controller-runtime's line saying the
// OAuthClientToken controller started its workers, in the JSON and the
// console (--zap-devel) encodings.
var tokenWorkersRE = regexp.MustCompile(`Starting workers.*"controller":\s*"oauthclienttoken"`)

// tokenWorkersStarted reports whether the manager's log says the
// OAuthClientToken controller has started its workers: its sources, the
// index's included, have synced. Other controllers (rolloutrestart, the
// providers') start theirs earlier and say nothing about it.
func tokenWorkersStarted(log string) bool { return tokenWorkersRE.MatchString(log) }

func (m *manager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and kills after 30s.
func (m *manager) stop() {
	if m == nil {
		return
	}
	if !m.exited() {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	}
	_ = m.logFile.Close()
}

// metrics returns the sum of the samples of each metric family named in
// names whose labels contain every string of match.
func (m *manager) metric(name string, match ...string) (float64, error) {
	resp, err := http.Get(m.metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, s := range match {
			if !strings.Contains(line, s) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += v
		}
	}
	return total, sc.Err()
}

func (m *manager) reconciles() float64 {
	v, _ := m.metric("controller_runtime_reconcile_total", `controller="oauthclienttoken"`)
	return v
}

// reconcileResults says how many reconciles of OAuthClientTokens ended
// how (success, requeue, requeue_after, error): a retry after a throttled
// or failed attempt shows as an error or a requeue.
func (m *manager) reconcileResults() string {
	var parts []string
	for _, res := range []string{"success", "requeue", "requeue_after", "error"} {
		v, _ := m.metric("controller_runtime_reconcile_total", `controller="oauthclienttoken"`, `result="`+res+`"`)
		parts = append(parts, fmt.Sprintf("%s %.0f", res, v))
	}
	return strings.Join(parts, ", ")
}

// memory returns VmRSS and VmHWM (peak) of the process, in bytes.
func (m *manager) memory() (rss, hwm int64, err error) {
	st, err := m.procStatus()
	return st["VmRSS:"], st["VmHWM:"], err
}

// procStatus reads the manager's /proc/<pid>/status: its kB fields, in
// bytes, by name ("VmRSS:").
func (m *manager) procStatus() (map[string]int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(m.cmd.Process.Pid), "status"))
	if err != nil {
		return nil, err
	}
	st := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "kB" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			st[f[0]] = kb * 1024
		}
	}
	return st, nil
}

// settledRSS waits until the process's RSS stops falling, the Go runtime
// having returned the garbage of listing and reconciling to the operating
// system, and returns it: the lowest reading once no reading in the last
// settleWindow was lower by more than 1% (at most settleMax). The window
// spans more than two of the manager's 10-second looks at its allocations
// (cmd/memory.go), after which, at rest, it lowers its garbage collection
// target and returns what the burst left: a reading taken before would be
// of a manager still busy with the benchmark's own probes.
func (m *manager) settledRSS(ctx context.Context) (int64, error) {
	const settleWindow, settleMax = 25 * time.Second, 120 * time.Second
	low, lowAt, start := int64(0), time.Now(), time.Now()
	for {
		rss, _, err := m.memory()
		if err != nil {
			return 0, err
		}
		now := time.Now()
		if low == 0 || float64(rss) < 0.99*float64(low) {
			lowAt = now
		}
		if low == 0 || rss < low {
			low = rss
		}
		if now.Sub(lowAt) >= settleWindow || now.Sub(start) >= settleMax {
			return low, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// settledMemory returns the manager's settled RSS and its live heap, as a
// manager that has been running for a while has them. After a burst of
// work (the lists and reconciles of a start) the runtime keeps the heap it
// grew to until its next garbage collection, which an idle manager runs
// only when two minutes have passed since the last (the Go runtime's
// forced collection): so the RSS read right after the burst is the
// burst's. It reads that RSS (settledRSS, logged), then has the manager
// collect garbage as the runtime would within those two minutes (liveHeap,
// which reads the live heap), and returns the RSS once the runtime has
// returned what the collection freed to the system (settledRSS again).
func (m *manager) settledMemory(ctx context.Context) (rss, live int64, err error) {
	burst, err := m.settledRSS(ctx)
	if err != nil {
		return 0, 0, err
	}
	if live, err = m.liveHeap(); err != nil {
		return 0, 0, err
	}
	if rss, err = m.settledRSS(ctx); err != nil {
		return 0, 0, err
	}
	gogc, _ := m.metric("go_gc_gogc_percent")
	logf("manager memory: settled RSS %s before a garbage collection, %s after it (GOGC %.0f)", mib(burst), mib(rss), gogc)
	return rss, live, err
}

// liveHeap returns the bytes of the manager's heap that are live: it has
// the manager collect garbage (its pprof endpoint's heap profile with
// gc=1) and reads HeapAlloc. Unlike RSS it does not depend on when the Go
// runtime last collected or returned memory to the system. It logs where
// the rest of the process's memory is, from the same runtime.MemStats:
// heap spans in use beyond the live objects (fragmentation), heap the
// runtime keeps without returning it, stacks and the runtime's own.
func (m *manager) liveHeap() (int64, error) {
	resp, err := http.Get(m.pprofURL + "/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	stats := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		name, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok || strings.ContainsAny(name, " #") {
			continue
		}
		// "Stack = inuse / sys" and the like give both.
		inuse, sys, pair := strings.Cut(v, " / ")
		if n, err := strconv.ParseInt(strings.TrimSpace(inuse), 10, 64); err == nil {
			stats[name] = n
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(sys), 10, 64); pair && err == nil {
			stats[name+"Sys"] = n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	live, ok := stats["HeapAlloc"]
	if !ok {
		return 0, fmt.Errorf("no HeapAlloc in the heap profile")
	}
	if err := m.saveHeapProfile(); err != nil {
		logf("manager memory: saving a heap profile: %v", err)
	}
	st, _ := m.procStatus()
	logf("manager memory: RSS %s anonymous and %s of files (the binary), live heap %s, heap spans in use %s, heap kept and not returned %s, stacks %s (in use), runtime metadata %s, all obtained from the system %s",
		mib(st["RssAnon:"]), mib(st["RssFile:"]), mib(live), mib(stats["HeapInuse"]), mib(stats["HeapIdle"]-stats["HeapReleased"]), mib(stats["Stack"]),
		mib(stats["MSpanSys"]+stats["MCacheSys"]+stats["GCSys"]+stats["BuckHashSys"]+stats["OtherSys"]), mib(stats["Sys"]-stats["HeapReleased"]))
	return live, nil
}

// heapProfiles numbers the heap profiles of a run.
var heapProfiles atomic.Int64

// saveHeapProfile saves the manager's heap profile, as of its last
// collection, to <log name>-heap-<k>.pb.gz for go tool pprof.
func (m *manager) saveHeapProfile() error {
	path := fmt.Sprintf("%s-heap-%d.pb.gz", m.profiles, heapProfiles.Add(1))
	if err := download(m.pprofURL+"/heap", path); err != nil {
		return err
	}
	logf("manager memory: heap profile in %s", path)
	return nil
}

// download saves what a GET of url answers with 200 OK to path.
func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
