package token

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/index"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// These tests run the whole controller (SetupWithManager: caches, Secret
// index, watches, queue) in a manager of its own, as cmd/main.go does, for
// one namespace, and count what it does per object: reconciles, API reads
// and writes, token requests. They are what the benchmark (test/bench)
// measures at scale, made exact.

// controllerRun is one manager running the controller.
type controllerRun struct {
	t          *testing.T
	ns         string
	r          *Reconciler
	x          *index.Index
	reconciles atomic.Int32 // reconciles: each one's first read of its OAuthClientToken
	writes     atomic.Int32
	reads      *countingReader // API server reads (the reconciler's APIReader)
	stop       func()
}

// observedClient counts writes (countingClient) and reconciles: each
// reconcile starts with a Get of its OAuthClientToken, made with the
// reconcile's ID in its context.
type observedClient struct {
	*countingClient
	gets *atomic.Int32
	seen sync.Map // reconcile IDs counted
}

func (c *observedClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*v1alpha1.OAuthClientToken); ok {
		// A reconcile reads its object first; event handlers (which find
		// the objects of a Secret by name, secrets.Claimants) and later
		// reads of the same reconcile are not reconciles.
		if id := crcontroller.ReconcileIDFromContext(ctx); id != "" {
			if _, seen := c.seen.LoadOrStore(id, true); !seen {
				c.gets.Add(1)
			}
		}
	}
	return c.countingClient.Get(ctx, key, obj, opts...)
}

// countingReader counts the API server reads made through it, by name.
type countingReader struct {
	client.Reader
	n      atomic.Int32
	mu     sync.Mutex
	byName map[string]int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.n.Add(1)
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]int{}
	}
	c.byName[key.Name]++
	c.mu.Unlock()
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *countingReader) of(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byName[name]
}

func startController(t *testing.T, ns string) *controllerRun {
	return startControllerWith(t, []string{ns}, nil)
}

// startControllerWith runs the controller for namespaces, with tune
// adjusting the reconciler and its options before it starts.
func startControllerWith(t *testing.T, namespaces []string, tune func(*Reconciler, *crcontroller.Options)) *controllerRun {
	t.Helper()
	ns := namespaces[0]
	defaults := map[string]cache.Config{}
	for _, n := range namespaces {
		defaults[n] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  testScheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   CacheOptions(cache.Options{DefaultNamespaces: defaults}),
	})
	if err != nil {
		t.Fatal(err)
	}
	x, err := index.New(cfg, index.Options{Namespaces: namespaces})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(x); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), ctrl.Log.WithName(t.Name())))
	if err := IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		cancel()
		t.Fatal(err)
	}
	run := &controllerRun{t: t, ns: ns, x: x, reads: &countingReader{Reader: mgr.GetAPIReader()}}
	c := &observedClient{countingClient: &countingClient{Client: mgr.GetClient(), n: &run.writes}, gets: &run.reconciles}
	run.r = NewReconciler(c, run.reads, x, signer)
	run.r.Clock = clock.RealClock{}
	run.r.Tokens = &oauth.Client{HTTPClient: httpClient}
	run.r.Jitter = true
	// Each test runs its own manager: the controller name repeats.
	opts := QueueOptions(crcontroller.Options{SkipNameValidation: ptr.To(true)}) // as cmd/main.go
	if tune != nil {
		tune(run.r, &opts)
	}
	if err := run.r.SetupWithManager(ctx, mgr, x, opts); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	run.stop = func() { cancel(); <-done }
	t.Cleanup(run.stop)
	if !x.WaitForCacheSync(ctx) {
		t.Fatal("the index did not sync")
	}
	return run
}

