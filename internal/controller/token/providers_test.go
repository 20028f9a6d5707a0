package token

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// providerServer runs a tokenserver speaking one provider's dialect over
// TLS (trusted by the harness's token client), on the harness's clock.
func providerServer(h *harness, opts tokenserver.Options) (*tokenserver.Server, string) {
	h.t.Helper()
	if opts.Now == nil {
		opts.Now = h.clock.Now
	}
	srv := tokenserver.New(opts)
	ts := httptest.NewTLSServer(srv)
	h.t.Cleanup(ts.Close)
	return srv, ts.URL
}

// applySample creates the OAuthClientToken of a sample exactly as written,
// except that the scheme and host of its URL point at base, and its
// credentials Secret with the given data. It returns the object's name.
func applySample(h *harness, sample, base string, creds map[string]string) *v1alpha1.OAuthClientToken {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "samples", sample))
	if err != nil {
		h.t.Fatal(err)
	}
	o := &v1alpha1.OAuthClientToken{}
	if err := yaml.UnmarshalStrict(b, o); err != nil {
		h.t.Fatal(err)
	}
	b2, _ := url.Parse(base)
	for _, u := range []*string{&o.Spec.Provider.TokenURL, &o.Spec.Provider.IssuerURL} {
		if *u == "" {
			continue
		}
		parsed, err := url.Parse(*u)
		if err != nil {
			h.t.Fatal(err)
		}
		parsed.Scheme, parsed.Host = b2.Scheme, b2.Host
		*u = parsed.String()
	}
	data := map[string][]byte{}
	for k, v := range creds {
		data[k] = []byte(v)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.Spec.CredentialsRef.Name, Namespace: h.ns}, Data: data}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		h.t.Fatal(err)
	}
	o.Namespace = h.ns
	if err := k8sClient.Create(h.ctx, o); err != nil {
		h.t.Fatal(err)
	}
	h.syncCache(o)
	return o
}

// lastIssued is the last token a server issued.
func lastIssued(t *testing.T, srv *tokenserver.Server) tokenserver.IssuedToken {
	t.Helper()
	issued := srv.Issued()
	if len(issued) == 0 {
		t.Fatal("the server issued no token")
	}
	return issued[len(issued)-1]
}

func wantReady(h *harness, name string) *v1alpha1.OAuthClientToken {
	h.t.Helper()
	o := h.get(name)
	wantCondition(h.t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	return o
}

func TestProviderPaxful(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{
		Clients: map[string]string{"paxful-key": "paxful-secret"}, AllowPost: true,
		Discovery: "openid", Path: "/oauth2/token",
		JWTAccessTokens: true, JWTLifetime: 864000, ExpiresIn: 864000,
	})
	o := applySample(h, "oauth_v1alpha1_oauthclienttoken_paxful.yaml", base, map[string]string{"client_id": "paxful-key", "client_secret": "paxful-secret"})
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	it := lastIssued(t, srv)
	if srv.LastRequest().AuthMethod != tokenserver.AuthPost || len(it.Scopes) != 0 {
		t.Fatalf("auth %s scopes %v: want body credentials and no scope", srv.LastRequest().AuthMethod, it.Scopes)
	}
	if o.Status.TokenEndpoint != base+"/oauth2/token" {
		t.Fatalf("status.tokenEndpoint %q", o.Status.TokenEndpoint)
	}
	s := h.secret("paxful-token")
	if string(s.Data["access_token"]) != it.AccessToken || string(s.Data["Authorization"]) != "Bearer "+it.AccessToken {
		t.Fatal("the Secret does not hold the issued token in the sample's keys")
	}
	if string(s.Data["expires_at"]) != formatTime(h.clock.Now().Add(240*time.Hour)) {
		t.Fatalf("expires_at %s", s.Data["expires_at"])
	}
	if _, ok := s.Data["token_type"]; ok {
		t.Fatal("templates replace the default keys")
	}
	if srv.DiscoveryRequests() == 0 {
		t.Fatal("discovery was not used")
	}
}

func TestProviderPaxos(t *testing.T) {
	h := newHarness(t)
	scopes := []string{"conversion:read_conversion_stablecoin", "conversion:write_conversion_stablecoin"}
	srv, base := providerServer(h, tokenserver.Options{
		Clients: map[string]string{"paxos-id": "paxos-secret"}, AllowPost: true, ExpiresIn: 3600, AllowedScopes: scopes,
	})
	o := applySample(h, "oauth_v1alpha1_oauthclienttoken_paxos.yaml", base, map[string]string{"client_id": "paxos-id", "client_secret": "paxos-secret"})
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	it := lastIssued(t, srv)
	if got := srv.LastRequest().Form.Get("scope"); got != strings.Join(scopes, " ") {
		t.Fatalf("scope %q", got)
	}
	if string(h.secret("paxos-token").Data["access_token"]) != it.AccessToken || strings.Join(o.Status.Scopes, " ") != strings.Join(scopes, " ") {
		t.Fatal("Secret or status does not match what was issued")
	}
}

func TestProviderDjangoOAuthToolkitDialect(t *testing.T) {
	h := newHarness(t)
	secret := "s:e/c+r et"
	srv, base := providerServer(h, tokenserver.Options{
		Clients: map[string]string{"payments": secret}, AllowBasic: true, ExpiresIn: 36000, AllowedScopes: []string{"read", "write", "admin"},
	})
	o := applySample(h, "oauth_v1alpha1_oauthclienttoken_django.yaml", base, map[string]string{"client_id": "payments", "client_secret": secret})
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	it := lastIssued(t, srv)
	if srv.LastRequest().AuthMethod != tokenserver.AuthBasic || string(h.secret("payments-token").Data["access_token"]) != it.AccessToken {
		t.Fatal("want Basic credentials and the issued token in the Secret")
	}
	if got := h.get(o.Name).Status.ExpiresAt.Time; !got.Equal(h.clock.Now().Add(36000 * time.Second)) {
		t.Fatalf("expiresAt %s", got)
	}
}

