package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// result is what one N measured.
type result struct {
	n int

	// 1. Creation.
	baselineTime, managerTime time.Duration
	baselineAPI, managerAPI   apiCounts
	createTokenRequests       int
	// CPU used from the first create until all are Ready.
	baselineCPU, managerCPU cpuUse

	// 2. Steady state: one refresh cycle, and reconciles with nothing to do.
	lifetime          int
	refreshes         int
	refreshTokens     int
	refreshAPI        apiCounts
	refreshReconciles float64
	touchReconciles   float64 // after an annotation the manager does not read was changed on every object
	touchAPI          apiCounts

	// 3. Restart with N valid tokens.
	restartTime       time.Duration
	restartTokens     int
	restartAPI        apiCounts
	restartReconciles float64

	// 4. Memory (bytes).
	rss, hwm                   int64 // fresh manager with N objects
	live                       int64 // its live heap after a collection
	liveUnrelated              int64 // the same with the unrelated Secrets
	rssRunning, hwmRunning     int64 // the same process after the unrelated Secrets were added
	rssUnrelated, hwmUnrelated int64 // fresh manager with N objects and the unrelated Secrets
	unrelated                  int

	// 5. Storm.
	stormRenewBefore time.Duration
	stormExpiry      time.Time
	stormRefreshed   int
	stormOnTime      int
	stormPeak1s      float64
	stormPeak10s     float64
	stormTime        time.Duration
	stormFailures    float64
	stormRequests    int

	notes []string
}

func (r *result) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("N=%d: %s", r.n, msg)
	r.notes = append(r.notes, msg)
}

// settle is how long to wait after a phase for the requests it caused
// (the reconciles triggered by the manager's own writes) to finish.
func settle(n int) time.Duration {
	return 3*time.Second + time.Duration(n)*time.Millisecond
}

func runSize(ctx context.Context, o options, s settings, n int) (*result, error) {
	r := &result{n: n, unrelated: o.unrelated}
	dir := filepath.Join(o.workDir, fmt.Sprintf("n%d", n))
	if err := runBaseline(ctx, o, s, r, filepath.Join(dir, "baseline")); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if err := runManager(ctx, o, s, r, filepath.Join(dir, "manager")); err != nil {
		return nil, err
	}
	return r, nil
}

func runBaseline(ctx context.Context, o options, s settings, r *result, dir string) error {
	logf("N=%d: baseline: starting a control plane", r.n)
	cl, err := startCluster(ctx, o.assets, o.repoRoot, dir)
	if err != nil {
		return err
	}
	defer cl.stop()
	cfg, err := cl.baselineConfig(float32(s.qps), s.burst)
	if err != nil {
		return err
	}
	// The tracker's watch ends before the control plane stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ep, err := startEndpoint(3600)
	if err != nil {
		return err
	}
	defer ep.close()
	if err := prepareGroup(ctx, cl.c, "bench"); err != nil {
		return err
	}
	tr, err := startTracker(ctx, cl.admin)
	if err != nil {
		return err
	}
	b, err := startBaseline(ctx, cfg, s, r.n)
	if err != nil {
		return err
	}
	if err := warmUp(ctx, cl.c, ep.url); err != nil {
		return err
	}
	logf("N=%d: baseline: creating %d objects", r.n, r.n)
	profiled := cpuProfiles(ctx, cl.admin, "", o.cpuProfile, dir, "phase1")
	defer profiled()
	cpu0 := sampleCPU(0)
	t0 := time.Now()
	if err := createFleet(ctx, cl.c, "bench", r.n, o.creators, ep.url, nil, b.add); err != nil {
		return err
	}
	logf("N=%d: baseline: created in %s", r.n, time.Since(t0).Round(time.Millisecond))
	if err := waitFor(ctx, 30*time.Minute, 100*time.Millisecond, "the baseline to make every object Ready", func() bool {
		c, _ := tr.readyCount("bench")
		return c >= r.n
	}); err != nil {
		return err
	}
	_, last := tr.readyCount("bench")
	r.baselineCPU = sampleCPU(0).sub(cpu0)
	r.baselineTime = last.Sub(t0)
	if err := b.finish(); err != nil {
		return err
	}
	if r.baselineAPI, err = cl.audit.count(managerUser, t0, time.Now().Add(time.Second)); err != nil {
		return err
	}
	logf("N=%d: baseline: all Ready in %s (%d API requests); stopping the control plane", r.n, r.baselineTime.Round(time.Millisecond), r.baselineAPI.total)
	return nil
}