// quiesce waits until every Secret event sent so far has been handled (a
// Secret created now has reached the index, whose watch is ordered) and the
// reconciles it queued are done (no reconcile for a while).
func (c *controllerRun) quiesce() {
	c.t.Helper()
	name := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns}}
	ctx := context.Background()
	if err := k8sClient.Create(ctx, s); err != nil {
		c.t.Fatal(err)
	}
	c.poll("the barrier Secret to reach the index", func() bool {
		_, exists := c.x.Secret(client.ObjectKeyFromObject(s))
		return exists
	})
	last, since := c.reconciles.Load(), time.Now()
	c.poll("the reconciles to settle", func() bool {
		if n := c.reconciles.Load(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > time.Second
	})
}

// after makes change, waits for the reconcile it causes, then quiesces.
func (c *controllerRun) after(what string, change func()) {
	c.t.Helper()
	before := c.reconciles.Load()
	change()
	c.poll(what, func() bool { return c.reconciles.Load() > before })
	c.quiesce()
}

// waitReady waits until get's object is Ready, then quiesces.
func (c *controllerRun) waitReady(get func() *v1alpha1.OAuthClientToken) {
	c.t.Helper()
	c.poll("the token to be Ready", func() bool {
		return apimeta.IsStatusConditionTrue(get().Status.Conditions, v1alpha1.ConditionReady)
	})
	c.quiesce()
}

// refresh requests a refresh of get's object with value, waits until it
// was handled, then quiesces.
func (c *controllerRun) refresh(get func() *v1alpha1.OAuthClientToken, value string) {
	c.t.Helper()
	patchAnnotation(c.t, get(), v1alpha1.RefreshRequestedAnnotation, value)
	c.poll("the requested refresh", func() bool { return get().Status.LastHandledRefreshRequest == value })
	c.quiesce()
}

func (c *controllerRun) poll(what string, cond func() bool) {
	c.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		c.t.Fatalf("timed out waiting for %s", what)
	}
}

// counts are the controller's work.
type counts struct{ reconciles, writes, reads, tokens int }

// counter returns a function that returns the work done since its last
// call (or since counter was called).
func (c *controllerRun) counter(srv *tokenserver.Server, clientID string) func() counts {
	return c.counterFrom(srv, clientID, nil)
}

// counterFrom is counter, counting its first call's work from base when
// base is set.
func (c *controllerRun) counterFrom(srv *tokenserver.Server, clientID string, base *counts) func() counts {
	total := func() counts {
		return counts{
			reconciles: int(c.reconciles.Load()),
			writes:     int(c.writes.Load()),
			reads:      int(c.reads.n.Load()),
			tokens:     len(issuedTo(srv, clientID)),
		}
	}
	prev := total()
	if base != nil {
		prev = *base
	}
	return func() counts {
		now := total()
		d := counts{now.reconciles - prev.reconciles, now.writes - prev.writes, now.reads - prev.reads, now.tokens - prev.tokens}
		prev = now
		return d
	}
}

func issuedTo(srv *tokenserver.Server, clientID string) []string {
	var out []string
	for _, it := range srv.Issued() {
		if it.ClientID == clientID {
			out = append(out, it.AccessToken)
		}
	}
	return out
}

func wantCounts(t *testing.T, what string, got, want counts) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
}