func TestProviderPaysafe(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{
		Clients:    map[string]string{"liberty-client": "pay:safe/secret+1"},
		AllowBasic: true, Path: "/digitalwallets/v1/auth/brands/liberty/token",
		GrantType: "CLIENT_CREDENTIALS", RefreshGrantType: "REFRESH_TOKEN",
		ExpiresIn: 900, IssueRefreshTokens: true, RefreshExpiresIn: 3600, IDTokens: true,
	})
	o := applySample(h, "oauth_v1alpha1_oauthclienttoken_paysafe.yaml", base, map[string]string{"client_id": "liberty-client", "client_secret": "pay:safe/secret+1"})
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	first := lastIssued(t, srv)
	if first.GrantType != "CLIENT_CREDENTIALS" || o.Status.LastGrant != "CLIENT_CREDENTIALS" {
		t.Fatalf("grant %q, status %q", first.GrantType, o.Status.LastGrant)
	}
	target := h.secret("paysafe-liberty-token")
	if string(target.Data["access_token"]) != first.AccessToken {
		t.Fatal("the Secret does not hold the issued token")
	}
	for k, v := range target.Data {
		if string(v) == first.RefreshToken {
			t.Fatalf("the refresh token is in the target Secret (key %s)", k)
		}
	}
	state := h.secret("paysafe-liberty-token-tokensync-state")
	if string(state.Data["refresh_token"]) != first.RefreshToken || state.Annotations[v1alpha1.OwnerAnnotation] != o.Name || len(state.OwnerReferences) != 1 {
		t.Fatal("the state Secret does not hold the refresh token, or is not owned")
	}

	// At renewal (2/3 of 900 s) the refresh token is used.
	h.clock.Step(601 * time.Second)
	h.reconcile(o.Name)
	second := lastIssued(t, srv)
	if second.GrantType != "REFRESH_TOKEN" || h.get(o.Name).Status.LastGrant != "REFRESH_TOKEN" {
		t.Fatalf("renewal used %q", second.GrantType)
	}
	if string(h.secret("paysafe-liberty-token").Data["access_token"]) != second.AccessToken ||
		string(h.secret("paysafe-liberty-token-tokensync-state").Data["refresh_token"]) != second.RefreshToken {
		t.Fatal("renewal did not store the new access and refresh tokens")
	}

	// A refused refresh token (invalid_grant) falls back to the primary grant
	// in the same reconcile, with no failure reported.
	srv.RevokeRefreshTokens()
	h.clock.Step(601 * time.Second)
	h.reconcile(o.Name)
	third := lastIssued(t, srv)
	o = wantReady(h, o.Name)
	if third.GrantType != "CLIENT_CREDENTIALS" || o.Status.FailedAttempts != 0 {
		t.Fatalf("fallback used %q, failures %d", third.GrantType, o.Status.FailedAttempts)
	}

	// An expired refresh token is not even tried.
	before := srv.Requests()
	h.clock.Step(3601 * time.Second)
	h.reconcile(o.Name)
	if lastIssued(t, srv).GrantType != "CLIENT_CREDENTIALS" || srv.Requests() != before+1 {
		t.Fatal("an expired refresh token was sent")
	}

	// SCA: a 401 challenge ends Stalled with InteractionRequired, the
	// token already in the Secret stays.
	kept := string(h.secret("paysafe-liberty-token").Data["access_token"])
	srv.SetSCAChallenge(true)
	h.clock.Step(3601 * time.Second)
	h.reconcile(o.Name)
	o = h.get(o.Name)
	c := wantCondition(t, o, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInteractionRequired)
	if !strings.Contains(c.Message, "SCA") || strings.Contains(c.Message, "auth-param1") {
		t.Fatalf("message %q", c.Message)
	}
	if string(h.secret("paysafe-liberty-token").Data["access_token"]) != kept {
		t.Fatal("the stored token was removed")
	}
	// Not retried in a loop: the next attempt waits for the stalled backoff.
	before = srv.Requests()
	h.reconcile(o.Name)
	if srv.Requests() != before {
		t.Fatal("an interaction-required failure was retried at once")
	}

	// No access or refresh token, nor the client secret, in status or events.
	status, _ := json.Marshal(h.get(o.Name).Status)
	seen := string(status) + strings.Join(h.events(), "\n")
	for _, it := range srv.Issued() {
		for _, secret := range []string{it.AccessToken, it.RefreshToken, "pay:safe/secret+1"} {
			if secret != "" && strings.Contains(seen, secret) {
				t.Fatal("a token or the client secret is in status or events")
			}
		}
	}
}

func TestProviderPhoenix(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{
		Clients: map[string]string{"phoenix-id": "phoenix-secret"}, AllowPost: true, ExpiresIn: 3600,
		AllowedScopes: []string{"wallets:read", "wallets:write"},
	})
	o := applySample(h, "oauth_v1alpha1_oauthclienttoken_phoenix.yaml", base, map[string]string{"client_id": "phoenix-id", "client_secret": "phoenix-secret"})
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	it := lastIssued(t, srv)
	if string(h.secret("phoenix-token").Data["access_token"]) != it.AccessToken {
		t.Fatal("the Secret does not hold the issued token")
	}
	// Renewed 5 minutes before the hour is up.
	if got := o.Status.RenewAt.Sub(o.Status.IssuedAt.Time); got != 55*time.Minute {
		t.Fatalf("renewal after %s, want 55m", got)
	}
}
