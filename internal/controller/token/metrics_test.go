package token

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/metrics"
)

// seriesOf returns the value of each series of a metric family for the
// harness's namespace, keyed by its labels (name=value,...).
func seriesOf(t *testing.T, reg *prometheus.Registry, family, ns string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			inNS := ns == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" {
					inNS = l.GetValue() == ns
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if inNS {
				out[strings.Join(labels, ",")] = value(m)
			}
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.r.Metrics = metrics.New(mgrClient, 0)
	reg := prometheus.NewRegistry()
	if err := h.r.Metrics.Register(reg); err != nil {
		t.Fatal(err)
	}
	h.createCreds("creds", "metrics-client", "metrics-secret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	o := h.get("tok")
	h.syncCache(o)

	if got := seriesOf(t, reg, "tokensync_token_expiration_timestamp_seconds", h.ns)["name=tok,secret=tok"]; got != float64(o.Status.ExpiresAt.Unix()) {
		t.Fatalf("expiration %v, want %d", got, o.Status.ExpiresAt.Unix())
	}
	if got := seriesOf(t, reg, "tokensync_token_renewal_timestamp_seconds", h.ns)["name=tok,secret=tok"]; got != float64(o.Status.RenewAt.Unix()) {
		t.Fatalf("renewal %v, want %d", got, o.Status.RenewAt.Unix())
	}
	ready := seriesOf(t, reg, "tokensync_ready_status", h.ns)
	if ready["condition=True,name=tok"] != 1 || ready["condition=False,name=tok"] != 0 || ready["condition=Unknown,name=tok"] != 0 {
		t.Fatalf("ready %v", ready)
	}
	if got := seriesOf(t, reg, "tokensync_token_requests_total", "")["reason=,result=success"]; got != 1 {
		t.Fatalf("successful requests %v", got)
	}

	// A failure is counted with its reason; Ready flips once the token has
	// expired.
	h.clock.Step(61 * time.Minute)
	tokenSrv.FailNext(1, http.StatusServiceUnavailable, "", nil)
	h.reconcile("tok")
	if got := seriesOf(t, reg, "tokensync_token_requests_total", "")["reason="+v1alpha1.ReasonTokenEndpointUnavailable+",result=failure"]; got != 1 {
		t.Fatalf("failed requests %v", got)
	}
	h.syncCache(h.get("tok"))
	if ready := seriesOf(t, reg, "tokensync_ready_status", h.ns); ready["condition=False,name=tok"] != 1 {
		t.Fatalf("ready %v", ready)
	}
	if n := seriesOf(t, reg, "tokensync_token_request_duration_seconds", "")["host="+strings.TrimPrefix(strings.TrimSuffix(tokenURL, "/token"), "https://")]; n < 2 {
		t.Fatalf("duration samples %v", n)
	}

	// Nothing secret in any series.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, it := range h.issued("metrics-client") {
		if strings.Contains(text.String(), it.AccessToken) {
			t.Fatal("a token is in the metrics")
		}
	}

	// Deleting the object removes its series.
	if err := k8sClient.Delete(h.ctx, h.get("tok")); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(h.ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		err := mgrClient.Get(ctx, keyIn(h.ns, "tok"), &v1alpha1.OAuthClientToken{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := seriesOf(t, reg, "tokensync_ready_status", h.ns); len(s) != 0 {
		t.Fatalf("series left after deletion: %v", s)
	}
}
