package controller

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Secrets are the one kind of object a cluster may hold tens of thousands
// of that tokensync has no business with. The manager caches only the ones
// it manages (CacheOptions, by label); of every Secret it keeps the name and
// resourceVersion in a secretIndex, which is what it needs to tell whether
// a target name is free and whether a credentials Secret changed since a
// token was issued, and it watches their metadata to learn when one
// changes. Neither costs memory per unrelated Secret beyond a name and a
// version.

// secretVersions tracks, per Secret, the resourceVersions that tell the
// manager's own writes and stale cache reads apart:
//
//   - written: the version the reconciler last applied. The watch event of
//     that version is dropped: it would queue another reconcile of the
//     object that just wrote the Secret, which finds nothing to do but
//     still reads the credentials (and, while the cache catches up, the
//     Secret). Any other change (an edit, a deletion) has another version.
//   - latest: the newest version seen for a Secret some OAuthClientToken
//     uses, from those writes and the watch (deletedVersion once deleted).
//     A cached copy of another version may be stale, and is then read from
//     the API server instead.
//   - inflight: Secrets being applied. Their watch events often arrive
//     before Apply returns with the version written: they are held, then
//     dropped if they are of that version and handled otherwise.
type secretVersions struct {
	mu       sync.Mutex
	written  map[types.NamespacedName]string
	latest   map[types.NamespacedName]string
	inflight map[types.NamespacedName][]heldEvent
}

// heldEvent is an event that arrived while its Secret was being applied.
type heldEvent struct {
	rv     string
	handle func()
}

func (v *secretVersions) init() {
	if v.written == nil {
		v.written = map[types.NamespacedName]string{}
		v.latest = map[types.NamespacedName]string{}
		v.inflight = map[types.NamespacedName][]heldEvent{}
	}
}

// begin marks key as being applied.
func (v *secretVersions) begin(key types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.init()
	if _, busy := v.inflight[key]; !busy {
		v.inflight[key] = nil
	}
}

// end records the version written ("" when the apply failed) and handles
// the events held meanwhile that are not of that version.
func (v *secretVersions) end(key types.NamespacedName, written string) {
	v.mu.Lock()
	held := v.inflight[key]
	delete(v.inflight, key)
	if written != "" {
		v.written[key] = written
		v.latest[key] = written
	}
	v.mu.Unlock()
	for _, ev := range held {
		if written == "" || ev.rv != written {
			ev.handle()
		}
	}
}

// event handles a create or update event of Secret key at version rv: it
// drops the event of the version last written, holds it while the Secret
// is being applied, and calls handle otherwise. handle queues the
// OAuthClientTokens that use the Secret; when there are any it calls used
// first, which records rv as latest, so that their reconciles take a
// cached copy of an older version for stale.
func (v *secretVersions) event(key types.NamespacedName, rv string, handle func(used func())) {
	v.mu.Lock()
	v.init()
	if v.written[key] == rv {
		v.mu.Unlock()
		return
	}
	record := func() {
		handle(func() {
			v.mu.Lock()
			v.latest[key] = rv
			v.mu.Unlock()
		})
	}
	if held, busy := v.inflight[key]; busy {
		v.inflight[key] = append(held, heldEvent{rv: rv, handle: record})
		v.mu.Unlock()
		return
	}
	v.mu.Unlock()
	record()
}

// deletedVersion is the latest version of a Secret deleted while some
// OAuthClientToken used it: every cached copy of it is stale.
const deletedVersion = ""

// deleted records the deletion of Secret key. When some OAuthClientToken
// uses it, a copy the manager's cache still holds (its watch is not the
// index's, and may lag) is stale until that cache sees the deletion too:
// the reconcile the deletion queues must not take it for the Secret and
// leave the Secret deleted.
func (v *secretVersions) deleted(key types.NamespacedName, used bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.init()
	delete(v.written, key)
	if used {
		v.latest[key] = deletedVersion
	} else {
		delete(v.latest, key)
	}
}

// gone records that the manager's cache has no copy of Secret key: a
// deletion recorded is no longer needed to tell a cached copy stale.
func (v *secretVersions) gone(key types.NamespacedName) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rv, ok := v.latest[key]; ok && rv == deletedVersion {
		delete(v.latest, key)
	}
}

