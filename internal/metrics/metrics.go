// Package metrics holds tokensync's Prometheus metrics. Per-object series
// are collected from the cache at scrape time, so they disappear with
// their object; request metrics are labelled by endpoint host, never by
// object, and the number of hosts they name is bounded (hosts come from
// tenants' specs).
package metrics

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/oauth"
)

// DefaultMaxHosts is how many distinct hosts the host label names by
// default; requests to any further host are counted as "other".
const DefaultMaxHosts = 100

// OtherHost is the host label of requests to hosts past the bound.
const OtherHost = "other"

// Metrics are tokensync's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	objects  *objectCollector

	maxHosts int
	mu       sync.Mutex
	hosts    map[string]bool
}

// New creates the metrics; reader lists OAuthClientTokens at scrape time
// (the manager's cached client). maxHosts bounds the host label (the first
// maxHosts hosts by first use keep their name, the rest are "other");
// DefaultMaxHosts when 0.
func New(reader client.Reader, maxHosts int) *Metrics {
	if maxHosts <= 0 {
		maxHosts = DefaultMaxHosts
	}
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensync_token_requests_total",
			Help: "Token requests sent, by result (success or failure) and condition reason of the failure.",
		}, []string{"result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokensync_token_request_duration_seconds",
			Help:    "Duration of token requests (including a refresh-token fallback), by token endpoint host (the first hosts by first use; the rest are \"other\").",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"host"}),
		objects:  &objectCollector{reader: reader},
		maxHosts: maxHosts,
		hosts:    map[string]bool{},
	}
}

// Register adds the metrics to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.objects} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// host is the label for a request to endpoint.
func (m *Metrics) host(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return OtherHost
	}
	h := oauth.HostKey(u) // one server spelled several ways is one host
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosts[h] {
		return h
	}
	if len(m.hosts) >= m.maxHosts {
		return OtherHost
	}
	m.hosts[h] = true
	return h
}

// ObserveRequest records one token request (with its fallback, if any).
// Requests the client's own limits held back are not requests.
func (m *Metrics) ObserveRequest(endpoint string, took time.Duration, err error) {
	if m == nil || failure.IsThrottled(err) {
		return
	}
	m.duration.WithLabelValues(m.host(endpoint)).Observe(took.Seconds())
	if err == nil {
		m.requests.WithLabelValues("success", "").Inc()
		return
	}
	reason, _, _ := failure.ReasonOf(err)
	m.requests.WithLabelValues("failure", reason).Inc()
}

var (
	expirationDesc = prometheus.NewDesc("tokensync_token_expiration_timestamp_seconds",
		"When the token in the target Secret expires (Unix seconds).", []string{"namespace", "name", "secret"}, nil)
	renewalDesc = prometheus.NewDesc("tokensync_token_renewal_timestamp_seconds",
		"When the controller will request the next token (Unix seconds).", []string{"namespace", "name", "secret"}, nil)
	readyDesc = prometheus.NewDesc("tokensync_ready_status",
		"The Ready condition of each OAuthClientToken: 1 for the current status (True, False or Unknown), 0 for the others.",
		[]string{"namespace", "name", "condition"}, nil)
)

// objectCollector reports per-object series from the cache at scrape time.
type objectCollector struct {
	reader client.Reader
}

func (c *objectCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expirationDesc
	ch <- renewalDesc
	ch <- readyDesc
}

func (c *objectCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var list v1alpha1.OAuthClientTokenList
	if err := c.reader.List(ctx, &list); err != nil {
		return
	}
	for i := range list.Items {
		o := &list.Items[i]
		st := o.Status
		if st.ExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(expirationDesc, prometheus.GaugeValue, float64(st.ExpiresAt.Unix()), o.Namespace, o.Name, o.TargetName())
		}
		if st.RenewAt != nil {
			ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, float64(st.RenewAt.Unix()), o.Namespace, o.Name, o.TargetName())
		}
		current := "Unknown"
		if cond := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); cond != nil {
			current = string(cond.Status)
		}
		for _, s := range []string{"True", "False", "Unknown"} {
			v := 0.0
			if s == current {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, o.Namespace, o.Name, s)
		}
	}
}
