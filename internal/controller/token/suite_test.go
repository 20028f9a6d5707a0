package token

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/index"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// The suite runs a real kube-apiserver and etcd (envtest) and a manager that
// only runs the caches and indexes: tests call Reconcile themselves with a
// fake clock, so that time-dependent behaviour is exact and fast.

var (
	testScheme = runtime.NewScheme()
	cfg        *rest.Config
	k8sClient  client.Client // direct client, for test setup and assertions
	mgrClient  client.Client // the manager's cached client, as the controller uses
	mgrAPI     client.Reader
	mgrCache   cache.Cache // the manager's cache, whose indexes memory_test.go inspects
	idx        *index.Index
	signer     *secrets.Signer
	saIssuer   *testutil.ServiceAccountIssuer
	tokenSrv   *tokenserver.Server
	tokenURL   string
	httpClient = oauth.NewHTTPClient()
	nsCounter  atomic.Int32
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which installs the envtest binaries")
		return 1
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(v1alpha1.AddToScheme(testScheme))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// A ServiceAccount issuer whose tokens the test token server verifies
	// against the API server's discovery document and keys.
	keys, err := os.MkdirTemp("", "tokensync-sa-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(keys) }()
	if saIssuer, err = testutil.ConfigureServiceAccountIssuer(env, keys); err != nil {
		fmt.Fprintln(os.Stderr, "configuring the ServiceAccount issuer:", err)
		return 1
	}
	cfg, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if err := testutil.AllowAnonymousIssuerDiscovery(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// A TLS token endpoint, trusted by the token client.
	tokenSrv = tokenserver.New(tokenserver.Options{ExpiresIn: 3600})
	ts := httptest.NewTLSServer(tokenSrv)
	defer ts.Close()
	tokenURL = ts.URL + "/token"
	httpClient = ts.Client()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  testScheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   CacheOptions(cache.Options{}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := IndexFields(context.Background(), mgr.GetFieldIndexer()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if idx, err = index.New(cfg, index.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mgr.Add(idx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if signer, err = secrets.NewSigner([]byte("a test signing key of 32 bytes..")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgrClient, mgrAPI, mgrCache = mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) || !idx.WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "cache did not sync")
		return 1
	}
	return m.Run()
}

// writeCounter counts the API writes a reconciler makes.
type writeCounter struct{ n atomic.Int32 }

// harness is one test's reconciler, namespace, fake clock and recorders.
type harness struct {
	t        *testing.T
	ctx      context.Context
	ns       string
	clock    *clocktesting.FakeClock
	r        *Reconciler
	writes   *writeCounter
	recorder *events.FakeRecorder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := ctrl.LoggerInto(context.Background(), ctrl.Log.WithName(t.Name()))
	ns := fmt.Sprintf("t%d", nsCounter.Add(1))
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, ctx: ctx, ns: ns,
		clock:    clocktesting.NewFakeClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)),
		writes:   &writeCounter{},
		recorder: events.NewFakeRecorder(100),
	}
	counted := &countingClient{Client: mgrClient, n: &h.writes.n}
	tokens := &oauth.Client{HTTPClient: httpClient, Now: h.clock.Now}
	h.r = newReconciler(counted, tokens, h.recorder, h.clock)
	return h
}

// newReconciler is a reconciler as cmd/main.go builds it, on the suite's
// caches and index, writing through c.
func newReconciler(c client.Client, tokens TokenSource, rec events.EventRecorder, clk *clocktesting.FakeClock) *Reconciler {
	r := NewReconciler(c, mgrAPI, idx, signer)
	r.Tokens, r.Recorder, r.Clock = tokens, rec, clk
	if oc, ok := tokens.(*oauth.Client); ok {
		r.Discovery = &oauth.Discovery{Client: oc}
	}
	return r
}

// countingClient counts every write made through it, status included.
type countingClient struct {
	client.Client
	n *atomic.Int32
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.n.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.n.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.n.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.n.Add(1)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.n.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), n: c.n}
}

type countingStatus struct {
	client.SubResourceWriter
	n *atomic.Int32
}

func (c *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Update(ctx, obj, opts...)
}

func (c *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
