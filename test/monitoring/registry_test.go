package monitoring_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/metrics"
	"github.com/tokensync/tokensync/internal/shard"
)

// series describes the series a metric name selects: its label names and,
// where the code fixes them, the values a label can take.
type series struct {
	family string          // the metric family it belongs to
	own    map[string]bool // the labels the code gives it
	labels map[string]bool // own, le or quantile, and the target labels
	values map[string][]string
}

// targetLabels are added by Prometheus (prometheus-operator) to every
// scraped series: matching or grouping on them is always valid. With
// honorLabels: true the per-object series keep their own namespace.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// labelValues are the values the tokensync code gives its enumerated labels
// (internal/metrics/metrics.go), so that a matcher such as
// result="failed" that could never match fails the test.
var labelValues = map[string]map[string][]string{
	"tokensync_token_requests_total":     {"result": {"success", "failure"}},
	"tokensync_ready_status":             {"condition": {"True", "False", "Unknown"}},
	"tokensync_shard_mode":               {"mode": {"server", "client"}},
	"tokensync_api_response_bytes_total": {"request": {"watch", "list", "other"}},
}

// knownSeries returns every series name the monitoring artefacts may
// reference, with its labels: tokensync's own metrics as registered by
// metrics.New, controller-runtime's controller and workqueue
// metrics for a controller named like the manager's, and Prometheus' up.
func knownSeries(t *testing.T) map[string]series {
	t.Helper()
	known := map[string]series{}
	add := func(mfs []*dto.MetricFamily) {
		for _, mf := range mfs {
			addFamily(known, mf)
		}
	}
	add(tokensyncFamilies(t))
	add(controllerRuntimeFamilies(t))
	known["up"] = series{family: "up", own: map[string]bool{}, labels: map[string]bool{}}
	for name, s := range known {
		for l, vs := range labelValues[s.family] {
			if !s.labels[l] {
				t.Fatalf("labelValues: %s has no label %s", s.family, l)
			}
			s.values[l] = vs
		}
		for _, l := range targetLabels {
			s.labels[l] = true
		}
		known[name] = s
	}
	for family := range labelValues {
		if _, ok := known[family]; !ok {
			t.Fatalf("labelValues: no metric %s", family)
		}
	}
	return known
}

// addFamily adds the series names of a gathered family: the name itself,
// or for histograms and summaries _bucket (with le), _sum and _count.
func addFamily(known map[string]series, mf *dto.MetricFamily) {
	labels := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = true
		}
	}
	with := func(extra ...string) series {
		s := series{family: mf.GetName(), own: labels, labels: map[string]bool{}, values: map[string][]string{}}
		for l := range labels {
			s.labels[l] = true
		}
		for _, l := range extra {
			s.labels[l] = true
		}
		return s
	}
	name := mf.GetName()
	switch mf.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		known[name+"_bucket"] = with("le")
		known[name+"_sum"] = with()
		known[name+"_count"] = with()
	case dto.MetricType_SUMMARY:
		known[name] = with("quantile")
		known[name+"_sum"] = with()
		known[name+"_count"] = with()
	default:
		known[name] = with()
	}
}

// capture records the collectors registered through it.
type capture struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (c *capture) Register(col prometheus.Collector) error {
	c.collectors = append(c.collectors, col)
	return c.Registerer.Register(col)
}

// tokens is a client.Reader listing fixed OAuthClientTokens, in place of
// the manager's cache.
type tokens []v1alpha1.OAuthClientToken

func (tokens) Get(context.Context, types.NamespacedName, client.Object, ...client.GetOption) error {
	return errors.New("not implemented")
}

