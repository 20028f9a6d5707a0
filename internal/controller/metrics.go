package controller

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// Metrics are tokensync's Prometheus metrics. Per-object series are
// collected from the cache at scrape time, so they disappear with their
// object; request metrics are labelled by endpoint host, never by object.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	objects  *objectCollector
}

// NewMetrics creates the metrics; reader lists OAuthClientTokens at scrape
// time (the manager's cached client).
func NewMetrics(reader client.Reader) *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensync_token_requests_total",
			Help: "Token requests sent, by result (success or failure) and condition reason of the failure.",
		}, []string{"result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokensync_token_request_duration_seconds",
			Help:    "Duration of token requests (including a refresh-token fallback), by token endpoint host.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"host"}),
		objects: &objectCollector{reader: reader},
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

// observeRequest records one token request (with its fallback, if any).
func (m *Metrics) observeRequest(endpoint string, took time.Duration, err error) {
	if m == nil {
		return
	}
	host := ""
	if u, perr := url.Parse(endpoint); perr == nil {
		host = u.Host
	}
	m.duration.WithLabelValues(host).Observe(took.Seconds())
	if err == nil {
		m.requests.WithLabelValues("success", "").Inc()
		return
	}
	reason, _ := reasonOf(err)
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
