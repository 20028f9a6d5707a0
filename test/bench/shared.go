package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// The shared-provider benchmark (-shared-provider): N objects in many
// namespaces reference one ClusterOAuthProvider with tokenSharing Shared.
// It counts the token requests the endpoint receives for the first tokens
// and over one more lifetime: one each, however large N.

// sharedLifetime is the token lifetime of the shared-provider benchmark:
// short, so that one renewal happens within the run.
const sharedLifetime = 90

type sharedRun struct {
	n, namespaces int
	ready         time.Duration // time to all N Ready
	first         int           // token requests until all were Ready
	renewed       int           // token requests over the next lifetime
	renewedAll    bool          // every object got the renewed token
}

func runShared(ctx context.Context, o options, n int) (*sharedRun, error) {
	run := &sharedRun{n: n, namespaces: shardNamespaces(n)}
	dir := filepath.Join(o.workDir, fmt.Sprintf("n%d-shared", n))
	logf("N=%d, one shared ClusterOAuthProvider: starting a control plane", n)
	cl, kubeconfig, ep, stop, err := startSpread(ctx, o, dir, run.namespaces, sharedLifetime)
	if err != nil {
		return nil, err
	}
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-client", Namespace: operatorNS},
		StringData: map[string]string{"client_id": benchClientID, "client_secret": benchClientSecret},
	}
	if err := cl.c.Create(ctx, creds); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	p := &v1alpha1.ClusterOAuthProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: v1alpha1.ClusterOAuthProviderSpec{OAuthProviderSpec: v1alpha1.OAuthProviderSpec{
			ProviderSpec:   v1alpha1.ProviderSpec{TokenURL: ep.url},
			CredentialsRef: &v1alpha1.CredentialsReference{Name: creds.Name},
			TokenSharing:   v1alpha1.TokenSharingShared,
		}},
	}
	if err := cl.c.Create(ctx, p); err != nil {
		return nil, err
	}
	tr, err := startTracker(ctx, cl.admin)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, o.managerArgs...), "--cluster-provider-namespace="+operatorNS)
	m, err := startManager(ctx, o.managerBin, kubeconfig, filepath.Join(dir, "manager.log"), args, o.managerEnv)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	logf("N=%d: creating %d objects in %d namespaces, all referencing ClusterOAuthProvider shared", n, n, run.namespaces)
	t0 := time.Now()
	if err := parallel(n, o.creators, func(i int) error {
		obj := &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Name: objName(i), Namespace: nsName("bench", i)},
			Spec: v1alpha1.OAuthClientTokenSpec{
				ProviderRef: &v1alpha1.ProviderReference{Kind: v1alpha1.ProviderKindCluster, Name: p.Name},
			},
		}
		if err := cl.c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 30*time.Minute, 100*time.Millisecond, "every object Ready", func() bool {
		c, _ := tr.readyCount("bench")
		return c >= n
	}); err != nil {
		return nil, err
	}
	_, last := tr.readyCount("bench")
	run.ready = last.Sub(t0)
	run.first = ep.requests()
	// One more lifetime: every object renews onto the one new token.
	since := time.Now()
	sleep(ctx, sharedLifetime*time.Second)
	objects, _ := tr.renewedSince("bench", since)
	run.renewedAll = objects >= n
	run.renewed = ep.requests() - run.first
	logf("N=%d: all Ready in %s with %d token request(s); over the next %ds, %d request(s), %d of %d objects renewed", n,
		run.ready.Round(time.Millisecond), run.first, sharedLifetime, run.renewed, objects, n)
	return run, nil
}

// printShared prints the shared-provider table and returns the number of
// enforced targets missed: one token request for the first tokens and one
// per lifetime after, with every object renewed.
func printShared(w io.Writer, runs []*sharedRun, o options) int {
	failed := 0
	fmt.Fprintln(w, "| N | namespaces | all Ready | token requests, first tokens | token requests, next lifetime | every object renewed |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range runs {
		fmt.Fprintf(w, "| %s | %d | %.1f s | %d | %d | %v |\n", thousands(r.n), r.namespaces, r.ready.Seconds(), r.first, r.renewed, r.renewedAll)
		if r.first != 1 || r.renewed != 1 || !r.renewedAll {
			if o.enforce != "none" {
				failed++
			}
			fmt.Fprintf(w, "FAIL: N=%d: %d and %d token requests (want 1 and 1), every object renewed: %v\n", r.n, r.first, r.renewed, r.renewedAll)
		}
	}
	return failed
}