// TestControllerDoesTheLeastWorkPerToken checks what the benchmark measures,
// per object: one reconcile, one token request, two writes (Secret, status)
// and one API read (the credentials, which are never cached) per token
// issued; no reconcile for an annotation it does not read, and no token,
// write or read after a restart (a reconcile with nothing to do). The
// Secret watch drops the events of the controller's own writes (else every
// write queues a second reconcile); Secrets the index does not know are not asked for (the
// target before the first write, the state Secret of an endpoint that
// issues no refresh token); and the credentials are not read while the
// index shows them unchanged since the token was issued.
func TestControllerDoesTheLeastWorkPerToken(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "least-work", "s3cret")
	run := startController(t, h.ns)
	delta := run.counter(tokenSrv, "least-work")
	get := func() *v1alpha1.OAuthClientToken { return h.get("tok") }
	// restart stops the controller and starts it again: its reconcile of
	// the object is one with nothing to do. (An annotation tokensync does
	// not read, changed, queues no reconcile at all: below.)
	restart := func() {
		t.Helper()
		run.stop()
		tokensBefore := len(issuedTo(tokenSrv, "least-work"))
		run = startController(t, h.ns)
		// From zero: the fresh run may reconcile before the counter is made.
		delta = run.counterFrom(tokenSrv, "least-work", &counts{tokens: tokensBefore})
		run.poll("the restarted controller to reconcile", func() bool { return run.reconciles.Load() > 0 })
		run.quiesce()
	}

	// Creation: one token.
	h.createToken("tok", "creds", nil)
	run.waitReady(get)
	wantCounts(t, "first token", delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})

	// A refresh (requested, so that it happens now): the same.
	run.refresh(get, "one")
	wantCounts(t, "refresh", delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})

	// An annotation tokensync does not read (Helm's, Argo CD's, a
	// tenant's), changed: the cache does not keep it, so no reconcile.
	patchAnnotation(t, get(), "example.com/touched", "yes")
	run.quiesce()
	wantCounts(t, "an annotation tokensync does not read, changed", delta(), counts{})

	// A restart with a valid token: reconciled once, nothing requested or
	// written.
	restart()
	wantCounts(t, "restart", delta(), counts{reconciles: 1, writes: 0, reads: 0, tokens: 0})

	// The credentials Secret is edited without a change to the
	// credentials: they are read, no token is due and nothing is written.
	// The next token records the new version; until then they are read.
	creds := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "creds"}, creds); err != nil {
		t.Fatal(err)
	}
	creds.Labels = map[string]string{"team": "shop"}
	run.after("the edited credentials to be reconciled", func() {
		if err := k8sClient.Update(h.ctx, creds); err != nil {
			t.Fatal(err)
		}
	})
	wantCounts(t, "credentials Secret edited, same credentials", delta(), counts{reconciles: 1, writes: 0, reads: 1, tokens: 0})
	restart()
	wantCounts(t, "reconcile with nothing to do after that edit", delta(), counts{reconciles: 1, writes: 0, reads: 1, tokens: 0})
	run.refresh(get, "two")
	wantCounts(t, "refresh", delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})
	restart()
	wantCounts(t, "reconcile with nothing to do after the refresh", delta(), counts{reconciles: 1, writes: 0, reads: 0, tokens: 0})

	// Rotated credentials: read at once, and a new token with them.
	tokenSrv.SetClientSecret("least-work", "rotated")
	if err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "creds"}, creds); err != nil {
		t.Fatal(err)
	}
	creds.Data["client_secret"] = []byte("rotated")
	issued := issuedTo(tokenSrv, "least-work")
	if err := k8sClient.Update(h.ctx, creds); err != nil {
		t.Fatal(err)
	}
	run.poll("a token with the rotated credentials", func() bool {
		now := issuedTo(tokenSrv, "least-work")
		return len(now) > len(issued) && string(h.secret("tok").Data[v1alpha1.AccessTokenKey]) == now[len(now)-1]
	})
	run.quiesce()
	wantCounts(t, "rotated credentials", delta(), counts{reconciles: 1, writes: 2, reads: 1, tokens: 1})

	// The record on the Secret is edited (here: its inputs version, to
	// claim inputs the token was not obtained with): its signature no
	// longer holds, so the token is not trusted and a new one is written.
	issued = issuedTo(tokenSrv, "least-work")
	forged := []byte(`{"metadata":{"annotations":{"` + v1alpha1.InputsVersionAnnotation + `":"0000"}}}`)
	if err := k8sClient.Patch(h.ctx, h.secret("tok"), client.RawPatch(types.MergePatchType, forged)); err != nil {
		t.Fatal(err)
	}
	run.poll("a new token after the record was edited", func() bool {
		now := issuedTo(tokenSrv, "least-work")
		return len(now) > len(issued) && string(h.secret("tok").Data[v1alpha1.AccessTokenKey]) == now[len(now)-1]
	})
	run.quiesce()
	if d := delta(); d.tokens != 1 || d.writes != 2 {
		t.Fatalf("an edited record: %+v, want one token and two writes", d)
	}

	// Edits by others are not dropped: an edited key is repaired with no
	// token request, a deleted Secret is written again with a new token.
	s := h.secret("tok")
	s.Data[v1alpha1.TokenTypeKey] = []byte("Edited")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	run.poll("the edited Secret to be repaired", func() bool {
		return string(h.secret("tok").Data[v1alpha1.TokenTypeKey]) == "Bearer"
	})
	run.quiesce()
	if d := delta(); d.tokens != 0 || d.writes != 1 {
		t.Fatalf("repairing an edited key: %+v, want no token and one write", d)
	}
	issued = issuedTo(tokenSrv, "least-work")
	if err := k8sClient.Delete(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	run.poll("the deleted Secret to be written again", func() bool {
		s := &corev1.Secret{}
		err := k8sClient.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: "tok"}, s)
		if apierrors.IsNotFound(err) {
			return false
		}
		now := issuedTo(tokenSrv, "least-work")
		return err == nil && len(now) > len(issued) && string(s.Data[v1alpha1.AccessTokenKey]) == now[len(now)-1]
	})
	run.quiesce()
	if d := delta(); d.tokens != 1 {
		t.Fatalf("rewriting a deleted Secret: %+v, want one token", d)
	}
}

