package token

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/test/testutil"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// Keyless: no client secret anywhere. The ServiceAccount token, from the
// TokenRequest API of the real API server, is the client assertion or the
// subject of a token exchange, and the test token server verifies it as an
// identity provider does: against the API server's discovery document and
// keys (signature, issuer, audience, expiry, subject).

const federatedAudience = "https://idp.tokensync.test"

// keylessHarness is a harness on real time (ServiceAccount tokens carry
// the API server's clock) with a token server that trusts the envtest
// ServiceAccount issuer.
func keylessHarness(t *testing.T, opts tokenserver.Options) (*harness, *tokenserver.Server, string) {
	t.Helper()
	h := newHarness(t)
	h.clock.SetTime(time.Now().Truncate(time.Second))
	opts.TrustedIssuers = []tokenserver.TrustedIssuer{saIssuer.TrustedIssuer(cfg.CAData, federatedAudience)}
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = 3600
	}
	srv, base := providerServer(h, opts)
	return h, srv, base
}

func (h *harness) serviceAccount(name string, allow bool) {
	h.t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}}
	if allow {
		sa.Annotations = map[string]string{v1alpha1.AllowTokenRequestsAnnotation: "true"}
	}
	if err := k8sClient.Create(h.ctx, sa); err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, "the ServiceAccount in the index", func() bool {
		rv, _ := idx.ServiceAccount(keyIn(h.ns, name))
		return rv == sa.ResourceVersion
	})
}

func subjectOf(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// wantNoServiceAccountToken checks that the ServiceAccount tokens the
// server received appear in no status and no event.
func (h *harness) wantNoServiceAccountToken(srv *tokenserver.Server, objects ...string) {
	h.t.Helper()
	var tokens []string
	last := srv.LastRequest().Form
	for _, k := range []string{"client_assertion", "subject_token"} {
		if v := last.Get(k); v != "" {
			tokens = append(tokens, v)
		}
	}
	if len(tokens) == 0 {
		h.t.Fatal("the server received no ServiceAccount token: the leak check would check nothing")
	}
	var text strings.Builder
	for _, o := range objects {
		fmt.Fprintf(&text, "%+v\n", h.get(o).Status)
	}
	text.WriteString(strings.Join(h.events(), "\n"))
	if leaks := testutil.Leaks(text.String(), tokens...); len(leaks) > 0 {
		h.t.Fatalf("a ServiceAccount token leaked into status or events: %v", leaks)
	}
}

func TestServiceAccountAssertion(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{})
	h.serviceAccount("payments", true)
	srv.RegisterFederatedClient("payments-federated", tokenserver.FederatedClient{Issuer: saIssuer.URL, Subject: subjectOf(h.ns, "payments")})
	h.createToken("tok", "", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.CredentialsRef = nil
		o.Spec.ServiceAccount = &v1alpha1.ServiceAccountCredential{Name: "payments", Audience: federatedAudience}
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodServiceAccountAssertion
		o.Spec.Provider.ClientID = "payments-federated"
	})
	h.reconcile("tok")
	wantReady(h, "tok")
	last := srv.LastRequest()
	if last.AuthMethod != tokenserver.AuthFederated || last.ClientID != "payments-federated" {
		t.Fatalf("authenticated as %q with %q", last.ClientID, last.AuthMethod)
	}
	if got := lastIssued(t, srv); got.ClientID != "payments-federated" || string(h.secret("tok").Data[v1alpha1.AccessTokenKey]) != got.AccessToken {
		t.Fatal("the Secret does not hold the token issued to the federated client")
	}
	if len(h.secretsOfNamespace()) != 1 {
		t.Fatalf("Secrets in the namespace: %v; a keyless object needs none but its target", h.secretsOfNamespace())
	}
	h.wantNoServiceAccountToken(srv, "tok")
}

func (h *harness) secretsOfNamespace() []string {
	var list corev1.SecretList
	if err := k8sClient.List(h.ctx, &list); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		if s.Namespace == h.ns {
			out = append(out, s.Name)
		}
	}
	return out
}

// TestServiceAccountMustOptIn: naming a ServiceAccount does not let anyone
// mint its tokens: it must carry the annotation. A deleted ServiceAccount
// is reported too.
func TestServiceAccountMustOptIn(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{})
	h.serviceAccount("not-asked", false)
	h.serviceAccount("payments", true)
	srv.RegisterFederatedClient("c", tokenserver.FederatedClient{Issuer: saIssuer.URL, Subject: subjectOf(h.ns, "payments")})
	for _, sa := range []string{"not-asked", "payments"} {
		h.createToken(sa, "", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.CredentialsRef = nil
			o.Spec.ServiceAccount = &v1alpha1.ServiceAccountCredential{Name: sa, Audience: federatedAudience}
			o.Spec.Provider.TokenURL = base + "/token"
			o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodServiceAccountAssertion
			o.Spec.Provider.ClientID = "c"
		})
	}
	h.reconcile("not-asked")
	c := wantCondition(t, h.get("not-asked"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonServiceAccountNotAllowed)
	if !strings.Contains(c.Message, v1alpha1.AllowTokenRequestsAnnotation) {
		t.Fatalf("the message does not say how to opt in: %q", c.Message)
	}
	if srv.Requests() != 0 {
		t.Fatal("a request was sent for a ServiceAccount that did not opt in")
	}

	h.reconcile("payments")
	wantReady(h, "payments")
	sa := &corev1.ServiceAccount{}
	if err := k8sClient.Get(h.ctx, keyIn(h.ns, "payments"), sa); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(h.ctx, sa); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion in the index", func() bool { _, ok := idx.ServiceAccount(keyIn(h.ns, "payments")); return !ok })
	if reqs := h.r.tokensFor(h.ctx, "ServiceAccount", keyIn(h.ns, "payments")); len(reqs) != 1 {
		t.Fatalf("a ServiceAccount event queues %v", reqs)
	}
	h.clock.Step(41 * time.Minute)
	h.reconcile("payments")
	wantCondition(t, h.get("payments"), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonServiceAccountNotFound)
	if len(h.secret("payments").Data[v1alpha1.AccessTokenKey]) == 0 {
		t.Fatal("the valid token was removed")
	}
}

