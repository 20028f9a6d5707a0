package token

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// Attack tests: each one is a scenario a hostile (or merely careless)
// tenant can produce with what the API server admits. A failing test is a
// defense that does not hold on main.

// chainHarness is a keyless harness (real time) whose token server issues
// client-credentials tokens to "first" and "second" and lets them be
// exchanged.
func chainHarness(t *testing.T) (*harness, *tokenserver.Server, string) {
	t.Helper()
	h, srv, base := keylessHarness(t, tokenserver.Options{ExpiresIn: 3600,
		Clients: map[string]string{"first": "s3cret", "second": "s3cret2"}, ExchangeOwnTokens: true})
	h.createSecret("creds1", "", map[string][]byte{"client_id": []byte("first"), "client_secret": []byte("s3cret")})
	h.createSecret("creds2", "", map[string][]byte{"client_id": []byte("second"), "client_secret": []byte("s3cret2")})
	return h, srv, base
}

func exchangeFrom(subject string) func(*v1alpha1.OAuthClientToken) {
	return func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.Grant = v1alpha1.GrantTokenExchange
		o.Spec.Provider.TokenExchange = &v1alpha1.TokenExchangeSpec{SubjectTokenRef: &v1alpha1.LocalObjectReference{Name: subject}}
	}
}

// TestAttack_ChainedExchangeSelfReferenceHotLoops: an object that holds a
// token edited into a chained exchange whose subject is itself. Each token
// it obtained would change its own subject and renew it again, forever:
// the API server refuses the edit.
func TestAttack_ChainedExchangeSelfReferenceHotLoops(t *testing.T) {
	h, _, base := chainHarness(t)
	h.createToken("self", "creds1", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	o := h.get("self")
	exchangeFrom("self")(o)
	err := k8sClient.Update(h.ctx, o)
	if err == nil || !strings.Contains(err.Error(), "subjectTokenRef must name another OAuthClientToken") {
		t.Fatalf("a self-referencing chained exchange was admitted (%v): it feeds on its own token", err)
	}
}

// TestAttack_ChainedExchangeCycleHotLoops: A → B → A. B exchanges A's
// token; A is then edited to exchange B's. Each new token of one changes
// the other's subject: they renew each other forever.
func TestAttack_ChainedExchangeCycleHotLoops(t *testing.T) {
	h, srv, base := chainHarness(t)
	url := func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" }
	h.createToken("a", "creds1", url)
	h.createToken("b", "creds2", func(o *v1alpha1.OAuthClientToken) { url(o); exchangeFrom("a")(o) })
	h.reconcile("a")
	h.syncCache(h.get("a"))
	h.clock.Step(time.Second)
	h.reconcile("b")
	wantReady(h, "b")
	h.syncCache(h.get("b"))

	h.edit("a", exchangeFrom("b"))
	before := len(srv.Issued())
	for range 4 {
		for _, n := range []string{"a", "b"} {
			h.clock.Step(time.Second)
			h.reconcile(n)
			h.syncCache(h.get(n))
		}
	}
	if got := len(srv.Issued()) - before; got > 0 {
		t.Fatalf("a chained-exchange cycle a→b→a obtained %d tokens in 8 reconciles over 8 seconds: the two objects renew each other forever", got)
	}
	// The edited object reports the cycle; b, unchanged, keeps its token
	// until its own renewal finds the cycle too. Neither loses its token.
	if c := condition(h.get("a"), v1alpha1.ConditionStalled); c == nil || c.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, "a → b → a") {
		t.Fatalf("a does not report the cycle: %+v", h.get("a").Status.Conditions)
	}
	h.clock.Step(45 * time.Minute) // b's renewal is due
	_ = h.reconcileErr("b")
	if c := condition(h.get("b"), v1alpha1.ConditionStalled); c == nil || c.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, "b → a → b") {
		t.Fatalf("b does not report the cycle at its renewal: %+v", h.get("b").Status.Conditions)
	}
	if got := len(srv.Issued()) - before; got > 0 {
		t.Fatalf("%d tokens obtained through the cycle", got)
	}
	for _, n := range []string{"a", "b"} {
		if len(h.secret(n).Data[v1alpha1.AccessTokenKey]) == 0 {
			t.Fatalf("%s lost its valid token to the refused spec", n)
		}
	}
}