// stale reports whether a cached copy of Secret key at version rv may be
// older than a version already seen.
func (v *secretVersions) stale(key types.NamespacedName, rv string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	latest, ok := v.latest[key]
	return ok && latest != rv
}

// busy reports whether Secret key is being applied or was written by the
// reconciler: it exists, or soon will, whatever the index has seen yet.
func (v *secretVersions) busy(key types.NamespacedName) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, inflight := v.inflight[key]
	_, written := v.written[key]
	return inflight || written
}

// versionsClient is the reconciler's client: it tells secretVersions about
// every Secret it applies.
type versionsClient struct {
	client.Client
	versions *secretVersions
}

func (c versionsClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	ac, ok := obj.(*corev1ac.SecretApplyConfiguration)
	if !ok || ac.Name == nil || ac.Namespace == nil {
		return c.Client.Apply(ctx, obj, opts...)
	}
	key := types.NamespacedName{Namespace: *ac.Namespace, Name: *ac.Name}
	c.versions.begin(key)
	err := c.Client.Apply(ctx, obj, opts...)
	written := ""
	if err == nil && ac.ResourceVersion != nil {
		written = *ac.ResourceVersion
	}
	c.versions.end(key, written)
	return err
}

// secretMetadataReader reads the metadata of a Secret (the reconciler's
// SecretMetadata): from the manager's cache when tokensync manages it and
// the cached copy is not known to be stale; as not found, with no request,
// when the index knows no such Secret; else from the API server. So the
// API server is asked only about Secrets that exist and are not
// tokensync's (a conflict, or creationPolicy Merge before the first write).
type secretMetadataReader struct {
	cache    client.Reader // the manager's cache: managed Secrets only
	api      client.Reader
	versions *secretVersions
	index    *secretIndex // nil in tests that run without SetupWithManager: every miss asks the API server
}

var _ client.Reader = &secretMetadataReader{}

func (r *secretMetadataReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return fmt.Errorf("secret metadata reader: %T is not *metav1.PartialObjectMetadata", obj)
	}
	s := &corev1.Secret{}
	err := r.cache.Get(ctx, key, s)
	switch {
	case err == nil && !r.versions.stale(key, s.ResourceVersion):
		m.ObjectMeta = s.ObjectMeta
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return err
	case err != nil:
		r.versions.gone(key)
		if r.absent(key) {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
		}
	}
	m.TypeMeta = secretTypeMeta
	return r.api.Get(ctx, key, m, opts...)
}

// absent reports whether Secret key is known not to exist: the index has
// synced and has no such name, and the reconciler is not writing it.
func (r *secretMetadataReader) absent(key client.ObjectKey) bool {
	return r.index != nil && !r.index.has(key) && !r.versions.busy(key)
}

func (r *secretMetadataReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.api.List(ctx, list, opts...)
}

// secretAbsent reports whether Secret key is known not to exist, without
// asking the API server; false when it cannot tell.
func (r *OAuthClientTokenReconciler) secretAbsent(key types.NamespacedName) bool {
	reader, ok := r.SecretMetadata.(*secretMetadataReader)
	return ok && reader.absent(key)
}

// secretVersion returns the resourceVersion of Secret key the Secret index
// saw last, without asking the API server; "" when it cannot tell.
func (r *OAuthClientTokenReconciler) secretVersion(key types.NamespacedName) string {
	reader, ok := r.SecretMetadata.(*secretMetadataReader)
	if !ok || reader.index == nil {
		return ""
	}
	return reader.index.version(key)
}

// secretIndex is a source of the events of every Secret in the cluster (or
// in the watched namespaces) that keeps only their names and
// resourceVersions. It lists the metadata of all Secrets page by page (so
// that only one page is decoded at a time), then watches from the list's
// resourceVersion. Each create, update and delete is mapped to the
// OAuthClientTokens that use the Secret (the mapper), and filtered through
// secretVersions. After a gap in the watch (its resourceVersion expired) it
// lists again and queues every OAuthClientToken, since it may have missed
// an event.
//
// With namespaces set (--watch-namespaces) it lists and watches each of
// those namespaces on its own, and never asks for a Secret elsewhere: the
// first list covers every namespace before the index counts as synced, and
// each namespace then has its own watch, relisting only itself after a gap.
type secretIndex struct {
	// secrets lists and watches the Secrets of every namespace.
	secrets metadata.ResourceInterface
	// namespaces, when not empty, replaces secrets: one client per watched
	// namespace, the only Secrets listed and watched.
	namespaces map[string]metadata.ResourceInterface
	versions   *secretVersions
	mapper     func(context.Context, *metav1.PartialObjectMetadata) []reconcile.Request
	all        func(context.Context) ([]reconcile.Request, error)
	log        logr.Logger
	// pageSize is the number of Secrets per list request; 500 when 0.
	pageSize int64

	mu     sync.RWMutex
	names  map[string]map[string]string // namespace -> name -> resourceVersion
	synced chan struct{}                // closed once the first list is done
	once   sync.Once
}