func (ts tokens) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	l, ok := list.(*v1alpha1.OAuthClientTokenList)
	if !ok {
		return fmt.Errorf("unexpected list %T", list)
	}
	l.Items = slices.Clone(ts)
	return nil
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// tokensyncFamilies gathers the metrics of metrics.New from a
// fresh registry: the per-object series of one OAuthClientToken that has a
// token, and one child of every metric vector (label values are empty:
// only the names matter here).
func tokensyncFamilies(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	now := time.Now()
	obj := v1alpha1.OAuthClientToken{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "tok"}}
	obj.Status.ExpiresAt = ptr.To(metav1.NewTime(now.Add(time.Hour)))
	obj.Status.RenewAt = ptr.To(metav1.NewTime(now.Add(40 * time.Minute)))
	apimeta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenReady,
	})

	reg := prometheus.NewRegistry()
	c := &capture{Registerer: reg}
	if err := metrics.New(tokens{obj}, 0).Register(c); err != nil {
		t.Fatal(err)
	}
	// Registered next to them by cmd/main.go.
	if err := metrics.NewAPIBytes().Register(c); err != nil {
		t.Fatal(err)
	}
	if err := shard.NewFilter(shard.Shard{}, nil, logr.Discard()).Register(c); err != nil {
		t.Fatal(err)
	}
	for _, col := range c.collectors {
		seed(t, col)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	// Every metric the collectors describe must have been gathered, so
	// that a new metric cannot escape the checks below.
	gathered := map[string]bool{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = true
	}
	ch := make(chan *prometheus.Desc, 100)
	for _, col := range c.collectors {
		col.Describe(ch)
	}
	close(ch)
	for d := range ch {
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		if !gathered[m[1]] {
			t.Errorf("metric %s is described but was not gathered: seed it in tokensyncFamilies", m[1])
		}
	}
	return mfs
}

// seed creates one child of a metric vector, finding its number of labels
// by trying (GetMetricWithLabelValues fails on the wrong cardinality).
func seed(t *testing.T, col prometheus.Collector) {
	t.Helper()
	try := func(get func(lvs ...string) error) {
		for n := 0; n <= 10; n++ {
			if get(make([]string, n)...) == nil {
				return
			}
		}
		t.Fatalf("could not create a child of %T", col)
	}
	switch v := col.(type) {
	case *prometheus.CounterVec:
		try(func(lvs ...string) error {
			m, err := v.GetMetricWithLabelValues(lvs...)
			if err == nil {
				m.Inc()
			}
			return err
		})
	case *prometheus.GaugeVec:
		try(func(lvs ...string) error {
			m, err := v.GetMetricWithLabelValues(lvs...)
			if err == nil {
				m.Set(1)
			}
			return err
		})
	case *prometheus.HistogramVec:
		try(func(lvs ...string) error {
			m, err := v.GetMetricWithLabelValues(lvs...)
			if err == nil {
				m.Observe(0.1)
			}
			return err
		})
	case *prometheus.SummaryVec:
		try(func(lvs ...string) error {
			m, err := v.GetMetricWithLabelValues(lvs...)
			if err == nil {
				m.Observe(0.1)
			}
			return err
		})
	}
}

var (
	crOnce     sync.Once
	crFamilies []*dto.MetricFamily
	crErr      error
)

// controllerRuntimeFamilies runs an (unmanaged) controller named like the
// manager's for one reconcile, and gathers controller-runtime's controller
// and workqueue metrics from its global registry.
func controllerRuntimeFamilies(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	crOnce.Do(func() { crFamilies, crErr = runController(controllerName(t)) })
	if crErr != nil {
		t.Fatal(crErr)
	}
	return crFamilies
}

