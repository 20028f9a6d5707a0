package main

import (
	"flag"
	"net/http"

	"k8s.io/client-go/rest"
)

// apiConfigOptions are the flags of the manager's connection to the API
// server.
type apiConfigOptions struct {
	qps         float64
	burst       int
	compression bool
}

func bindAPIConfigFlags(fs *flag.FlagSet, o *apiConfigOptions) {
	fs.Float64Var(&o.qps, "kube-api-qps", 50, "Queries per second to the Kubernetes API server.")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API server.")
	fs.BoolVar(&o.compression, "kube-api-compression", false,
		"Ask the API server for gzip-compressed responses. Off by default, as kube-controller-manager and kube-scheduler have it: "+
			"compression trades the API server's and the manager's CPU for network bytes, and when it is on the API server gzips "+
			"the stream that starts each informer (until its first watch ends, 5 to 10 minutes after each list) one flush at a time. "+
			"A kubeconfig's disable-compression: true wins over it.")
}

// configure sets the client-side limits, the user agent and compression of
// cfg, the configuration every client of the manager is made from.
func (o apiConfigOptions) configure(cfg *rest.Config) {
	cfg.QPS = float32(o.qps)
	cfg.Burst = o.burst
	cfg.UserAgent = "tokensync"
	if cfg.DisableCompression || !o.compression {
		// DisableCompression stops Go's transport from sending
		// Accept-Encoding: gzip, where client-go builds a transport of
		// its own; for a config without TLS options it uses
		// http.DefaultTransport, which still would: identity says it
		// on every transport.
		cfg.DisableCompression = true
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return identityEncoding{rt} })
	}
}

// identityEncoding asks for uncompressed responses unless the request
// says otherwise.
type identityEncoding struct{ next http.RoundTripper }

func (t identityEncoding) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Accept-Encoding") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Accept-Encoding", "identity")
	}
	return t.next.RoundTrip(req)
}
