package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/tokensync/tokensync/internal/shard"
)

// shardOptions are --shard-index and --shard-count.
type shardOptions struct {
	index string
	count int
}

func bindShardFlags(fs *flag.FlagSet, o *shardOptions) {
	fs.IntVar(&o.count, "shard-count", 1,
		"How many shards split the namespaces (by the 64-bit FNV-1a hash of the namespace name, as the API server's sharded list and watch does). "+
			"Each shard caches, watches and reconciles only its namespaces, and elects its own leader (one Lease per shard).")
	fs.StringVar(&o.index, "shard-index", "0",
		"This manager's shard, in [0, --shard-count); \"ordinal\" takes the number at the end of the host name (a StatefulSet pod's ordinal) modulo --shard-count, "+
			"so that pods k, k+n, k+2n... are replicas of shard k.")
}

// resolve returns the shard the flags describe; hostname is the host name
// (the pod name in a StatefulSet).
func (o shardOptions) resolve(hostname string) (shard.Shard, error) {
	idx := 0
	switch {
	case o.index == "ordinal":
		i := strings.LastIndexByte(hostname, '-')
		n, err := strconv.Atoi(hostname[i+1:])
		if i < 0 || err != nil || n < 0 {
			return shard.Shard{}, fmt.Errorf("--shard-index=ordinal: host name %q does not end in -<ordinal>", hostname)
		}
		if o.count < 1 {
			return shard.Shard{}, fmt.Errorf("--shard-count must be at least 1, got %d", o.count)
		}
		idx = n % o.count
	default:
		n, err := strconv.Atoi(o.index)
		if err != nil {
			return shard.Shard{}, fmt.Errorf("--shard-index %q: an integer or \"ordinal\"", o.index)
		}
		idx = n
	}
	s, err := shard.New(idx, o.count)
	if err != nil {
		return shard.Shard{}, fmt.Errorf("--shard-index, --shard-count: %w", err)
	}
	return s, nil
}

// leaderElectionID is the name of the shard's Lease: the unsharded name
// for one shard (so that upgrading a single manager keeps its Lease), one
// per shard index otherwise.
func leaderElectionID(s shard.Shard) string {
	if !s.Sharded() {
		return "tokensync-leader.oauth.tokensync.io"
	}
	return fmt.Sprintf("tokensync-leader-shard-%d.oauth.tokensync.io", s.Index)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// newShardFilter returns the informer filter of s; it asks the API server's
// discovery which kinds are namespaced.
func newShardFilter(cfg *rest.Config, s shard.Shard) (*shard.Filter, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the REST mapper: %w", err)
	}
	return shard.NewFilter(s, func(obj runtime.Object) (bool, error) {
		return apiutil.IsObjectNamespaced(obj, scheme, mapper)
	}, setupLog.WithName("shard")), nil
}

// probeShards tells the shard filter whether the API server applies the
// shard selector, before the informers start; a failed probe is logged
// and the informers' lists decide.
func probeShards(ctx context.Context, cfg *rest.Config, f *shard.Filter, namespaces []string) {
	if !f.Shard().Sharded() {
		return
	}
	ns := ""
	if len(namespaces) > 0 {
		ns = namespaces[0]
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err == nil {
		err = f.Probe(ctx, c, ns)
	}
	if err != nil {
		setupLog.Error(err, "the informers' lists will tell whether the API server applies the shard selector")
	}
}