func (x *secretIndex) String() string { return "secret index" }

// has reports whether Secret key exists as far as the index has seen (true
// before it synced: it cannot tell).
func (x *secretIndex) has(key client.ObjectKey) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.names == nil {
		return true
	}
	_, ok := x.names[key.Namespace][key.Name]
	return ok
}

// version returns the resourceVersion of Secret key that the index saw
// last; "" when it has not synced or knows no such Secret.
func (x *secretIndex) version(key client.ObjectKey) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.names[key.Namespace][key.Name]
}

// set records Secret ns/name at version rv, or its deletion.
func (x *secretIndex) set(ns, name, rv string, present bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	names := x.names[ns]
	if present {
		if names == nil {
			names = map[string]string{}
			x.names[ns] = names
		}
		names[name] = rv
		return
	}
	delete(names, name)
	if len(names) == 0 {
		delete(x.names, ns)
	}
}

// scopes returns the clients to list and watch Secrets with, by namespace
// ("" for all of them).
func (x *secretIndex) scopes() map[string]metadata.ResourceInterface {
	if len(x.namespaces) > 0 {
		return x.namespaces
	}
	return map[string]metadata.ResourceInterface{metav1.NamespaceAll: x.secrets}
}

// Start lists the Secrets and then watches them in the background; the
// controller waits for the list with WaitForSync. A failed list is retried
// until ctx ends.
func (x *secretIndex) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	x.once.Do(func() { x.synced = make(chan struct{}) })
	go func() {
		// Every namespace is listed before the index is published.
		names := map[string]map[string]string{}
		rvs := map[string]string{}
		for ns, secrets := range x.scopes() {
			if err := x.retry(ctx, "listing Secrets", func() error {
				listed, rv, err := x.list(ctx, secrets)
				maps.Copy(names, listed)
				rvs[ns] = rv
				return err
			}); err != nil {
				return // ctx ended
			}
		}
		x.mu.Lock()
		x.names = names
		x.mu.Unlock()
		close(x.synced)
		for ns, secrets := range x.scopes() {
			go x.watch(ctx, q, ns, secrets, rvs[ns])
		}
	}()
	return nil
}

// WaitForSync waits until the first list is done.
func (x *secretIndex) WaitForSync(ctx context.Context) error {
	x.once.Do(func() { x.synced = make(chan struct{}) })
	select {
	case <-x.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryDelay is the first wait after a failed list or watch; it doubles
// after each failure in a row, up to maxRetryDelay.
const (
	retryDelay    = time.Second
	maxRetryDelay = 30 * time.Second
)

// pause waits *delay, then doubles it (up to maxRetryDelay). It returns
// false when ctx ended first.
func pause(ctx context.Context, delay *time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(*delay):
	}
	*delay = min(2**delay, maxRetryDelay)
	return true
}

// retry calls f until it succeeds, logging each failure and pausing after
// it; it returns ctx's error if ctx ends first.
func (x *secretIndex) retry(ctx context.Context, what string, f func() error) error {
	delay := retryDelay
	for {
		err := f()
		if err == nil {
			return nil
		}
		x.log.Error(err, what+"; retrying", "in", delay)
		if !pause(ctx, &delay) {
			return ctx.Err()
		}
	}
}

// resync lists the Secrets of namespace ns ("" for all) and replaces what
// the index holds for ns with what it found. It returns the
// resourceVersion to watch from.
func (x *secretIndex) resync(ctx context.Context, ns string, secrets metadata.ResourceInterface) (string, error) {
	names, rv, err := x.list(ctx, secrets)
	if err != nil {
		return "", err
	}
	x.mu.Lock()
	if ns == metav1.NamespaceAll {
		x.names = names
	} else if listed, ok := names[ns]; ok {
		x.names[ns] = listed
	} else {
		delete(x.names, ns)
	}
	x.mu.Unlock()
	return rv, nil
}

// list reads the names and versions of all Secrets secrets lists, and the
// resourceVersion to watch from. A continuation that expired starts the
// list over.
func (x *secretIndex) list(ctx context.Context, secrets metadata.ResourceInterface) (map[string]map[string]string, string, error) {
	size := x.pageSize
	if size <= 0 {
		size = 500
	}
	for {
		names := map[string]map[string]string{}
		opts := metav1.ListOptions{Limit: size}
		for {
			page, err := secrets.List(ctx, opts)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				break // the continuation expired: start over
			}
			if err != nil {
				return nil, "", err
			}
			for i := range page.Items {
				s := &page.Items[i]
				ns := names[s.Namespace]
				if ns == nil {
					ns = map[string]string{}
					names[s.Namespace] = ns
				}
				ns[s.Name] = s.ResourceVersion
			}
			if page.Continue == "" {
				return names, page.ResourceVersion, nil
			}
			opts.Continue = page.Continue
		}
	}
}

