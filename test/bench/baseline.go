package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

var tokensGVR = schema.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Resource: "oauthclienttokens"}

// baseline does, with plain client-go and net/http, the least work that
// makes an OAuthClientToken Ready: one GET of the credentials Secret, one
// token POST, one server-side apply of the target Secret and one status
// patch, with as many workers as the manager reconciles in parallel, its
// client-side API rate limit and its per-host token request limit. It has
// no cache, no watch and no queue: the objects are handed to it as they
// are created. Each of its three kinds of API request has a client-go
// client of its own, with the manager's --kube-api-qps and --kube-api-burst,
// as in the manager (controller-runtime's API reader for credentials, and
// one REST client per API group for Secrets and for status).
type baseline struct {
	read    kubernetes.Interface // credentials reads
	write   kubernetes.Interface // Secret applies
	dyn     dynamic.Interface    // status patches
	http    *http.Client
	limiter *rate.Limiter
	queue   chan baselineItem
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
}

type baselineItem struct {
	ns, name string
	uid      types.UID
	tokenURL string
}

func startBaseline(ctx context.Context, cfg *rest.Config, s settings, n int) (*baseline, error) {
	read, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	write, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	b := &baseline{
		read:  read,
		write: write,
		dyn:   dyn,
		http:  &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: s.concurrency}},
		queue: make(chan baselineItem, n),
	}
	if s.tokenRate > 0 {
		b.limiter = rate.NewLimiter(rate.Limit(s.tokenRate), max(s.tokenBurst, 1))
	}
	for range s.concurrency {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for it := range b.queue {
				// Retry an object until it is done, as a controller would.
				for attempt := 0; ; attempt++ {
					err := b.process(ctx, it)
					if err == nil {
						break
					}
					if ctx.Err() != nil || attempt == 5 {
						b.errMu.Lock()
						b.err = fmt.Errorf("baseline %s/%s: %w", it.ns, it.name, err)
						b.errMu.Unlock()
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return b, nil
}

func (b *baseline) add(o *v1alpha1.OAuthClientToken) {
	b.queue <- baselineItem{ns: o.Namespace, name: o.Name, uid: o.UID, tokenURL: o.Spec.Provider.TokenURL}
}

// finish waits for the workers and returns the first error.
func (b *baseline) finish() error {
	close(b.queue)
	b.wg.Wait()
	return b.err
}

func (b *baseline) process(ctx context.Context, it baselineItem) error {
	// 1. The credentials.
	creds, err := b.read.CoreV1().Secrets(it.ns).Get(ctx, credsName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	// 2. The token.
	if b.limiter != nil {
		if err := b.limiter.Wait(ctx); err != nil {
			return err
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(string(creds.Data["client_id"])), url.QueryEscape(string(creds.Data["client_secret"])))
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return fmt.Errorf("token request: status %d: %v", resp.StatusCode, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	renew := now.Add(time.Duration(tok.ExpiresIn) * time.Second * 2 / 3)

	// 3. The target Secret: the same keys, labels, annotations and owner
	// as the manager writes.
	ac := corev1ac.Secret(it.name, it.ns).
		WithLabels(map[string]string{v1alpha1.ManagedLabel: "true"}).
		WithAnnotations(map[string]string{
			v1alpha1.OwnerAnnotation:      it.name,
			v1alpha1.ConfigHashAnnotation: strings.Repeat("0", 64),
			v1alpha1.TokenHashAnnotation:  strings.Repeat("0", 64),
			v1alpha1.TokenTypeAnnotation:  tok.TokenType,
			v1alpha1.IssuedAtAnnotation:   now.Format(time.RFC3339),
			v1alpha1.ExpiresAtAnnotation:  exp.Format(time.RFC3339),
			v1alpha1.RenewAtAnnotation:    renew.Format(time.RFC3339),
		}).
		WithType("Opaque").
		WithData(map[string][]byte{
			v1alpha1.AccessTokenKey: []byte(tok.AccessToken),
			v1alpha1.TokenTypeKey:   []byte(tok.TokenType),
			v1alpha1.ExpiresAtKey:   []byte(exp.Format(time.RFC3339)),
		})
	if it.uid != "" {
		ac = ac.WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).WithKind("OAuthClientToken").
			WithName(it.name).WithUID(it.uid).WithController(true).WithBlockOwnerDeletion(true))
	}
	if _, err := b.write.CoreV1().Secrets(it.ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "bench-baseline", Force: true}); err != nil {
		return err
	}

	// 4. The status.
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenReady,
		Message:            fmt.Sprintf("Secret %s holds a token valid until %s; renewal at %s", it.name, exp.Format(time.RFC3339), renew.Format(time.RFC3339)),
		LastTransitionTime: metav1.NewTime(now)}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"secretName":    it.name,
		"tokenEndpoint": it.tokenURL,
		"lastGrant":     "client_credentials",
		"tokenType":     tok.TokenType,
		"issuedAt":      now.Format(time.RFC3339),
		"expiresAt":     exp.Format(time.RFC3339),
		"renewAt":       renew.Format(time.RFC3339),
		"conditions":    []metav1.Condition{cond},
	}})
	if err != nil {
		return err
	}
	_, err = b.dyn.Resource(tokensGVR).Namespace(it.ns).Patch(ctx, it.name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}
