package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAPIBytesCountsByRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", len(r.URL.RawQuery)+10)))
	}))
	defer srv.Close()
	b := NewAPIBytes()
	c := &http.Client{Transport: b.Wrap(http.DefaultTransport)}
	for _, q := range []string{"?watch=true&resourceVersion=5", "?limit=500&resourceVersion=0", "", "?shardSelector=x"} {
		resp, err := c.Get(srv.URL + "/api/v1/secrets" + q)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	want := map[string]float64{"watch": 10 + 28, "list": 10 + 27 + 10 + 15, "other": 10}
	for k, v := range want {
		if got := testutil.ToFloat64(b.counter.WithLabelValues(k)); got != v {
			t.Errorf("%s bytes = %v, want %v", k, got, v)
		}
	}
}