// watch follows the Secrets of namespace ns ("" for all) from rv until ctx
// ends.
func (x *secretIndex) watch(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], ns string, secrets metadata.ResourceInterface, rv string) {
	delay := retryDelay
	for ctx.Err() == nil {
		timeout := int64(300 + rand.N(300)) // seconds, as client-go's reflector does
		w, err := secrets.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
		expired := apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
		if err == nil {
			rv, expired, err = x.consume(ctx, w, q, rv)
		}
		switch {
		case expired:
			if rv, err = x.relist(ctx, q, ns, secrets); err != nil {
				return // ctx ended
			}
			delay = retryDelay
		case err != nil:
			x.log.Error(err, "watching Secrets; retrying", "in", delay)
			pause(ctx, &delay)
		default:
			delay = retryDelay
		}
	}
}

// consume handles the events of w. It returns the resourceVersion to
// resume from, and whether the watch reported it expired.
func (x *secretIndex) consume(ctx context.Context, w watch.Interface, q workqueue.TypedRateLimitingInterface[reconcile.Request], rv string) (string, bool, error) {
	defer w.Stop()
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, false, nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, false, nil // closed by the server's timeout: resume
		}
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			m, isMeta := ev.Object.(*metav1.PartialObjectMetadata)
			if !isMeta {
				return rv, false, fmt.Errorf("unexpected %T in the watch of Secrets", ev.Object)
			}
			rv = m.ResourceVersion
			x.set(m.Namespace, m.Name, m.ResourceVersion, ev.Type != watch.Deleted)
			x.handle(ctx, ev.Type, m, q)
		case watch.Bookmark:
			if a, err := meta.Accessor(ev.Object); err == nil {
				rv = a.GetResourceVersion()
			}
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return rv, true, nil
			}
			return rv, false, err
		}
	}
}

// handle maps the event of Secret m to the OAuthClientTokens that use it.
func (x *secretIndex) handle(ctx context.Context, t watch.EventType, m *metav1.PartialObjectMetadata, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	key := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
	if t == watch.Deleted {
		reqs := x.mapper(ctx, m)
		x.versions.deleted(key, len(reqs) > 0)
		for _, r := range reqs {
			q.Add(r)
		}
		return
	}
	x.versions.event(key, m.ResourceVersion, func(used func()) {
		reqs := x.mapper(ctx, m)
		if len(reqs) > 0 {
			used() // before the reconciles can start
		}
		for _, r := range reqs {
			q.Add(r)
		}
	})
}

// relist lists the Secrets of namespace ns again after its watch lost
// track, then queues every OAuthClientToken. It retries until ctx ends.
func (x *secretIndex) relist(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], ns string, secrets metadata.ResourceInterface) (string, error) {
	var rv string
	err := x.retry(ctx, "listing Secrets after the watch expired", func() error {
		var err error
		if rv, err = x.resync(ctx, ns, secrets); err != nil {
			return err
		}
		reqs, err := x.all(ctx)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			q.Add(r)
		}
		return nil
	})
	return rv, err
}