// TestServiceAccountTokenExchange: the ServiceAccount token is the subject
// of an RFC 8693 exchange, with a public client; the token obtained is
// renewed before its subject expires, and issued_token_type is in status.
func TestServiceAccountTokenExchange(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{ExpiresIn: 7200})
	h.serviceAccount("payments", true)
	srv.AddExchangePolicy(tokenserver.ExchangePolicy{Issuer: saIssuer.URL, Subject: subjectOf(h.ns, "payments")})
	h.createToken("tok", "", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.CredentialsRef = nil
		o.Spec.ServiceAccount = &v1alpha1.ServiceAccountCredential{Name: "payments", Audience: federatedAudience}
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodNone
		o.Spec.Provider.Grant = v1alpha1.GrantTokenExchange
		o.Spec.Provider.Audience = "payments-api"
		o.Spec.Provider.TokenExchange = &v1alpha1.TokenExchangeSpec{RequestedTokenType: "urn:ietf:params:oauth:token-type:access_token"}
	})
	h.reconcile("tok")
	o := wantReady(h, "tok")
	last := srv.LastRequest()
	if last.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" ||
		last.Form.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt" ||
		last.Form.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token" || last.Form.Get("audience") != "payments-api" {
		t.Fatalf("exchange parameters %v", last.Form)
	}
	if got := lastIssued(t, srv); got.Subject != subjectOf(h.ns, "payments") {
		t.Fatalf("issued for subject %q", got.Subject)
	}
	if o.Status.IssuedTokenType == "" || o.Status.LastGrant != "urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Fatalf("status issuedTokenType %q lastGrant %q", o.Status.IssuedTokenType, o.Status.LastGrant)
	}
	// The exchanged token lives 2h but its subject 10 minutes: it expires,
	// for tokensync, with its subject, and is renewed before.
	if left := o.Status.ExpiresAt.Sub(o.Status.IssuedAt.Time); left > 11*time.Minute {
		t.Fatalf("the token is taken to live %s, beyond its ServiceAccount token's 10 minutes", left)
	}
	if o.Status.RenewAt.After(o.Status.ExpiresAt.Add(-time.Minute)) {
		t.Fatalf("renewal at %s, expiry at %s", o.Status.RenewAt, o.Status.ExpiresAt)
	}
	h.clock.SetTime(o.Status.RenewAt.Time.Add(time.Second))
	h.reconcile("tok")
	if n := len(srv.Issued()); n != 2 {
		t.Fatalf("%d tokens: no renewal before the subject expired", n)
	}
	h.wantNoServiceAccountToken(srv, "tok")
}

// TestChainedTokenExchange: another object's token is the subject. When it
// rotates, the exchanged token follows at once; it never outlives it.
func TestChainedTokenExchange(t *testing.T) {
	h, srv, base := keylessHarness(t, tokenserver.Options{ExpiresIn: 3600, Clients: map[string]string{"first": "s3cret", "exchanger": "ex-secret"}, ExchangeOwnTokens: true})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("first"), "client_secret": []byte("s3cret")})
	h.createSecret("ex-creds", "", map[string][]byte{"client_id": []byte("exchanger"), "client_secret": []byte("ex-secret")})
	h.createToken("first", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.createToken("chained", "ex-creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.Grant = v1alpha1.GrantTokenExchange
		o.Spec.Provider.TokenExchange = &v1alpha1.TokenExchangeSpec{SubjectTokenRef: &v1alpha1.LocalObjectReference{Name: "first"}}
	})
	// The subject is not ready yet: retried, not stalled.
	h.reconcile("chained")
	wantCondition(t, h.get("chained"), v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonSubjectTokenNotReady)

	h.reconcile("first")
	first := wantReady(h, "first")
	h.syncCache(first)
	h.clock.Step(5 * time.Second)
	h.reconcile("chained")
	o := wantReady(h, "chained")
	last := srv.LastRequest()
	if last.Form.Get("subject_token") != string(h.secret("first").Data[v1alpha1.AccessTokenKey]) ||
		last.Form.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatal("the subject token is not the first object's token")
	}
	if o.Status.ExpiresAt.After(first.Status.ExpiresAt.Time) {
		t.Fatalf("the exchanged token (until %s) outlives its subject (until %s)", o.Status.ExpiresAt, first.Status.ExpiresAt)
	}
	if reqs := h.r.tokensFor(h.ctx, "OAuthClientToken", keyIn(h.ns, "first")); len(reqs) != 1 || reqs[0].Name != "chained" {
		t.Fatalf("the subject's rotation queues %v", reqs)
	}

	// The subject rotates: the exchange follows at once.
	h.clock.Step(41 * time.Minute)
	h.reconcile("first")
	h.syncCache(h.get("first"))
	before := len(srv.Issued())
	h.reconcile("chained")
	if len(srv.Issued()) != before+1 || srv.LastRequest().Form.Get("subject_token") != string(h.secret("first").Data[v1alpha1.AccessTokenKey]) {
		t.Fatal("the exchange did not follow the subject's rotation")
	}
}
