// Command manager runs the tokensync controller manager.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/controller/provider"
	"github.com/tokensync/tokensync/internal/controller/rollout"
	"github.com/tokensync/tokensync/internal/controller/token"
	"github.com/tokensync/tokensync/internal/index"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/metrics"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
	"github.com/tokensync/tokensync/internal/secrets"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

type options struct {
	metricsAddr          string
	secureMetrics        bool
	enableHTTP2          bool
	probeAddr            string
	pprofAddr            string
	leaderElect          bool
	leaderElectionNS     string
	leaseDuration        time.Duration
	renewDeadline        time.Duration
	retryPeriod          time.Duration
	allowInsecureHTTP    bool
	minRefreshInterval   time.Duration
	concurrentReconciles int
	api                  apiConfigOptions
	tokenURLAllowlist    string
	allowLinkLocal       bool
	maxRequestsPerHost   float64
	requestBurstPerHost  int
	watchNamespaces      []string
	signingKeySecret     string
	signingKeyNamespace  string
	minRolloutInterval   time.Duration
	maxMetricHosts       int
	maxPerNamespace      int
	requireProviderRef   bool
	inlineNamespaces     []string
	clusterProviderNS    string

	tokenClient tokenClientOptions
	shard       shardOptions
}

func main() {
	var o options
	fs := flag.CommandLine
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (https) or :8080 (http). \"0\" disables it.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over https with authentication and authorization (TokenReview/SubjectAccessReview). Use --metrics-secure=false for plain http.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server. Off by default because of the HTTP/2 stream cancellation and rapid reset CVEs.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to. \"0\" disables them.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address Go's /debug/pprof profiles are served on (plain http, no authentication: bind it to localhost, e.g. 127.0.0.1:6060). \"0\" disables them.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Enable leader election, so that only one of several replicas reconciles at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader election Lease. Defaults to the manager's own namespace when it runs in a cluster.")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second, "How long a non-leader waits before it may take over an unrenewed lease.")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "How long the leader keeps retrying to renew its lease before giving up leadership.")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "How often leader election clients retry.")
	fs.BoolVar(&o.allowInsecureHTTP, "allow-insecure-http", false,
		"Allow token URLs with plain http. Credentials then cross the network in clear text: for local testing only.")
	fs.StringVar(&o.tokenURLAllowlist, "token-url-allowlist", "",
		"Comma-separated host patterns token and issuer URLs must match: exact hosts (auth.example.com), subdomain wildcards (*.example.com) or CIDR prefixes for IP hosts (10.0.0.0/8). Empty allows any host.")
	fs.BoolVar(&o.allowLinkLocal, "allow-link-local-token-urls", false,
		"Allow token URLs that name or resolve to link-local or cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254). Refused by default.")
	fs.Float64Var(&o.maxRequestsPerHost, "max-token-requests-per-host", 50,
		"Most token and discovery requests per second sent to one host, however many objects need a token. 0 means no limit.")
	fs.IntVar(&o.requestBurstPerHost, "token-request-burst-per-host", 100,
		"Requests to one host that may be sent at once before --max-token-requests-per-host applies.")
	fs.StringVar(&o.signingKeySecret, "signing-key-secret", "tokensync-signing-key",
		"Secret holding the key that signs the records tokensync writes on target Secrets; created when missing. Replicas and shards share it.")
	fs.StringVar(&o.signingKeyNamespace, "signing-key-namespace", "",
		"Namespace of --signing-key-secret. Defaults to --leader-election-namespace, else the manager's own namespace in a cluster, else default.")
	fs.DurationVar(&o.minRolloutInterval, "min-rollout-restart-interval", rollout.DefaultMinInterval,
		"Shortest time between two restarts of one rolloutRestartTargets workload, however often the tokens it reads rotate (kept on the workload in the oauth.tokensync.io/last-restart annotation).")
	fs.IntVar(&o.maxPerNamespace, "max-requests-per-namespace", 0,
		"Most token requests of one namespace under way at once, so that a namespace whose endpoint never answers holds only that many workers. 0 means half of --concurrent-reconciles (at least 1); a negative value means no limit.")
	fs.IntVar(&o.maxMetricHosts, "max-metric-hosts", metrics.DefaultMaxHosts,
		"How many token endpoint hosts the host label of the request metrics names (first used first); requests to others are counted as \"other\".")
	fs.DurationVar(&o.minRefreshInterval, "min-refresh-interval", token.DefaultMinRefreshInterval,
		"Shortest time between two token requests for one OAuthClientToken, whatever the token lifetime.")
	fs.IntVar(&o.concurrentReconciles, "concurrent-reconciles", 4, "How many OAuthClientTokens are reconciled in parallel.")
	bindAPIConfigFlags(fs, &o.api)
	bindTokenClientFlags(fs, &o.tokenClient)
	bindWatchNamespacesFlag(fs, &o.watchNamespaces)
	fs.BoolVar(&o.requireProviderRef, "require-provider-ref", false,
		"Refuse OAuthClientTokens with an inline spec.provider (reason InlineProviderRefused), except in --inline-provider-namespaces: "+
			"tenants can then only use the OAuthProviders and ClusterOAuthProviders their platform team defined, and cannot aim the manager at an endpoint of their choice.")
	fs.Var(namespacesFlag{names: &o.inlineNamespaces}, "inline-provider-namespaces",
		"Comma-separated namespaces where inline spec.provider stays allowed with --require-provider-ref.")
	fs.StringVar(&o.clusterProviderNS, "cluster-provider-namespace", "",
		"Namespace of the credentials Secrets (and TLS material) of ClusterOAuthProviders; only the platform team should be able to write it. "+
			"Defaults to $POD_NAMESPACE, else the manager's own namespace in a cluster, else default.")
	bindShardFlags(fs, &o.shard)
	zapOpts := zap.Options{Development: false}
	bindLogFlags(fs, &zapOpts)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\ntokensync keeps OAuth 2.0 client-credentials tokens fresh in Kubernetes Secrets.\n\nFlags:\n", os.Args[0])
		fs.PrintDefaults()
	}
	flag.Parse()
	// Capped: no --zap-log-level makes client-go print request headers
	// or bodies (Secrets), through the global logger or a reconcile's
	// context logger.
	log := newLogger(&zapOpts)
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		setupLog.Error(err, "manager exited with an error")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg := ctrl.GetConfigOrDie()
	o.api.configure(cfg)
	apiBytes := metrics.NewAPIBytes()
	cfg.Wrap(apiBytes.Wrap)

	sh, err := o.shard.resolve(hostname())
	if err != nil {
		return err
	}
	shards, err := newShardFilter(cfg, sh)
	if err != nil {
		return err
	}
	namespaces := o.watchNamespaces
	cacheOpts := cache.Options{DefaultNamespaces: defaultNamespaces(namespaces), NewInformer: shards.NewInformer}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		PprofBindAddress:              o.pprofAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              leaderElectionID(sh),
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.leaseDuration,
		RenewDeadline:                 &o.renewDeadline,
		RetryPeriod:                   &o.retryPeriod,
		Cache:                         token.CacheOptions(cacheOpts),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	allowlist, err := oauth.ParseHostAllowlist(o.tokenURLAllowlist)
	if err != nil {
		return fmt.Errorf("--token-url-allowlist: %w", err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating the API client: %w", err)
	}
	keyRef := types.NamespacedName{Namespace: signingKeyNamespace(o), Name: o.signingKeySecret}
	signer, err := secrets.LoadSigningKey(ctx, direct, keyRef)
	if err != nil {
		return err
	}
	x, err := index.New(cfg, index.Options{Namespaces: namespaces, ListWatch: shards.ListWatch})
	if err != nil {
		return err
	}
	if err := mgr.Add(x); err != nil {
		return err
	}
	if err := token.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	tokens := &oauth.Client{
		Limiter: &oauth.HostLimiter{Rate: rate.Limit(o.maxRequestsPerHost), Burst: o.requestBurstPerHost},
	}
	httpOpts := oauth.HTTPOptions{AllowLinkLocal: o.allowLinkLocal}
	o.tokenClient.apply(tokens, &httpOpts)
	tokens.HTTPClient = oauth.NewHTTPClientWithOptions(httpOpts)
	recorder := mgr.GetEventRecorder("tokensync")
	r := token.NewReconciler(mgr.GetClient(), mgr.GetAPIReader(), x, signer)
	r.Tokens = tokens
	r.Discovery = &oauth.Discovery{Client: tokens}
	r.URLs = inputs.URLPolicy{AllowInsecureHTTP: o.allowInsecureHTTP, Allowlist: allowlist, AllowLinkLocal: o.allowLinkLocal, DenyPrivateNetworks: o.tokenClient.denyPrivateNetworks}
	r.Recorder = recorder
	r.Clock = clock.RealClock{}
	r.MinRefreshInterval = o.minRefreshInterval
	r.Jitter = true
	r.Metrics = metrics.New(mgr.GetClient(), o.maxMetricHosts)
	r.MaxRequestsPerNamespace = perNamespace(o)
	policy := providers.Policy{
		RequireProviderRef: o.requireProviderRef,
		InlineNamespaces:   o.inlineNamespaces,
		ClusterNamespace:   clusterProviderNamespace(o),
		// A manager confined to some namespaces has no cluster-wide
		// permissions to read ClusterOAuthProviders.
		NoClusterProviders: len(namespaces) > 0,
	}
	r.Providers = &providers.Resolver{Client: mgr.GetClient(), API: mgr.GetAPIReader(), Policy: policy}
	if err := r.Metrics.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := apiBytes.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := shards.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := r.SetupWithManager(ctx, mgr, x, controllerOptions(o)); err != nil {
		return fmt.Errorf("setting up the token controller: %w", err)
	}
	checks := &provider.Reconciler{
		Client: mgr.GetClient(), API: mgr.GetAPIReader(), URLs: r.URLs, Discovery: r.Discovery,
		ClusterNamespace: policy.ClusterNamespace, NoClusterProviders: policy.NoClusterProviders,
	}
	if err := checks.SetupWithManager(mgr, x, token.QueueOptions(crcontroller.Options{MaxConcurrentReconciles: 1})); err != nil {
		return fmt.Errorf("setting up the provider controller: %w", err)
	}
	restarts := &rollout.Reconciler{Client: mgr.GetClient(), API: mgr.GetAPIReader(), Recorder: recorder, Clock: clock.RealClock{}, MinInterval: o.minRolloutInterval}
	if err := restarts.SetupWithManager(mgr, token.QueueOptions(crcontroller.Options{MaxConcurrentReconciles: 1})); err != nil {
		return fmt.Errorf("setting up the rollout-restart controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if o.allowInsecureHTTP {
		setupLog.Info("plain http token URLs are allowed (--allow-insecure-http): for local testing only")
	}
	if o.requireProviderRef {
		setupLog.Info("inline providers are refused (--require-provider-ref)", "exceptIn", o.inlineNamespaces)
	}
	if len(o.watchNamespaces) > 0 {
		setupLog.Info("watching only some namespaces (--watch-namespaces)", "namespaces", o.watchNamespaces)
	}
	probeShards(ctx, cfg, shards, namespaces)
	if sh.Sharded() {
		setupLog.Info("running one shard of the namespaces (--shard-index, --shard-count)", "shard", sh.String(), "selector", sh.Selector(), "lease", leaderElectionID(sh))
	}
	gc, from := startGC(ctx, os.Getenv, gcTuneInterval, setupLog)
	if from == "default" {
		setupLog.Info("starting manager", "gcPercent", gc, "gcPercentAtRest", restGCPercent, "gcPercentFrom", from)
	} else {
		setupLog.Info("starting manager", "gcPercent", gc, "gcPercentFrom", from)
	}
	return mgr.Start(ctx)
}

// signingKeyNamespace is where the signing key Secret lives.
func signingKeyNamespace(o options) string {
	switch {
	case o.signingKeyNamespace != "":
		return o.signingKeyNamespace
	case o.leaderElectionNS != "":
		return o.leaderElectionNS
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// clusterProviderNamespace is where ClusterOAuthProviders' credentials live.
func clusterProviderNamespace(o options) string {
	if o.clusterProviderNS != "" {
		return o.clusterProviderNS
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// perNamespace is --max-requests-per-namespace, resolved.
func perNamespace(o options) int {
	switch {
	case o.maxPerNamespace < 0:
		return 0
	case o.maxPerNamespace > 0:
		return o.maxPerNamespace
	}
	return max(1, o.concurrentReconciles/2)
}

func controllerOptions(o options) crcontroller.Options {
	// Per-object backoff only (token.QueueOptions).
	return token.QueueOptions(crcontroller.Options{MaxConcurrentReconciles: o.concurrentReconciles})
}