func runManager(ctx context.Context, o options, s settings, r *result, dir string) error {
	logf("N=%d: manager: starting a control plane", r.n)
	cl, err := startCluster(ctx, o.assets, o.repoRoot, dir)
	if err != nil {
		return err
	}
	defer cl.stop()
	// The tracker's watch ends before the control plane stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kubeconfig, err := cl.installManager()
	if err != nil {
		return err
	}
	// Tokens of phase 1 last long enough for creation to end well before
	// their first renewal, so that the refresh cycle of phase 2 is measured
	// on its own.
	r.lifetime = max(24, int(math.Ceil(4*r.baselineTime.Seconds()))+20)
	ep, err := startEndpoint(r.lifetime)
	if err != nil {
		return err
	}
	defer ep.close()
	if err := prepareGroup(ctx, cl.c, "bench"); err != nil {
		return err
	}
	tr, err := startTracker(ctx, cl.admin)
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "manager.log")
	m, err := startManager(ctx, o.managerBin, kubeconfig, logPath, o.managerArgs, o.managerEnv)
	if err != nil {
		return err
	}
	defer func() { m.stop() }()

	// 1. Creation.
	if err := warmUp(ctx, cl.c, ep.url); err != nil {
		return err
	}
	logf("N=%d: phase 1: creating %d objects (token lifetime %ds)", r.n, r.n, r.lifetime)
	profiled := cpuProfiles(ctx, cl.admin, m.pprofURL, o.cpuProfile, dir, "phase1")
	cpu0 := sampleCPU(m.cmd.Process.Pid)
	t0 := time.Now()
	if err := createFleet(ctx, cl.c, "bench", r.n, o.creators, ep.url, nil, nil); err != nil {
		return err
	}
	logf("N=%d: phase 1: created in %s", r.n, time.Since(t0).Round(time.Millisecond))
	if err := waitFor(ctx, max(10*time.Minute, 20*r.baselineTime), 100*time.Millisecond, "the manager to make every object Ready", func() bool {
		c, _ := tr.readyCount("bench")
		return c >= r.n
	}); err != nil {
		return err
	}
	_, last := tr.readyCount("bench")
	r.managerCPU = sampleCPU(m.cmd.Process.Pid).sub(cpu0)
	r.managerTime = last.Sub(t0)
	sleep(ctx, settle(r.n))
	r.createTokenRequests = ep.requests()
	if r.managerAPI, err = cl.audit.count(managerUser, t0, time.Now()); err != nil {
		return err
	}
	logf("N=%d: phase 1: all Ready in %s (baseline %s); %d token requests; API %s", r.n, r.managerTime.Round(time.Millisecond),
		r.baselineTime.Round(time.Millisecond), r.createTokenRequests, r.managerAPI.breakdown(float64(r.n)))
	logf("N=%d: phase 1: reconciles %s", r.n, m.reconcileResults())
	logf("N=%d: phase 1: CPU ms per object, API server / etcd / benchmark / client: baseline %s, manager %s", r.n,
		r.baselineCPU.perObject(r.n), r.managerCPU.perObject(r.n))
	profiled()

	if o.creationOnly {
		return nil
	}

	if !o.memoryOnly {
		if err := runRefresh(ctx, o, r, cl, tr, m, ep); err != nil {
			return err
		}
	}
	return runRestart(ctx, o, s, r, cl, tr, m, ep, kubeconfig, logPath)
}

