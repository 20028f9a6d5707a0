package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokensync/tokensync/internal/shard"
)

// The shard benchmark (-shards): for each N and each shard count k, a fresh
// control plane (with the ShardedListAndWatch feature gate unless
// -sharded-list-watch=false), objects spread over many namespaces, and k
// manager processes, one per shard. It reports, per shard, the objects it
// holds, its RSS, the API list and watch bytes it received, its time to all
// of its objects Ready and its token requests.

type shardRow struct {
	index         int
	objects       float64 // Ready objects in the shard's cache (tokensync_ready_status)
	owned         int     // objects whose namespace the shard owns (computed)
	rss           int64
	listBytes     float64
	watchBytes    float64
	ready         time.Duration
	tokenRequests float64
	mode          string
	// After a restart of the shard with every token valid.
	restartTime      time.Duration
	restartRSS       int64
	restartLive      int64 // live heap of the restarted shard
	restartListBytes float64
	restartTokens    float64
}

type shardRun struct {
	n, k       int
	namespaces int
	base       int64 // RSS of an idle shard manager before any object exists (the least of the k)
	baseLive   int64 // its live heap (the least of the k)
	rows       []shardRow
	all        time.Duration // time to all N Ready
	tokens     int           // token requests the endpoint received
}

// shardNamespaces is how many namespaces the shard benchmark spreads N
// objects over: sharding is by namespace, so few namespaces split unevenly.
func shardNamespaces(n int) int { return max(10, n/4) }

// startSpread starts what the shard and shared-provider benchmarks run
// on: a control plane with the manager's CRDs and RBAC (kubeconfig
// authenticates as the manager), a token endpoint issuing tokens of
// lifetime seconds, and the namespaces of group "bench", with their
// credentials, spread over the given number. stop undoes it all.
func startSpread(ctx context.Context, o options, dir string, namespaces, lifetime int) (cl *cluster, kubeconfig string, ep *endpoint, stop func(), err error) {
	if cl, err = startCluster(ctx, o.assets, o.repoRoot, dir); err != nil {
		return nil, "", nil, nil, err
	}
	stops := []func(){cl.stop}
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (*cluster, string, *endpoint, func(), error) {
		stop()
		return nil, "", nil, nil, err
	}
	if kubeconfig, err = cl.installManager(); err != nil {
		return fail(err)
	}
	if ep, err = startEndpoint(lifetime); err != nil {
		return fail(err)
	}
	stops = append(stops, ep.close)
	namespacesPerGroup = namespaces
	stops = append(stops, func() { namespacesPerGroup = defaultNamespacesPerGroup })
	if err := prepareGroup(ctx, cl.c, "bench"); err != nil {
		return fail(err)
	}
	return cl, kubeconfig, ep, stop, nil
}

