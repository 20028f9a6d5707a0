package shard

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startAPIServer starts an envtest control plane, with the
// ShardedListAndWatch feature gate on or off, and creates a Secret
// labelled shard-test in each of n namespaces.
func startAPIServer(t *testing.T, gate bool, n int) (*rest.Config, []string) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which installs the envtest binaries")
	}
	env := &envtest.Environment{}
	if gate {
		env.ControlPlane.GetAPIServer().Configure().Append("feature-gates", "ShardedListAndWatch=true")
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	var nss []string
	for i := range n {
		ns := fmt.Sprintf("tenant-%02d", i)
		nss = append(nss, ns)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Name: "s", Labels: map[string]string{"shard-test": "true"},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, nss
}

func secretNamespaces(items []corev1.Secret) []string {
	var out []string
	for _, s := range items {
		out = append(out, s.Namespace)
	}
	slices.Sort(out)
	return out
}

func owned(s Shard, nss []string) []string {
	var out []string
	for _, ns := range nss {
		if s.Owns(ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// TestTheAPIServerAgrees lists Secrets from a real kube-apiserver with each
// shard's selector. With the gate on, the server echoes the selector in
// shardInfo and returns exactly the namespaces Owns says, so the hash and
// the ranges are the server's; with it off, there is no shardInfo and
// everything comes back. A shard's cache (typed and metadata-only, as
// the manager's cache and Secret index are) then holds exactly its
// namespaces in both modes, and reports the mode.
func TestTheAPIServerAgrees(t *testing.T) {
	for _, gate := range []bool{true, false} {
		t.Run(fmt.Sprintf("ShardedListAndWatch=%v", gate), func(t *testing.T) {
			cfg, nss := startAPIServer(t, gate, 30)
			cs := kubernetes.NewForConfigOrDie(cfg)
			ctx := context.Background()
			const k = 3
			for i := range k {
				s, _ := New(i, k)
				list, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "shard-test=true", ShardSelector: s.Selector()})
				if err != nil {
					t.Fatalf("shard %s: %v", s, err)
				}
				got := secretNamespaces(list.Items)
				if gate {
					if list.ShardInfo == nil || list.ShardInfo.Selector != s.Selector() {
						t.Fatalf("shard %s: shardInfo %+v, want the selector %q echoed", s, list.ShardInfo, s.Selector())
					}
					if want := owned(s, nss); !slices.Equal(got, want) {
						t.Fatalf("shard %s: the server returned namespaces %v, Owns says %v", s, got, want)
					}
				} else {
					if list.ShardInfo != nil {
						t.Fatalf("shard %s: shardInfo %+v with the gate off", s, list.ShardInfo)
					}
					if len(got) != len(nss) {
						t.Fatalf("shard %s: %d Secrets with the gate off, want all %d", s, len(got), len(nss))
					}
				}
			}

			scheme := runtime.NewScheme()
			_ = clientgoscheme.AddToScheme(scheme)
			httpClient, err := rest.HTTPClientFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := New(1, k)
			probe := NewFilter(s, nil, logr.Discard())
			if err := probe.Probe(ctx, cs, ""); err != nil {
				t.Fatal(err)
			}
			if got, want := probe.Mode(), map[bool]string{true: ModeServer, false: ModeClient}[gate]; got != want {
				t.Errorf("the probe found mode %q, want %q", got, want)
			}
			f := NewFilter(s, func(obj runtime.Object) (bool, error) { return apiutil.IsObjectNamespaced(obj, scheme, mapper) }, logr.Discard())
			c, err := cache.New(cfg, cache.Options{Scheme: scheme, Mapper: mapper, NewInformer: f.NewInformer})
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
			for _, o := range []client.Object{&corev1.Secret{}, meta, &corev1.Namespace{}} {
				if _, err := c.GetInformer(cctx, o); err != nil {
					t.Fatal(err)
				}
			}
			go func() { _ = c.Start(cctx) }()
			syncCtx, done := context.WithTimeout(cctx, 30*time.Second)
			defer done()
			if !c.WaitForCacheSync(syncCtx) {
				t.Fatal("the cache did not sync")
			}
			var typed corev1.SecretList
			if err := c.List(ctx, &typed, client.MatchingLabels{"shard-test": "true"}); err != nil {
				t.Fatal(err)
			}
			want := owned(s, nss)
			if got := secretNamespaces(typed.Items); !slices.Equal(got, want) {
				t.Errorf("the shard's Secret cache holds namespaces %v, want %v", got, want)
			}
			var metas metav1.PartialObjectMetadataList
			metas.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
			if err := c.List(ctx, &metas, client.MatchingLabels{"shard-test": "true"}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range metas.Items {
				got = append(got, m.Namespace)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("the shard's metadata cache holds namespaces %v, want %v", got, want)
			}
			// Namespaces are cluster-scoped: every shard sees them all.
			var all corev1.NamespaceList
			if err := c.List(ctx, &all); err != nil {
				t.Fatal(err)
			}
			if len(all.Items) < len(nss) {
				t.Errorf("the shard's cache holds %d namespaces, want all (at least %d)", len(all.Items), len(nss))
			}
			wantMode := ModeServer
			if !gate {
				wantMode = ModeClient
			}
			if f.Mode() != wantMode {
				t.Errorf("mode %q, want %q (lists echoing the selector: %v)", f.Mode(), wantMode, f.kinds)
			}
		})
	}
}