// runRefresh is phase 2: one refresh cycle, then an annotation the manager
// does not read changed on every object.
func runRefresh(ctx context.Context, o options, r *result, cl *cluster, tr *tracker, m *manager, ep *endpoint) error {
	// 2. One refresh cycle. Tokens issued from now on last an hour, so
	// that the cycle ends.
	logf("N=%d: phase 2: waiting for a refresh cycle", r.n)
	ep.setLifetime(3600)
	from := time.Now()
	tok0, rec0 := ep.requests(), m.reconciles()
	var err error
	if err := waitFor(ctx, time.Duration(r.lifetime)*time.Second+10*time.Minute, 200*time.Millisecond, "every object to be refreshed", func() bool {
		objs, _ := tr.renewedSince("bench", from)
		return objs >= r.n
	}); err != nil {
		return err
	}
	sleep(ctx, settle(r.n))
	to := time.Now()
	_, r.refreshes = tr.renewedSince("bench", from)
	r.refreshTokens = ep.requests() - tok0
	r.refreshReconciles = m.reconciles() - rec0
	if r.refreshAPI, err = cl.audit.count(managerUser, from, to); err != nil {
		return err
	}
	logf("N=%d: phase 2: %d refreshes, %d token requests, %.0f reconciles; API per refresh %s", r.n, r.refreshes, r.refreshTokens,
		r.refreshReconciles, r.refreshAPI.breakdown(float64(r.refreshes)))

	// 2b. An annotation the manager does not read, changed on every
	// object: its cache keeps no such annotation, so nothing is reconciled
	// and nothing is sent. (A reconcile with nothing to do is phase 3's.)
	logf("N=%d: phase 2: touching every object", r.n)
	from = time.Now()
	rec0 = m.reconciles()
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"bench.tokensync.io/touched":%q}}}`, from.Format(time.RFC3339Nano)))
	if err := forEach(ctx, "bench", r.n, o.creators, func(ctx context.Context, ns, name string) error {
		o := &v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		return cl.c.Patch(ctx, o, client.RawPatch(types.MergePatchType, patch))
	}); err != nil {
		return err
	}
	sleep(ctx, settle(r.n))
	r.touchReconciles = m.reconciles() - rec0
	if r.touchAPI, err = cl.audit.count(managerUser, from, time.Now()); err != nil {
		return err
	}
	logf("N=%d: phase 2: an unread annotation changed on every object: %.0f reconciles, %d API requests", r.n, r.touchReconciles, r.touchAPI.total)

	return nil
}

// runRestart is phases 3 (restart with N valid tokens), 4 (memory) and,
// unless -memory-only, 5 (the storm).
func runRestart(ctx context.Context, o options, s settings, r *result, cl *cluster, tr *tracker, m *manager, ep *endpoint, kubeconfig, logPath string) error {
	// 3. Restart with N valid tokens.
	logf("N=%d: phase 3: restarting the manager", r.n)
	m.stop()
	tok0 := ep.requests()
	from := time.Now()
	var err error
	defer func() { m.stop() }() // the managers started here
	if m, err = startManager(ctx, o.managerBin, kubeconfig, logPath, o.managerArgs, o.managerEnv); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Minute, 100*time.Millisecond, "the restarted manager to reconcile every object", func() bool {
		return m.reconciles() >= float64(r.n)
	}); err != nil {
		return err
	}
	r.restartTime = time.Since(m.started)
	sleep(ctx, settle(r.n))
	r.restartTokens = ep.requests() - tok0
	r.restartReconciles = m.reconciles()
	if r.restartAPI, err = cl.audit.count(managerUser, from, time.Now()); err != nil {
		return err
	}
	logf("N=%d: phase 3: every object reconciled %s after the start; %d token requests; API %s", r.n, r.restartTime.Round(time.Millisecond),
		r.restartTokens, r.restartAPI.breakdown(1))

	// 4. Memory: the restarted manager, then with unrelated Secrets.
	if _, r.hwm, err = m.memory(); err != nil {
		return err
	}
	if r.rss, r.live, err = m.settledMemory(ctx); err != nil {
		return err
	}
	logf("N=%d: phase 4: RSS %s, peak %s, live heap %s; creating %d unrelated Secrets of %d bytes", r.n, mib(r.rss), mib(r.hwm), mib(r.live), o.unrelated, o.unrelatedSize)
	if err := createUnrelated(ctx, cl.c, o.unrelated, o.unrelatedSize, 2*o.creators); err != nil {
		return err
	}
	sleep(ctx, 5*time.Second)
	if r.rssRunning, r.hwmRunning, err = m.memory(); err != nil {
		return err
	}
	m.stop()
	if m, err = startManager(ctx, o.managerBin, kubeconfig, logPath, o.managerArgs, o.managerEnv); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Minute, 100*time.Millisecond, "the restarted manager to reconcile every object", func() bool {
		return m.reconciles() >= float64(r.n)
	}); err != nil {
		return err
	}
	sleep(ctx, settle(r.n))
	if _, r.hwmUnrelated, err = m.memory(); err != nil {
		return err
	}
	if r.rssUnrelated, r.liveUnrelated, err = m.settledMemory(ctx); err != nil {
		return err
	}
	logf("N=%d: phase 4: running manager after the unrelated Secrets: RSS %s, peak %s; restarted: RSS %s, peak %s", r.n,
		mib(r.rssRunning), mib(r.hwmRunning), mib(r.rssUnrelated), mib(r.hwmUnrelated))

	if o.memoryOnly {
		return nil
	}
	// 5. Storm.
	return runStorm(ctx, o, s, r, cl, tr, m)
}

// runStorm creates N objects whose tokens all expire at the same instant
// and whose renewBefore makes them all due for renewal together.
func runStorm(ctx context.Context, o options, s settings, r *result, cl *cluster, tr *tracker, m *manager) error {
	ep, err := startEndpoint(3600)
	if err != nil {
		return err
	}
	defer ep.close()
	r.stormRenewBefore = o.stormRenewBefore
	if r.stormRenewBefore == 0 {
		rate := s.tokenRate
		if rate <= 0 {
			rate = 100
		}
		r.stormRenewBefore = (2*time.Duration(float64(r.n)/rate*float64(time.Second)) + 10*time.Second).Round(time.Second)
	}
	// Creation ends well before the renewals start.
	lead := max(10*time.Second, 2*r.managerTime+5*time.Second)
	r.stormExpiry = time.Now().Add(lead + r.stormRenewBefore).Truncate(time.Second).Add(time.Second)
	ep.expireAllAt(r.stormExpiry)
	if err := prepareGroup(ctx, cl.c, "storm"); err != nil {
		return err
	}
	logf("N=%d: phase 5: creating %d objects whose tokens all expire at %s, renewBefore %s", r.n, r.n, r.stormExpiry.Format(time.TimeOnly), r.stormRenewBefore)
	refresh := &v1alpha1.RefreshSpec{RenewBefore: &metav1.Duration{Duration: r.stormRenewBefore}}
	if err := createFleet(ctx, cl.c, "storm", r.n, o.creators, ep.url, refresh, nil); err != nil {
		return err
	}
	if err := waitFor(ctx, lead+r.stormRenewBefore, 100*time.Millisecond, "the storm's objects to be Ready", func() bool {
		c, _ := tr.readyCount("storm")
		return c >= r.n
	}); err != nil {
		return err
	}
	_, ready := tr.readyCount("storm")
	ep.setLifetime(3600)
	if due := r.stormExpiry.Add(-r.stormRenewBefore); ready.After(due.Add(-2 * time.Second)) {
		r.note("the storm's objects were Ready only %s before their renewal was due: the storm overlapped their creation",
			due.Sub(ready).Round(time.Millisecond))
	}
	fail0, _ := m.metric("tokensync_token_requests_total", `result="failure"`)
	logf("N=%d: phase 5: all Ready; waiting for the renewals due at %s", r.n, r.stormExpiry.Add(-r.stormRenewBefore).Format(time.TimeOnly))
	if err := waitFor(ctx, time.Until(r.stormExpiry)+time.Minute, 200*time.Millisecond, "every storm object to be refreshed", func() bool {
		objs, _ := tr.renewedSince("storm", ready)
		return objs >= r.n
	}); err != nil {
		r.note("%v", err)
	}
	sleep(ctx, time.Second)
	fail1, _ := m.metric("tokensync_token_requests_total", `result="failure"`)
	r.stormFailures = fail1 - fail0
	var first, last time.Time
	for _, rn := range tr.firstRenewals("storm", ready) {
		if rn.seen.IsZero() {
			continue
		}
		r.stormRefreshed++
		if rn.seen.Before(r.stormExpiry) && rn.expiresAt.After(r.stormExpiry) {
			r.stormOnTime++
		}
		if rn.seen.After(last) {
			last = rn.seen
		}
	}
	times := ep.requestsIn(ready, time.Now())
	r.stormRequests = len(times)
	if len(times) > 0 {
		first = times[0]
		r.stormTime = last.Sub(first)
		r.stormPeak1s = peakRate(times, time.Second)
		r.stormPeak10s = peakRate(times, 10*time.Second)
	}
	logf("N=%d: phase 5: %d of %d refreshed before expiry; %d token requests, peak %.0f in 1s, %.1f/s over 10s; %.0f failed; took %s",
		r.n, r.stormOnTime, r.n, r.stormRequests, r.stormPeak1s, r.stormPeak10s, r.stormFailures, r.stormTime.Round(time.Millisecond))
	return nil
}

// createUnrelated creates n Secrets of size random bytes in their own
// namespace, without tokensync's label.
func createUnrelated(ctx context.Context, c client.Client, n, size, workers int) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}); err != nil {
		return err
	}
	return parallel(n, workers, func(i int) error {
		buf := make([]byte, size)
		_, _ = rand.Read(buf)
		return c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%05d", i), Namespace: "unrelated", Labels: map[string]string{"app": "unrelated"}},
			Data:       map[string][]byte{"data": buf},
		})
	})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func runOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