// TestAttack_TargetingAnotherObjectsStateSecret: object B names as its
// target the state Secret in which object A keeps its refresh token.
// Writing it would drop A's refresh token and ownerReference: the API
// server refuses such names (the runtime rule for objects admitted before
// it is in internal/secrets' Claim table), and A keeps its state.
func TestAttack_TargetingAnotherObjectsStateSecret(t *testing.T) {
	h := newHarness(t)
	_, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "rt-secret"}, ExpiresIn: 600, IssueRefreshTokens: true})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("rt-secret")})
	on := true
	h.createToken("a", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: &on}
	})
	h.reconcile("a")
	wantReady(h, "a")
	state := secrets.StateName("a")
	if len(h.secret(state).Data[v1alpha1.RefreshTokenKey]) == 0 {
		t.Fatal("setup: A kept no refresh token")
	}
	for _, b := range []*v1alpha1.OAuthClientToken{
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: h.ns}, Spec: v1alpha1.OAuthClientTokenSpec{
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"}, Provider: v1alpha1.ProviderSpec{TokenURL: base + "/token"},
			Target: &v1alpha1.TargetSpec{Name: state}}},
		{ObjectMeta: metav1.ObjectMeta{Name: state, Namespace: h.ns}, Spec: v1alpha1.OAuthClientTokenSpec{ // its name is its default target
			CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"}, Provider: v1alpha1.ProviderSpec{TokenURL: base + "/token"}}},
	} {
		err := k8sClient.Create(h.ctx, b)
		if err == nil || !strings.Contains(err.Error(), "must not end in -tokensync-state") {
			t.Fatalf("an object whose target is %s was admitted (%v)", state, err)
		}
	}
	after := h.secret(state)
	if after.Annotations[v1alpha1.OwnerAnnotation] != "a" || len(after.Data[v1alpha1.RefreshTokenKey]) == 0 {
		t.Fatalf("a's state Secret changed: owner %q, keys %v", after.Annotations[v1alpha1.OwnerAnnotation], keys(after.Data))
	}
}

// TestAttack_UnsignedOriginAnnotationTakesOverUserSecret: a user's
// Secret that merely carries tokensync's managed label and
// oauth.tokensync.io/origin: created (copied from a manifest tokensync
// wrote, e.g. `kubectl get -o yaml` of another namespace's Secret) is
// taken for one tokensync created: an object with creationPolicy Owner
// writes into it and puts its controller reference on it, so that
// deleting the object garbage-collects the user's Secret and its keys.
// The origin is not covered by the signed record.
func TestAttack_UnsignedOriginAnnotationTakesOverUserSecret(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "origin-forge", "s3cret")
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: h.ns,
			Labels:      map[string]string{v1alpha1.ManagedLabel: "true"},
			Annotations: map[string]string{v1alpha1.OriginAnnotation: secrets.OriginCreated}},
		Data: map[string][]byte{"database-password": []byte("hunter2")},
	}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "app-config"}
	})
	_ = h.reconcileErr("tok")
	got := h.secret("app-config")
	for _, ref := range got.OwnerReferences {
		if ref.Kind == "OAuthClientToken" {
			t.Fatalf("tokensync took over a Secret it never wrote (keys now %v) and made it garbage-collectable with OAuthClientToken %s", keys(got.Data), ref.Name)
		}
	}
	if len(got.Data[v1alpha1.AccessTokenKey]) != 0 {
		t.Fatalf("tokensync wrote its token into a Secret it never created, with creationPolicy Owner (keys %v)", keys(got.Data))
	}
}

// recordingTokens records the refresh tokens of the requests it passes on.
type recordingTokens struct {
	TokenSource
	refresh []string
}

func (r *recordingTokens) Token(ctx context.Context, req oauth.Request) (*oauth.Token, error) {
	if req.RefreshToken != "" {
		r.refresh = append(r.refresh, req.RefreshToken)
	}
	return r.TokenSource.Token(ctx, req)
}

// TestAttack_ForgedRefreshTokenIsNeverSent: someone who may edit the
// state Secret replaces the refresh token in it (keeping every
// annotation). tokensync must not send a refresh token it did not store:
// the state record's MAC covers the token.
func TestAttack_ForgedRefreshTokenIsNeverSent(t *testing.T) {
	h := newHarness(t)
	_, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "rt-secret"}, ExpiresIn: 600, IssueRefreshTokens: true})
	rec := &recordingTokens{TokenSource: h.r.Tokens}
	h.r.Tokens = rec
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("rt-secret")})
	on := true
	h.createToken("a", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: &on}
	})
	h.reconcile("a")
	st := h.secret(secrets.StateName("a"))
	st.Data[v1alpha1.RefreshTokenKey] = []byte("forged-refresh-token")
	if err := k8sClient.Update(h.ctx, st); err != nil {
		t.Fatal(err)
	}
	h.syncCache(st)
	h.clock.Step(401 * time.Second)
	h.reconcile("a")
	for _, rt := range rec.refresh {
		if rt == "forged-refresh-token" {
			t.Fatal("tokensync sent a refresh token it never stored")
		}
	}
	wantReady(h, "a")
}

