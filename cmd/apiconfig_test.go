package main

import (
	"context"
	"encoding/pem"
	"flag"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// acceptEncodings starts a server (TLS, as every API server, or plain
// http, where client-go uses http.DefaultTransport, which ignores
// DisableCompression) that answers every request with an empty SecretList
// and records the Accept-Encoding header of each.
func acceptEncodings(t *testing.T, useTLS bool) (*rest.Config, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[]}`))
	})
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	if !useTLS {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return &rest.Config{Host: srv.URL}, seen
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}, seen
}

func parseAPIFlags(t *testing.T, args ...string) apiConfigOptions {
	t.Helper()
	var o apiConfigOptions
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	bindAPIConfigFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

// By default the manager does not ask for gzip: the API server would
// otherwise compress the stream that starts each informer one flush at a
// time. A kubeconfig that disables compression keeps it disabled.
func TestAPIConfigAsksForNoCompressionByDefault(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		tls, disabled bool
		want          string
	}{
		{nil, true, false, "identity"},
		{nil, false, false, "identity"},
		{[]string{"--kube-api-compression=false"}, true, false, "identity"},
		{[]string{"--kube-api-compression"}, true, false, "gzip"},
		{[]string{"--kube-api-compression"}, false, false, "gzip"},
		// disable-compression: true in the kubeconfig wins.
		{[]string{"--kube-api-compression"}, true, true, "identity"},
	} {
		cfg, seen := acceptEncodings(t, tc.tls)
		cfg.DisableCompression = tc.disabled
		parseAPIFlags(t, tc.args...).configure(cfg)
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Secrets("ns").List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := seen(); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%v (TLS %v, kubeconfig disables compression %v): Accept-Encoding of the requests %q, want [%q]", tc.args, tc.tls, tc.disabled, got, tc.want)
		}
	}
}

func TestAPIConfigLimits(t *testing.T) {
	cfg := &rest.Config{}
	parseAPIFlags(t, "--kube-api-qps=7", "--kube-api-burst=9").configure(cfg)
	if cfg.QPS != 7 || cfg.Burst != 9 || cfg.UserAgent != "tokensync" {
		t.Errorf("QPS %v, burst %d, user agent %q; want 7, 9, tokensync", cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
	parseAPIFlags(t).configure(cfg)
	if cfg.QPS != 50 || cfg.Burst != 100 {
		t.Errorf("defaults: QPS %v, burst %d; want 50, 100", cfg.QPS, cfg.Burst)
	}
}
