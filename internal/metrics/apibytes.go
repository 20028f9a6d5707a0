package metrics

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// APIBytes counts the bytes of the API server's responses the manager
// reads, by kind of request: what a shard's lists and watches cost.
type APIBytes struct {
	counter *prometheus.CounterVec
}

// NewAPIBytes returns the counter tokensync_api_response_bytes_total.
func NewAPIBytes() *APIBytes {
	return &APIBytes{counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokensync_api_response_bytes_total",
		Help: "Bytes of API server response bodies read, by request: watch (watch=true), list (a GET with list parameters: limit, resourceVersion, a label, field or shard selector) or other.",
	}, []string{"request"})}
}

// Register registers the counter.
func (b *APIBytes) Register(reg prometheus.Registerer) error { return reg.Register(b.counter) }

// Wrap is a rest.Config WrapTransport.
func (b *APIBytes) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{rt: rt, b: b}
}

type roundTripper struct {
	rt http.RoundTripper
	b  *APIBytes
}

// requestKind classifies r as watch, list or other.
func requestKind(r *http.Request) string {
	if r.Method != http.MethodGet {
		return "other"
	}
	q := r.URL.Query()
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		return "watch"
	}
	for _, p := range []string{"limit", "resourceVersion", "labelSelector", "fieldSelector", "shardSelector", "continue"} {
		if q.Has(p) {
			return "list"
		}
	}
	return "other"
}

func (t roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, c: t.b.counter.WithLabelValues(requestKind(r))}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	c prometheus.Counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.c.Add(float64(n))
	}
	return n, err
}