// TestAttack_WorkloadRestartedOncePerIntervalWhateverTheObjects: the docs
// say an OAuthClientToken does not let a tenant restart a workload "more
// than once per --min-rollout-restart-interval". The interval is kept per
// object (status.lastRolloutRestart): a workload reading two target
// Secrets, named by two objects, is restarted by each, twice in a minute
// under a one-hour interval (n objects: n times).
func TestAttack_WorkloadRestartedOncePerIntervalWhateverTheObjects(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "rollout-twice", "s3cret")
	tpl := podTemplate("app")
	tpl.Spec.Containers[0].Env = append(tpl.Spec.Containers[0].Env, corev1.EnvVar{Name: "TOKEN2", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tok2"}, Key: "access_token"}}})
	tpl.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "tok1"
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}, Template: tpl}}
	if err := k8sClient.Create(h.ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"tok1", "tok2"} {
		h.createToken(n, "creds", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: v1alpha1.RolloutKindDeployment, Name: "app"}}
		})
		h.reconcile(n)
		h.restarts(n, nil, time.Hour)
	}
	h.clock.Step(41 * time.Minute)
	var values []string
	for _, n := range []string{"tok1", "tok2"} {
		h.clock.Step(30 * time.Second)
		h.reconcile(n)
		h.restarts(n, nil, time.Hour)
		v, _ := h.restartedAt(d)
		values = append(values, v)
	}
	if values[0] != "" && values[1] != values[0] {
		t.Fatalf("Deployment app restarted twice within a minute under a one-hour --min-rollout-restart-interval (restartedAt %v)", values)
	}
}

// TestAttack_AnnotationRemovedStopsTokenRequests: the ServiceAccount's
// owner withdraws the opt-in while the object holds a valid token: the
// next renewal mints no ServiceAccount token and sends nothing.
func TestAttack_AnnotationRemovedStopsTokenRequests(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{})
	h.serviceAccount("payments", true)
	srv.RegisterFederatedClient("c", tokenserver.FederatedClient{Issuer: saIssuer.URL, Subject: subjectOf(h.ns, "payments")})
	h.createToken("tok", "", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.CredentialsRef = nil
		o.Spec.ServiceAccount = &v1alpha1.ServiceAccountCredential{Name: "payments", Audience: federatedAudience}
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodServiceAccountAssertion
		o.Spec.Provider.ClientID = "c"
	})
	h.reconcile("tok")
	wantReady(h, "tok")
	sa := &corev1.ServiceAccount{}
	if err := k8sClient.Get(h.ctx, keyIn(h.ns, "payments"), sa); err != nil {
		t.Fatal(err)
	}
	sa.Annotations[v1alpha1.AllowTokenRequestsAnnotation] = "false"
	if err := k8sClient.Update(h.ctx, sa); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ServiceAccount in the index", func() bool {
		rv, _ := idx.ServiceAccount(keyIn(h.ns, "payments"))
		return rv == sa.ResourceVersion
	})
	before := srv.Requests()
	h.clock.Step(41 * time.Minute)
	h.reconcile("tok")
	wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonServiceAccountNotAllowed)
	if srv.Requests() != before {
		t.Fatal("a token request was sent after the ServiceAccount withdrew its opt-in")
	}
	// Forced refreshes do not bypass it either.
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = "now"
	})
	h.reconcile("tok")
	if srv.Requests() != before {
		t.Fatal("a forced refresh sent a request for a ServiceAccount that withdrew its opt-in")
	}
}

// TestAttack_MergeNeverOverwritesAUsersKey: creationPolicy Merge into a
// user's Secret that already has access_token (the user's own value) is
// refused, before any request, and the user's value stays.
func TestAttack_MergeNeverOverwritesAUsersKey(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "merge-user-key", "s3cret")
	h.createSecret("users", "", map[string][]byte{v1alpha1.AccessTokenKey: []byte("the user's own token")})
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Name: "users", CreationPolicy: v1alpha1.CreationPolicyMerge}
	})
	_ = h.reconcileErr("tok")
	if got := string(h.secret("users").Data[v1alpha1.AccessTokenKey]); got != "the user's own token" {
		t.Fatal("Merge overwrote a key the user wrote")
	}
	wantCondition(t, h.get("tok"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretConflict)
	if n := len(h.issued("merge-user-key")); n != 0 {
		t.Fatalf("%d tokens requested for a Secret tokensync may not write", n)
	}
}