func runShards(ctx context.Context, o options, n, k int) (*shardRun, error) {
	run := &shardRun{n: n, k: k, namespaces: shardNamespaces(n)}
	dir := filepath.Join(o.workDir, fmt.Sprintf("n%d-shards%d", n, k))
	logf("N=%d, %d shard(s): starting a control plane (ShardedListAndWatch=%v)", n, k, o.shardedListWatch)
	cl, kubeconfig, ep, stop, err := startSpread(ctx, o, dir, run.namespaces, 3600)
	if err != nil {
		return nil, err
	}
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tr, err := startTracker(ctx, cl.admin)
	if err != nil {
		return nil, err
	}
	ms := make([]*manager, k)
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	for i := range k {
		args := append(append([]string{}, o.managerArgs...), fmt.Sprintf("--shard-count=%d", k), fmt.Sprintf("--shard-index=%d", i))
		if ms[i], err = startManager(ctx, o.managerBin, kubeconfig, filepath.Join(dir, fmt.Sprintf("manager-%d.log", i)), args, o.managerEnv); err != nil {
			return nil, err
		}
	}
	for i, m := range ms {
		rss, live, err := m.settledMemory(ctx)
		if err != nil {
			return nil, err
		}
		if i == 0 || rss < run.base {
			run.base = rss
		}
		if i == 0 || live < run.baseLive {
			run.baseLive = live
		}
	}
	if err := warmUp(ctx, cl.c, ep.url); err != nil {
		return nil, err
	}
	logf("N=%d, %d shard(s): creating %d objects in %d namespaces", n, k, n, run.namespaces)
	t0 := time.Now()
	if err := createFleet(ctx, cl.c, "bench", n, o.creators, ep.url, nil, nil); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 30*time.Minute, 100*time.Millisecond, "the shards to make every object Ready", func() bool {
		c, _ := tr.readyCount("bench")
		return c >= n
	}); err != nil {
		return nil, err
	}
	_, last := tr.readyCount("bench")
	run.all = last.Sub(t0)
	readyAt := tr.readyTimes("bench")
	sleep(ctx, settle(n)+3*time.Second)
	run.tokens = ep.requests()
	for i, m := range ms {
		s := shard.Shard{Index: i, Count: k}
		row := shardRow{index: i}
		for key, at := range readyAt {
			ns, _, _ := strings.Cut(key, "/")
			if s.Owns(ns) {
				row.owned++
				row.ready = max(row.ready, at.Sub(t0))
			}
		}
		row.objects, _ = m.metric("tokensync_ready_status", `condition="True"`)
		row.listBytes, _ = m.metric("tokensync_api_response_bytes_total", `request="list"`)
		row.watchBytes, _ = m.metric("tokensync_api_response_bytes_total", `request="watch"`)
		row.tokenRequests, _ = m.metric("tokensync_token_requests_total", `result="success"`)
		if k > 1 {
			if v, _ := m.metric("tokensync_shard_mode", `mode="server"`); v == 1 {
				row.mode = shard.ModeServer
			} else if v, _ := m.metric("tokensync_shard_mode", `mode="client"`); v == 1 {
				row.mode = shard.ModeClient
			}
		}
		if row.rss, _, err = m.memory(); err != nil {
			return nil, err
		}
		// Restart the shard: it lists its slice, reconciles it, and mints
		// nothing; its settled RSS and list bytes are those of a shard at
		// rest.
		tok0 := ep.requests()
		m.stop()
		if ms[i], err = startManager(ctx, o.managerBin, kubeconfig, filepath.Join(dir, fmt.Sprintf("manager-%d.log", i)), append(append([]string{}, o.managerArgs...), fmt.Sprintf("--shard-count=%d", k), fmt.Sprintf("--shard-index=%d", i)), o.managerEnv); err != nil {
			return nil, err
		}
		m = ms[i]
		if err := waitFor(ctx, 10*time.Minute, 100*time.Millisecond, "the restarted shard to reconcile its objects", func() bool {
			return m.reconciles() >= float64(row.owned)
		}); err != nil {
			return nil, err
		}
		row.restartTime = time.Since(m.started)
		sleep(ctx, settle(row.owned)+3*time.Second)
		row.restartTokens = float64(ep.requests() - tok0)
		row.restartListBytes, _ = m.metric("tokensync_api_response_bytes_total", `request="list"`)
		if row.restartRSS, row.restartLive, err = m.settledMemory(ctx); err != nil {
			return nil, err
		}
		run.rows = append(run.rows, row)
		logf("N=%d, shard %d/%d restarted: every object reconciled in %s, %.0f token requests, settled RSS %s, live heap %s, list %s", n, i, k,
			row.restartTime.Round(time.Millisecond), row.restartTokens, mib(row.restartRSS), mib(row.restartLive), mib(int64(row.restartListBytes)))
		logf("N=%d, shard %d/%d (%s): %.0f objects, RSS %s, list %s, watch %s, all Ready in %s, %.0f token requests", n, i, k, row.mode,
			row.objects, mib(row.rss), mib(int64(row.listBytes)), mib(int64(row.watchBytes)), row.ready.Round(time.Millisecond), row.tokenRequests)
	}
	return run, nil
}

