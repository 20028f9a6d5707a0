package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// Objects are spread over this many namespaces per group, each with one
// credentials Secret (the shard benchmark uses more).
const defaultNamespacesPerGroup = 10

var namespacesPerGroup = defaultNamespacesPerGroup

const credsName = "creds"

func nsName(group string, i int) string {
	if namespacesPerGroup != defaultNamespacesPerGroup {
		// The shard benchmark: names that vary early, as generated or
		// team names do. FNV-1a's high bits, which pick a namespace's
		// shard, hardly depend on the last two characters, so
		// "bench-0".."bench-1249" would split very unevenly.
		j := i % namespacesPerGroup
		sum := sha256.Sum256([]byte(strconv.Itoa(j)))
		return fmt.Sprintf("%s-%x-%d", group, sum[:3], j)
	}
	return fmt.Sprintf("%s-%d", group, i%namespacesPerGroup)
}

func objName(i int) string { return fmt.Sprintf("t%05d", i) }

// prepareGroup creates the namespaces of a group and their credentials.
func prepareGroup(ctx context.Context, c client.Client, group string) error {
	for i := range namespacesPerGroup {
		ns := nsName(group, i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: credsName, Namespace: ns},
			StringData: map[string]string{"client_id": benchClientID, "client_secret": benchClientSecret},
		}
		if err := c.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// warmUp sends a dry-run create of an OAuthClientToken, so that the API
// server has compiled the CRD's validation rules before the clock starts.
func warmUp(ctx context.Context, c client.Client, tokenURL string) error {
	o := &v1alpha1.OAuthClientToken{
		ObjectMeta: metav1.ObjectMeta{Name: "warm-up", Namespace: nsName("bench", 0)},
		Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: credsName},
			Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
		},
	}
	return c.Create(ctx, o, client.DryRunAll)
}

// createFleet creates n OAuthClientTokens of group pointing at tokenURL
// with `workers` parallel clients, calling created (if not nil) with each
// one as soon as the API server has it.
func createFleet(ctx context.Context, c client.Client, group string, n, workers int, tokenURL string, refresh *v1alpha1.RefreshSpec, created func(*v1alpha1.OAuthClientToken)) error {
	return parallel(n, workers, func(i int) error {
		o := &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Name: objName(i), Namespace: nsName(group, i)},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: credsName},
				Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
				Refresh:        refresh,
			},
		}
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s/%s: %w", o.Namespace, o.Name, err)
		}
		if created != nil {
			created(o)
		}
		return nil
	})
}

// forEach runs f on the n objects of group with `workers` goroutines.
func forEach(ctx context.Context, group string, n, workers int, f func(ctx context.Context, ns, name string) error) error {
	return parallel(n, workers, func(i int) error { return f(ctx, nsName(group, i), objName(i)) })
}

// parallel calls f(i) for i in [0, n) from `workers` goroutines and returns
// the first error; a worker stops at its first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// tracker watches every OAuthClientToken and records when each was first
// seen Ready and when a new token (status.issuedAt) was seen.
type tracker struct {
	mu   sync.Mutex
	objs map[string]*objState
	// ready counts Ready objects per group; lastReady is when the last of
	// them became Ready.
	ready     map[string]int
	lastReady map[string]time.Time
}

type objState struct {
	readyAt  time.Time
	issuedAt string
	// renewals are when a token other than the first was seen, with the
	// issuedAt and expiresAt status reported for it.
	renewals []renewal
}

type renewal struct {
	seen      time.Time
	issuedAt  time.Time
	expiresAt time.Time
}

func groupOf(ns string) string {
	g, _, _ := strings.Cut(ns, "-")
	return g
}

func startTracker(ctx context.Context, cfg *rest.Config) (*tracker, error) {
	t := &tracker{objs: map[string]*objState{}, ready: map[string]int{}, lastReady: map[string]time.Time{}}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: func(in any) (any, error) {
		if o, ok := in.(metav1.Object); ok {
			o.SetManagedFields(nil)
		}
		return in, nil
	}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.OAuthClientToken{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj) },
		UpdateFunc: func(_, obj any) { t.observe(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the tracker's cache did not sync")
	}
	return t, nil
}

func (t *tracker) observe(obj any) {
	now := time.Now()
	o, ok := obj.(*v1alpha1.OAuthClientToken)
	if !ok {
		return
	}
	key := o.Namespace + "/" + o.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.objs[key]
	if st == nil {
		st = &objState{}
		t.objs[key] = st
	}
	if st.readyAt.IsZero() && apimeta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReady) {
		st.readyAt = now
		g := groupOf(o.Namespace)
		t.ready[g]++
		t.lastReady[g] = now
	}
	if o.Status.IssuedAt != nil {
		issued := o.Status.IssuedAt.UTC().Format(time.RFC3339)
		if st.issuedAt != "" && issued != st.issuedAt {
			r := renewal{seen: now, issuedAt: o.Status.IssuedAt.Time}
			if o.Status.ExpiresAt != nil {
				r.expiresAt = o.Status.ExpiresAt.Time
			}
			st.renewals = append(st.renewals, r)
		}
		st.issuedAt = issued
	}
}

// readyTimes returns when each Ready object of group ("ns/name") was
// first seen Ready.
func (t *tracker) readyTimes(group string) map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]time.Time{}
	for key, st := range t.objs {
		ns, _, _ := strings.Cut(key, "/")
		if groupOf(ns) == group && !st.readyAt.IsZero() {
			out[key] = st.readyAt
		}
	}
	return out
}

func (t *tracker) readyCount(group string) (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready[group], t.lastReady[group]
}

// renewedSince returns how many objects of group have a renewal seen after
// since, and the total number of renewals seen after since.
func (t *tracker) renewedSince(group string, since time.Time) (objects, renewals int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, st := range t.objs {
		ns, _, _ := strings.Cut(key, "/")
		if groupOf(ns) != group {
			continue
		}
		n := 0
		for _, r := range st.renewals {
			if r.seen.After(since) {
				n++
			}
		}
		if n > 0 {
			objects++
		}
		renewals += n
	}
	return objects, renewals
}

// firstRenewals returns, for each object of group, its first renewal seen
// after since (zero when none).
func (t *tracker) firstRenewals(group string, since time.Time) map[string]renewal {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]renewal{}
	for key, st := range t.objs {
		ns, _, _ := strings.Cut(key, "/")
		if groupOf(ns) != group {
			continue
		}
		out[key] = renewal{}
		for _, r := range st.renewals {
			if r.seen.After(since) {
				out[key] = r
				break
			}
		}
	}
	return out
}

var scheme = runtime.NewScheme()