// TestControllerReadsTheStateSecretOnlyWhenItExists checks that with an
// endpoint that issues refresh tokens the state Secret is written, read on
// the next refresh, and that its own write does not queue a reconcile.
func TestControllerReadsTheStateSecretOnlyWhenItExists(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "rt-secret"}, ExpiresIn: 3600, IssueRefreshTokens: true, Now: time.Now})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("rt-secret")})
	run := startController(t, h.ns)
	delta := run.counter(srv, "rt")
	get := func() *v1alpha1.OAuthClientToken { return h.get("tok") }

	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: ptr.To(true)}
	})
	run.waitReady(get)
	// No state Secret yet: not read; then written (one more write). Neither
	// write queues a reconcile.
	wantCounts(t, "first token", delta(), counts{reconciles: 1, writes: 3, reads: 1, tokens: 1})
	h.secret(secrets.StateName("tok"))

	run.refresh(get, "one")
	// The state Secret is read, and its refresh token used.
	wantCounts(t, "refresh", delta(), counts{reconciles: 1, writes: 3, reads: 2, tokens: 1})
	if g := lastIssued(t, srv).GrantType; g != "refresh_token" {
		t.Fatalf("the refresh used %q, want refresh_token", g)
	}
}

func patchAnnotation(t *testing.T, o *v1alpha1.OAuthClientToken, key, value string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := k8sClient.Patch(context.Background(), o, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// TestRenewalIsJittered checks that the reconciler subtracts a jitter
// from the renewal time, so that tokens issued together renew apart, and
// that it is the same each time it is computed.
func TestRenewalIsJittered(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "jitter", "s3cret")
	h.r.Jitter = true
	renewals := map[time.Duration]bool{}
	for i := range 5 {
		name := fmt.Sprintf("tok%d", i)
		h.createToken(name, "creds", nil)
		h.reconcile(name)
		o := h.get(name)
		// A 1h token renews after 2/3 of its lifetime (40m), less a
		// jitter of at most 5% of that, capped at 2m.
		got := o.Status.RenewAt.Sub(o.Status.IssuedAt.Time)
		if got > 40*time.Minute || got < 38*time.Minute {
			t.Fatalf("renewal %v after issue, want within [38m, 40m]", got)
		}
		renewals[got] = true
		h.reconcile(name)
		if again := h.get(name).Status.RenewAt; !again.Equal(o.Status.RenewAt) {
			t.Fatalf("the renewal time moved from %s to %s on a reconcile with nothing to do", o.Status.RenewAt, again)
		}
	}
	if len(renewals) < 2 {
		t.Fatalf("five tokens issued together all renew %v after issue", renewals)
	}
}
