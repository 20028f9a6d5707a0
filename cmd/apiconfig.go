package main

import (
	"flag"

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
		"Ask the API server for gzip-compressed responses. Off by default: the API server then compresses each event of a watch separately, "+
			"which costs it and the manager CPU for every Secret and OAuthClientToken written, to save bytes on what is usually an in-cluster network.")
}

// configure sets the client-side limits, the user agent and compression of
// cfg, the configuration every client of the manager is made from.
func (o apiConfigOptions) configure(cfg *rest.Config) {
	cfg.QPS = float32(o.qps)
	cfg.Burst = o.burst
	cfg.UserAgent = "tokensync"
	// Without it, Go's transport sends Accept-Encoding: gzip, and the API
	// server gzips the whole of every watch its informers open (each one a
	// watch-list stream), one gzip member per event.
	cfg.DisableCompression = !o.compression
}