// TestAttack_ExpiredSubjectIsNeverExchanged: the subject object's token
// has expired (its endpoint is down, or it is stalled): the chained
// exchange waits, and never sends the expired token.
func TestAttack_ExpiredSubjectIsNeverExchanged(t *testing.T) {
	h, _, base := chainHarness(t)
	rec := &subjectRecorder{TokenSource: h.r.Tokens}
	h.r.Tokens = rec
	h.createToken("a", "creds1", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.reconcile("a")
	h.syncCache(h.get("a"))
	subject := string(h.secret("a").Data[v1alpha1.AccessTokenKey])
	h.createToken("b", "creds2", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		exchangeFrom("a")(o)
	})
	h.clock.Step(61 * time.Minute) // a's token has expired; a is not renewed
	_ = h.reconcileErr("b")
	for _, s := range rec.subjects {
		if s == subject {
			t.Fatal("an expired subject token was sent")
		}
	}
	wantCondition(t, h.get("b"), v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonSubjectTokenNotReady)
}

type subjectRecorder struct {
	TokenSource
	subjects []string
}

func (r *subjectRecorder) Token(ctx context.Context, req oauth.Request) (*oauth.Token, error) {
	if req.SubjectToken != "" {
		r.subjects = append(r.subjects, req.SubjectToken)
	}
	return r.TokenSource.Token(ctx, req)
}

// TestAttack_ServiceAccountTokenForTheAPIServerIsRefused: a ServiceAccount
// opted in (for its identity provider). A tenant who may create
// OAuthClientTokens there asks for a token with the Kubernetes API
// server's own audience and sends it to a token URL of its choice: it
// would then hold a credential for the cluster as that ServiceAccount.
// tokensync refuses a token the API server accepts, and sends nothing.
func TestAttack_ServiceAccountTokenForTheAPIServerIsRefused(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{})
	h.serviceAccount("payments", true)
	srv.RegisterFederatedClient("c", tokenserver.FederatedClient{Issuer: saIssuer.URL, Subject: subjectOf(h.ns, "payments")})
	for name, audience := range map[string]string{"api": saIssuer.URL, "idp": federatedAudience} {
		h.createToken(name, "", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.CredentialsRef = nil
			o.Spec.ServiceAccount = &v1alpha1.ServiceAccountCredential{Name: "payments", Audience: audience}
			o.Spec.Provider.TokenURL = base + "/token"
			o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodServiceAccountAssertion
			o.Spec.Provider.ClientID = "c"
		})
	}
	_ = h.reconcileErr("api")
	c := wantCondition(t, h.get("api"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonServiceAccountNotAllowed)
	if !strings.Contains(c.Message, "Kubernetes API server accepts") {
		t.Fatalf("the message does not say why: %q", c.Message)
	}
	if srv.Requests() != 0 {
		t.Fatal("a ServiceAccount token for the API server's audience was sent to the token endpoint")
	}
	h.reconcile("idp") // the identity provider's own audience still works
	wantReady(h, "idp")
}

// TestAttack_StaleCacheNeverMintsTwiceForOneRefreshRequest: a forced
// refresh is handled, its status written; the next reconcile reads the
// object from a cache that does not show that status write yet (the
// refresh request looks unhandled). It must not mint a second token for
// the same request (seen in CI as 2 tokens for one refresh).
func TestAttack_StaleCacheNeverMintsTwiceForOneRefreshRequest(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "stale-force", "s3cret")
	h.createToken("tok", "creds", nil)
	h.reconcile("tok")
	wantReady(h, "tok")
	h.syncCache(h.get("tok"))
	h.edit("tok", func(o *v1alpha1.OAuthClientToken) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.RefreshRequestedAnnotation] = "once"
	})
	stale := h.get("tok") // the request, not yet handled
	h.reconcile("tok")
	if got := h.get("tok").Status.LastHandledRefreshRequest; got != "once" {
		t.Fatalf("setup: the refresh request was not handled (%q)", got)
	}
	n := len(h.issued("stale-force"))
	h.syncCache(h.secret("tok"))
	h.r.run(h.ctx, stale.DeepCopy())
	if got := len(h.issued("stale-force")); got != n {
		t.Fatalf("a reconcile of a stale copy minted %d more token(s) for a refresh request already handled", got-n)
	}
}