func runController(name string) ([]*dto.MetricFamily, error) {
	done := make(chan struct{})
	var once sync.Once
	c, err := crcontroller.NewUnmanaged(name, crcontroller.Options{
		SkipNameValidation: ptr.To(true),
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			once.Do(func() { close(done) })
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		return nil, err
	}
	err = c.Watch(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "payments", Name: "tok"}})
		return nil
	}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Start(ctx) }()
	select {
	case <-done:
	case err := <-stopped:
		cancel()
		return nil, fmt.Errorf("controller stopped: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		return nil, errors.New("the controller did not reconcile within 20s")
	}
	// The reconcile metrics are updated after the reconciler returns.
	deadline := time.Now().Add(10 * time.Second)
	var mfs []*dto.MetricFamily
	for {
		mfs, err = ctrlmetrics.Registry.Gather()
		if err != nil {
			cancel()
			return nil, err
		}
		if hasFamily(mfs, "controller_runtime_reconcile_time_seconds") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-stopped; err != nil {
		return nil, err
	}
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "controller_runtime_") || strings.HasPrefix(mf.GetName(), "workqueue_") {
			out = append(out, mf)
		}
	}
	return out, nil
}

func hasFamily(mfs []*dto.MetricFamily, name string) bool {
	return slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == name })
}

var namedRE = regexp.MustCompile(`\bNamed\("([^"]+)"\)`)

// controllerName is the manager's controller name, from its setup code.
func controllerName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "internal", "controller", "token", "setup.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := namedRE.FindAllSubmatch(b, -1)
	if len(m) != 1 {
		t.Fatalf("expected one Named(...) in internal/controller/token/setup.go, found %d", len(m))
	}
	return string(m[0][1])
}

// check returns the problems of one PromQL expression: unknown metrics,
// label names a metric does not have, values an enumerated label never
// takes, and grouping labels missing from the metrics they group.
func check(expr string, known map[string]series, controller string) []error {
	a, err := analyze(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, s := range a.Selectors {
		k, ok := known[s.Metric]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown metric %s", s.Metric))
			continue
		}
		for _, m := range s.Matchers {
			if m.Name == "__name__" {
				continue
			}
			if !k.labels[m.Name] {
				errs = append(errs, fmt.Errorf("%s has no label %s", s.Metric, m.Name))
				continue
			}
			allowed := k.values[m.Name]
			if (m.Name == "controller" && strings.HasPrefix(k.family, "controller_runtime_")) ||
				(strings.HasPrefix(k.family, "workqueue_") && (m.Name == "controller" || m.Name == "name")) {
				allowed = []string{controller}
			}
			if err := checkValue(m, allowed); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Metric, err))
			}
		}
	}
	for _, g := range a.Groupings {
		if len(g.Metrics) == 0 {
			errs = append(errs, fmt.Errorf("%s (%s) applies to no metric", g.Clause, strings.Join(g.Labels, ", ")))
		}
		for _, l := range g.Labels {
			var have, lack []string
			for _, m := range g.Metrics {
				if k, ok := known[m]; ok && !k.labels[l] {
					lack = append(lack, m)
				} else {
					have = append(have, m)
				}
			}
			// by and on need the label on every metric they apply to; the
			// other clauses on at least one.
			if g.Clause == "by" || g.Clause == "on" {
				if len(lack) > 0 {
					errs = append(errs, fmt.Errorf("%s (%s): %s has no label %s", g.Clause, strings.Join(g.Labels, ", "), strings.Join(lack, ", "), l))
				}
			} else if len(have) == 0 {
				errs = append(errs, fmt.Errorf("%s (%s): none of %s has label %s", g.Clause, strings.Join(g.Labels, ", "), strings.Join(g.Metrics, ", "), l))
			}
		}
	}
	return errs
}

// checkValue checks the value of a matcher against the values a label can
// take: the value itself for = and !=, each alternative of a plain
// alternation (a|b) for =~ and !~. Grafana variables and real regular
// expressions are not checked.
func checkValue(m matcher, allowed []string) error {
	if len(allowed) == 0 || strings.Contains(m.Value, "$") {
		return nil
	}
	vals := []string{m.Value}
	if m.Op == "=~" || m.Op == "!~" {
		if strings.ContainsAny(m.Value, `.*+?()[]{}^\`) {
			return nil
		}
		vals = strings.Split(m.Value, "|")
	}
	for _, v := range vals {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("label %s is never %q (one of %s)", m.Name, v, strings.Join(allowed, ", "))
		}
	}
	return nil
}
