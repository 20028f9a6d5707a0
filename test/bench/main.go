// Command bench measures how tokensync scales: N OAuthClientTokens on one
// manager, against an envtest control plane (kube-apiserver and etcd with an
// audit log) and the test token server, with the built manager binary run as
// a process under its own RBAC. For each N it measures
//
//  1. the time from creating N objects to all Ready, against a baseline that
//     does the least work per object with plain client-go under the same
//     limits (concurrency, API QPS/burst, per-host token rate);
//  2. the API and token requests per object per refresh cycle, and the
//     writes of a reconcile that finds nothing to do;
//  3. the token requests and writes of a restart with N valid tokens, and
//     how long the restarted manager takes to reconcile them all;
//  4. the manager's peak RSS with N objects, and again with unrelated
//     Secrets added to the cluster;
//  5. a refresh storm: N tokens that all expire at the same moment.
//
// It prints one table and exits 1 when a target is missed (see -enforce).
// docs/performance.md has the results and how to reproduce them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

func init() {
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

type options struct {
	sizes            []int
	managerBin       string
	assets           string
	managerArgs      []string
	managerEnv       []string
	enforce          string
	unrelated        int
	unrelatedSize    int
	creators         int
	stormRenewBefore time.Duration
	workDir          string
	keep             bool
	repoRoot         string
	shards           []int
	sharedProvider   bool
	shardedListWatch bool
	creationOnly     bool
	memoryOnly       bool
	cpuProfile       time.Duration
}

func main() {
	var o options
	var sizes, managerArgs, managerEnv, shards string
	var reportOnly, smoke bool
	flag.StringVar(&sizes, "n", "1000,5000", "Comma-separated numbers of OAuthClientTokens; each N runs on a fresh control plane.")
	flag.StringVar(&o.managerBin, "manager", "bin/manager", "The manager binary (make build).")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory with kube-apiserver, etcd and kubectl (default $KUBEBUILDER_ASSETS).")
	flag.StringVar(&managerArgs, "manager-args", "", "Extra manager flags, space-separated (e.g. \"--concurrent-reconciles=8\"). The baseline copies concurrency and limits from the manager's defaults and these.")
	flag.StringVar(&managerEnv, "manager-env", "", "Extra environment variables of the manager, space-separated (e.g. \"GOMEMLIMIT=200MiB GODEBUG=gctrace=1\").")
	flag.StringVar(&o.enforce, "enforce", "all", "Which targets make the exit status non-zero: all, counts (request and write counts, the token rate limit and the storm's deadline: not the time ratio or memory, which are noisy at small N) or none.")
	flag.BoolVar(&reportOnly, "report-only", false, "Only report: same as -enforce none.")
	flag.BoolVar(&smoke, "smoke", false, "The CI run: -n 50 -unrelated-secrets 500 -enforce counts (flags given explicitly win). Takes about a minute.")
	flag.IntVar(&o.unrelated, "unrelated-secrets", 20000, "Unrelated Secrets added for the memory measurement.")
	flag.IntVar(&o.unrelatedSize, "unrelated-secret-size", 10*1024, "Bytes of data in each unrelated Secret.")
	flag.IntVar(&o.creators, "creators", 8, "Parallel clients creating objects.")
	flag.DurationVar(&o.stormRenewBefore, "storm-renew-before", 0, "refresh.renewBefore of the storm's objects; 0 picks 2×N/(--max-token-requests-per-host) + 10s.")
	flag.StringVar(&o.workDir, "workdir", "", "Directory for audit logs, manager logs and kubeconfigs (default: a temporary directory, removed unless -keep).")
	flag.BoolVar(&o.keep, "keep", false, "Keep the work directory.")
	flag.StringVar(&shards, "shards", "", "Comma-separated shard counts (e.g. 1,2,4): instead of the phases above, run for each N and count k managers with --shard-count=k over objects in N/4 namespaces, and report per shard the objects held, RSS, API list and watch bytes, time to all Ready and token requests.")
	flag.BoolVar(&o.sharedProvider, "shared-provider", false, "Instead of the phases above, run for each N objects over N/4 namespaces that reference one ClusterOAuthProvider with tokenSharing Shared, and report the token requests for the first tokens and over the next lifetime (want 1 and 1).")
	flag.DurationVar(&o.cpuProfile, "cpu-profile", 0, "With a duration (e.g. 30s): take CPU profiles of the API server and the manager for that long from the start of phase 1 (and of the API server in the baseline's run), saved in the work directory (use with -keep) as phase1-*.pb.gz.")
	flag.BoolVar(&o.memoryOnly, "memory-only", false, "Run only phases 1, 3 and 4 (creation, restart, memory) and report their rows and the memory per token: about a third of the time of a full run.")
	flag.BoolVar(&o.creationOnly, "creation-only", false, "Run only phase 1 (time to all Ready against the baseline, API requests per object) and report its rows.")
	flag.BoolVar(&o.shardedListWatch, "sharded-list-watch", true, "With -shards: enable the API server's ShardedListAndWatch feature gate (false: the managers filter by themselves).")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	if smoke {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["n"] {
			sizes = "50"
		}
		if !set["unrelated-secrets"] {
			o.unrelated = 500
		}
		if !set["enforce"] {
			o.enforce = "counts"
		}
	}
	if reportOnly {
		o.enforce = "none"
	}
	switch o.enforce {
	case "all", "counts", "none":
	default:
		fatalf("-enforce must be all, counts or none")
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("-n: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	for _, s := range strings.Split(shards, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		k, err := strconv.Atoi(s)
		if err != nil || k <= 0 {
			fatalf("-shards: %q is not a positive number", s)
		}
		o.shards = append(o.shards, k)
	}
	o.managerArgs = strings.Fields(managerArgs)
	o.managerEnv = strings.Fields(managerEnv)
	if o.assets == "" {
		fatalf("set KUBEBUILDER_ASSETS or -assets (hack/install-envtest.sh bin prints it)")
	}
	var err error
	if o.repoRoot, err = findRepoRoot(); err != nil {
		fatalf("%v", err)
	}
	if o.managerBin, err = filepath.Abs(o.managerBin); err != nil {
		fatalf("%v", err)
	}
	if _, err := os.Stat(o.managerBin); err != nil {
		fatalf("manager binary: %v (run make build)", err)
	}
	if o.workDir == "" {
		if o.workDir, err = os.MkdirTemp("", "tokensync-bench-"); err != nil {
			fatalf("%v", err)
		}
		if !o.keep {
			defer os.RemoveAll(o.workDir)
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s, err := managerSettings(o.managerBin, o.managerArgs)
	if err != nil {
		fatalf("%v", err)
	}
	logf("manager %s: --concurrent-reconciles=%d --kube-api-qps=%g --kube-api-burst=%d --max-token-requests-per-host=%g --token-request-burst-per-host=%d %s",
		o.managerBin, s.concurrency, s.qps, s.burst, s.tokenRate, s.tokenBurst, strings.Join(o.managerArgs, " "))
	logf("work directory %s", o.workDir)

	if o.sharedProvider {
		var runs []*sharedRun
		for _, n := range o.sizes {
			r, err := runShared(ctx, o, n)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: N=%d, shared provider: %v\n", n, err)
				os.Exit(2)
			}
			runs = append(runs, r)
		}
		fmt.Println(machine(o))
		if failed := printShared(os.Stdout, runs, o); failed > 0 {
			fmt.Printf("\n%d enforced target(s) missed\n", failed)
			os.Exit(1)
		}
		return
	}
	if len(o.shards) > 0 {
		shardedListWatch = o.shardedListWatch
		var runs []*shardRun
		for _, n := range o.sizes {
			for _, k := range o.shards {
				r, err := runShards(ctx, o, n, k)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: N=%d, %d shards: %v\n", n, k, err)
					os.Exit(2)
				}
				runs = append(runs, r)
			}
		}
		fmt.Println(machine(o))
		fmt.Printf("Manager flags: --concurrent-reconciles=%d --kube-api-qps=%g --kube-api-burst=%d --max-token-requests-per-host=%g --token-request-burst-per-host=%d %s; ShardedListAndWatch=%v\n\n",
			s.concurrency, s.qps, s.burst, s.tokenRate, s.tokenBurst, strings.Join(o.managerArgs, " "), o.shardedListWatch)
		if failed := printShards(os.Stdout, runs, o); failed > 0 && o.enforce != "none" {
			fmt.Printf("\n%d enforced target(s) missed\n", failed)
			os.Exit(1)
		}
		return
	}
	var results []*result
	for _, n := range o.sizes {
		r, err := runSize(ctx, o, s, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: N=%d: %v\n", n, err)
			os.Exit(2)
		}
		results = append(results, r)
	}
	fmt.Println(machine(o))
	fmt.Printf("Manager flags: --concurrent-reconciles=%d --kube-api-qps=%g --kube-api-burst=%d --max-token-requests-per-host=%g --token-request-burst-per-host=%d %s\n\n",
		s.concurrency, s.qps, s.burst, s.tokenRate, s.tokenBurst, strings.Join(o.managerArgs, " "))
	failed := printTable(os.Stdout, results, s, o)
	for _, r := range results {
		for _, note := range r.notes {
			fmt.Printf("\nN=%d: %s", r.n, note)
		}
	}
	fmt.Println()
	if failed > 0 {
		if o.enforce == "none" {
			fmt.Printf("\n%d target(s) missed (not enforced: -enforce=none)\n", failed)
			return
		}
		fmt.Printf("\n%d enforced target(s) missed\n", failed)
		os.Exit(1)
	}
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/tokensync/tokensync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run the benchmark from inside the tokensync repository")
		}
		dir = parent
	}
}

// machine describes where the benchmark ran.
func machine(o options) string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	k8s := "?"
	if out, err := runOutput(filepath.Join(o.assets, "kube-apiserver"), "--version"); err == nil {
		k8s = strings.TrimSpace(out)
	}
	return fmt.Sprintf("Machine: %d CPUs (%s), %s memory, %s %s/%s, %s", runtime.NumCPU(), cpu, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, k8s)
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%7.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(2)
}