// printShards prints the per-shard table and returns the number of
// enforced targets missed: each shard holds at most 1/k + 10% of the
// objects and of one manager's memory above the base (the k = 1 run of the
// same N, when there is one), and the shards' token requests add up to one
// manager's (N).
func printShards(w io.Writer, runs []*shardRun, o options) int {
	failed := 0
	miss := func(counts bool, format string, args ...any) {
		enforced := o.enforce == "all" || (o.enforce == "counts" && counts)
		suffix := " (not enforced)"
		if enforced {
			failed++
			suffix = ""
		}
		fmt.Fprintf(w, "FAIL: "+format+"%s\n", append(args, suffix)...)
	}
	one := map[int]*shardRun{}
	for _, r := range runs {
		if r.k == 1 {
			one[r.n] = r
		}
	}
	fmt.Fprintln(w, "| N | shards | shard | mode | objects | share | RSS | RSS above base | share of one manager's | list bytes | watch bytes | all Ready | token requests | restart: all reconciled | restart: tokens | restart: settled RSS | restart: live heap above base | share of one manager's | restart: list bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		var oneAbove, oneLive int64
		if b := one[r.n]; b != nil && len(b.rows) == 1 {
			oneAbove = b.rows[0].rss - b.base
			oneLive = b.rows[0].restartLive - b.baseLive
		} else {
			for _, row := range r.rows {
				oneAbove += row.rss - r.base
				oneLive += row.restartLive - r.baseLive
			}
		}
		limit := 1/float64(r.k) + 0.10
		var tokens float64
		for _, row := range r.rows {
			tokens += row.tokenRequests
			share := row.objects / float64(r.n)
			memShare := float64(row.rss-r.base) / float64(max(oneAbove, 1))
			liveShare := float64(row.restartLive-r.baseLive) / float64(max(oneLive, 1))
			mode := row.mode
			if mode == "" {
				mode = "-"
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %.0f | %.1f%% | %s | %s | %.1f%% | %s | %s | %.1f s | %.0f | %.1f s | %.0f | %s | %s | %.1f%% | %s |\n", thousands(r.n), r.k, row.index, mode,
				row.objects, 100*share, mib(row.rss), mib(row.rss-r.base), 100*memShare, mib(int64(row.listBytes)), mib(int64(row.watchBytes)),
				row.ready.Seconds(), row.tokenRequests, row.restartTime.Seconds(), row.restartTokens, mib(row.restartRSS), mib(row.restartLive-r.baseLive), 100*liveShare, mib(int64(row.restartListBytes)))
			if row.restartTokens != 0 {
				miss(true, "N=%d, %d shards: shard %d's restart sent %.0f token requests, want 0", r.n, r.k, row.index, row.restartTokens)
			}
			if share > limit {
				miss(false, "N=%d, %d shards: shard %d holds %.1f%% of the objects, more than %.1f%%", r.n, r.k, row.index, 100*share, 100*limit)
			}
			if r.k > 1 && oneLive > 0 && liveShare > limit {
				miss(false, "N=%d, %d shards: shard %d's live heap above the base is %.1f%% of one manager's, more than %.1f%%", r.n, r.k, row.index, 100*liveShare, 100*limit)
			}
			if int(row.objects) != row.owned {
				miss(true, "N=%d, %d shards: shard %d holds %.0f objects, its namespaces have %d", r.n, r.k, row.index, row.objects, row.owned)
			}
		}
		fmt.Fprintf(w, "| %s | %d | all | | %.0f | | | base %s | | | | %.1f s | %.0f (endpoint: %d) |\n", thousands(r.n), r.k, sumObjects(r), mib(r.base), r.all.Seconds(), tokens, r.tokens)
		if int(tokens) != r.n || r.tokens != r.n {
			miss(true, "N=%d, %d shards: %.0f token requests by the shards, %d at the endpoint, want %d (one manager's)", r.n, r.k, tokens, r.tokens, r.n)
		}
	}
	return failed
}

func sumObjects(r *shardRun) float64 {
	var s float64
	for _, row := range r.rows {
		s += row.objects
	}
	return s
}
