package token

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/test/tokenserver"
)

func keyIn(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func (h *harness) createSecret(name string, typ corev1.SecretType, data map[string][]byte) {
	h.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Type: typ, Data: data}
	if err := k8sClient.Create(h.ctx, s); err != nil {
		h.t.Fatal(err)
	}
}

func TestTemplatesRenderTheSecret(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "tpl-client", "tpl-secret")
	o := h.createToken("tpl", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.Scopes = []string{"read", "write"}
		o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{
			"header":      "Authorization: {{ .TokenType }} {{ .AccessToken }}",
			"config.json": `{"token": {{ json .AccessToken }}, "expires": {{ json .ExpiresAt }}, "scope": {{ json .Scope }}, "ttl": {{ .ExpiresIn }}}`,
			".netrc":      "machine api.example.com login oauth password {{ .AccessToken }}",
		}}
	})
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	it := h.issued("tpl-client")[0]
	s := h.secret("tpl")
	if got := string(s.Data["header"]); got != "Authorization: Bearer "+it.AccessToken {
		t.Fatal("header key not rendered")
	}
	var cfg struct {
		Token, Expires, Scope string
		TTL                   int `json:"ttl"`
	}
	if err := json.Unmarshal(s.Data["config.json"], &cfg); err != nil {
		t.Fatalf("config.json is not JSON: %v", err)
	}
	if cfg.Token != it.AccessToken || cfg.Scope != "read write" || cfg.TTL != 3600 || cfg.Expires != formatTime(h.clock.Now().Add(time.Hour)) {
		t.Fatalf("config.json: scope %q ttl %d expires %q", cfg.Scope, cfg.TTL, cfg.Expires)
	}
	if _, ok := s.Data["access_token"]; ok || len(s.Data) != 3 {
		t.Fatalf("want exactly the template keys, got %v", keys(s.Data))
	}

	// A no-op reconcile makes no request and no write.
	h.writes.n.Store(0)
	h.reconcile(o.Name)
	if len(h.issued("tpl-client")) != 1 || h.writes.n.Load() != 0 {
		t.Fatal("a no-op reconcile requested or wrote")
	}

	// Editing a rendered key gets a new token (the token is kept nowhere else).
	s.Data["header"] = []byte("edited")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile(o.Name)
	if n := len(h.issued("tpl-client")); n != 2 {
		t.Fatalf("%d tokens issued, want 2", n)
	}
	if got := string(h.secret("tpl").Data["header"]); got != "Authorization: Bearer "+h.issued("tpl-client")[1].AccessToken {
		t.Fatal("edited key not re-rendered")
	}

	// Back to the default keys: the template keys go, the default ones come.
	o = h.get(o.Name)
	o.Spec.Target.Data = nil
	if err := k8sClient.Update(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(o)
	h.reconcile(o.Name)
	s = h.secret("tpl")
	if _, ok := s.Data["header"]; ok || len(s.Data["access_token"]) == 0 {
		t.Fatalf("keys after dropping templates: %v", keys(s.Data))
	}
}

func TestInvalidTemplateStallsBeforeAnyRequest(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "bad-tpl-client", "secret-1")
	o := h.createToken("tpl", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"token": "{{ .Password }}"}}
	})
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidTemplate)
	if !strings.Contains(c.Message, "Password") {
		t.Fatalf("message %q does not name the bad field", c.Message)
	}
	if len(h.issued("bad-tpl-client")) != 0 {
		t.Fatal("a token was requested for a template that cannot render")
	}
	o = h.get(o.Name)
	o.Spec.Target.Data = map[string]v1alpha1.DataTemplate{"token": "{{ .AccessToken | nosuchfunc }}"}
	if err := k8sClient.Update(h.ctx, o); err != nil {
		t.Fatal(err)
	}
	h.syncCache(o)
	h.reconcile(o.Name)
	wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidTemplate)
}

func TestRefreshTokenInTemplateOnlyWhenAsked(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "rt-secret"}, ExpiresIn: 600, IssueRefreshTokens: true, RefreshExpiresIn: 7200, IDTokens: true})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("rt-secret")})
	o := h.createToken("rt", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"access": "{{ .AccessToken }}", "refresh": "{{ .RefreshToken }}", "meta": "{{ .RefreshExpiresIn }} {{ .IDToken | len }}"}}
	})
	h.reconcile(o.Name)
	it := lastIssued(t, srv)
	if got := string(h.secret("rt").Data["refresh"]); got != it.RefreshToken {
		t.Fatal("the template did not get the refresh token")
	}
	if got := string(h.secret("rt").Data["meta"]); got == "7200 0" || !strings.HasPrefix(got, "7200 ") {
		t.Fatalf("meta = %q: want the refresh lifetime and a non-empty ID token", got)
	}
}

func TestRefreshTokensCanBeTurnedOff(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt": "rt-secret"}, ExpiresIn: 600, IssueRefreshTokens: true})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt"), "client_secret": []byte("rt-secret")})
	off := false
	o := h.createToken("rt", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Refresh = &v1alpha1.RefreshSpec{UseRefreshToken: &off}
	})
	h.reconcile(o.Name)
	h.clock.Step(401 * time.Second)
	h.reconcile(o.Name)
	if g := lastIssued(t, srv).GrantType; g != "client_credentials" {
		t.Fatalf("renewal used %q", g)
	}
	s := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, keyIn(h.ns, "rt-tokensync-state"), s); err == nil {
		t.Fatal("a state Secret was written with useRefreshToken false")
	}

	// Turned on, then off again: the state Secret kept meanwhile goes at
	// the next renewal.
	on := true
	h.edit("rt", func(o *v1alpha1.OAuthClientToken) { o.Spec.Refresh.UseRefreshToken = &on })
	h.clock.Step(401 * time.Second)
	h.reconcile(o.Name)
	h.secret("rt-tokensync-state")
	h.edit("rt", func(o *v1alpha1.OAuthClientToken) { o.Spec.Refresh.UseRefreshToken = &off })
	h.clock.Step(401 * time.Second)
	h.reconcile(o.Name)
	if h.secretOrNil("rt-tokensync-state") != nil {
		t.Fatal("the state Secret stayed after refresh tokens were turned off")
	}
}

func TestPasswordGrantFromCredentialsSecret(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"app": "app-secret"}, Users: map[string]string{"svc-user": "pa:ss/wo+rd"}, ExpiresIn: 600})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("app"), "client_secret": []byte("app-secret"), "user": []byte("svc-user")})
	o := h.createToken("pw", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.Grant = v1alpha1.GrantPassword
		o.Spec.CredentialsRef.UsernameKey = "user"
	})
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonCredentialsKeyMissing)
	if !strings.Contains(c.Message, `"password"`) {
		t.Fatalf("message %q does not name the missing key", c.Message)
	}
	s := h.secret("creds")
	s.Data["password"] = []byte("pa:ss/wo+rd")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.clock.Step(time.Hour)
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	if it := lastIssued(t, srv); it.GrantType != "password" || string(h.secret("pw").Data["access_token"]) != it.AccessToken {
		t.Fatalf("grant %q", it.GrantType)
	}
}

func TestJSONRequestsAndNestedResponses(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"js": "js-secret"}, RequireJSON: true, ResponseWrapper: "data", ExpiresIn: 1200,
		RequiredHeaders: map[string]string{"X-Api-Version": "2"}, RequiredResources: []string{"https://wallet.example/"}})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("js"), "client_secret": []byte("js-secret")})
	o := h.createToken("js", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.RequestFormat = v1alpha1.RequestFormatJSON
		o.Spec.Provider.Headers = map[string]v1alpha1.HeaderValue{"X-Api-Version": "2"}
		o.Spec.Provider.Resources = []string{"https://wallet.example/"}
		o.Spec.Provider.ResponseFields = &v1alpha1.ResponseFields{AccessToken: "data.access_token", ExpiresIn: "data.expires_in", TokenType: "data.token_type"}
	})
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	if !srv.LastRequest().JSON || string(h.secret("js").Data["access_token"]) != lastIssued(t, srv).AccessToken {
		t.Fatal("want a JSON request and the issued token in the Secret")
	}
	if got := o.Status.ExpiresAt.Sub(o.Status.IssuedAt.Time); got != 1200*time.Second {
		t.Fatalf("lifetime %s", got)
	}
}

func TestJWTExpiryIsUsedWithoutExpiresIn(t *testing.T) {
	h := newHarness(t)
	_, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"jwt": "jwt-secret"}, JWTAccessTokens: true, JWTLifetime: 7200})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("jwt"), "client_secret": []byte("jwt-secret")})
	o := h.createToken("jwt", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	if got := o.Status.ExpiresAt.Sub(o.Status.IssuedAt.Time); got != 2*time.Hour {
		t.Fatalf("lifetime %s, want the JWT's 2h rather than the 1h default", got)
	}
}

func TestPrivateKeyJWTFromCredentialsSecret(t *testing.T) {
	h := newHarness(t)
	signer, keyPEM, err := tokenserver.GenerateClientKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	srv, base := providerServer(h, tokenserver.Options{ClientKeys: map[string]crypto.PublicKey{"pkjwt": signer.Public()}, ExpiresIn: 600})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("pkjwt"), "private_key": keyPEM})
	o := h.createToken("pkjwt", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodPrivateKeyJWT
		o.Spec.Provider.ClientAssertion = &v1alpha1.ClientAssertionSpec{KeyID: "key-2026"}
	})
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	if last := srv.LastRequest(); last.AuthMethod != tokenserver.AuthPrivateKeyJWT || last.AssertionHeader["kid"] != "key-2026" {
		t.Fatalf("auth %q header %v", last.AuthMethod, last.AssertionHeader)
	}

	// A key that does not parse is InvalidCredentials, and never quoted.
	s := h.secret("creds")
	s.Data["private_key"] = []byte("-----BEGIN PRIVATE KEY-----\nMIIBroken\n-----END PRIVATE KEY-----\n")
	if err := k8sClient.Update(h.ctx, s); err != nil {
		t.Fatal(err)
	}
	h.syncCache(s)
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidCredentials)
	if strings.Contains(c.Message, "MIIBroken") {
		t.Fatal("the key was quoted")
	}
}

func TestMutualTLSWithPrivateCA(t *testing.T) {
	h := newHarness(t)
	ca, err := tokenserver.NewCA("tokensync test CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.ClientCert("phoenix-client")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ca.ServerCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := tokenserver.New(tokenserver.Options{TLSClientAuth: map[string]string{"phoenix": "phoenix-client"}, ExpiresIn: 3600, Now: h.clock.Now})
	base, stop := srv.StartTLS(sc, ca.Pool())
	t.Cleanup(stop)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "phoenix-ca", Namespace: h.ns}, Data: map[string]string{"ca.crt": string(ca.CertPEM)}}
	if err := k8sClient.Create(h.ctx, cm); err != nil {
		t.Fatal(err)
	}
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("phoenix")})
	o := h.createToken("mtls", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/oauth/token"
		o.Spec.Provider.AuthMethod = v1alpha1.AuthMethodTLSClientAuth
		o.Spec.Provider.TLS = &v1alpha1.TLSSpec{
			CABundle:                   &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeySelector{Name: "phoenix-ca"}},
			ClientCertificateSecretRef: &v1alpha1.LocalSecretReference{Name: "phoenix-tls"},
		}
	})
	h.reconcile(o.Name)
	wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonTLSConfigInvalid)

	h.createSecret("phoenix-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM})
	h.clock.Step(time.Hour)
	h.reconcile(o.Name)
	wantReady(h, o.Name)
	if last := srv.LastRequest(); last.AuthMethod != tokenserver.AuthTLSClient || last.ClientCertCN != "phoenix-client" {
		t.Fatalf("auth %q CN %q", last.AuthMethod, last.ClientCertCN)
	}
	if string(h.secret("mtls").Data["access_token"]) != lastIssued(t, srv).AccessToken {
		t.Fatal("the Secret does not hold the issued token")
	}
}

func TestDiscoveryFailureIsReported(t *testing.T) {
	h := newHarness(t)
	_, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"d": "d-secret"}, Path: "/token"})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("d"), "client_secret": []byte("d-secret")})
	o := h.createToken("disc", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = ""
		o.Spec.Provider.IssuerURL = base
	})
	h.reconcile(o.Name)
	c := wantCondition(t, h.get(o.Name), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonDiscoveryFailed)
	if !strings.Contains(c.Message, "/.well-known/openid-configuration") {
		t.Fatalf("message %q", c.Message)
	}
}

// TestJWTExpiryIsExact: the expiry recorded is the JWT's exp to the
// second, also when the answer arrives in the middle of a second.
func TestJWTExpiryIsExact(t *testing.T) {
	h := newHarness(t)
	h.clock.Step(700 * time.Millisecond)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"jwt-exact": "jwt-secret"}, JWTAccessTokens: true, JWTLifetime: 600})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("jwt-exact"), "client_secret": []byte("jwt-secret")})
	o := h.createToken("jwt", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.reconcile(o.Name)
	o = wantReady(h, o.Name)
	exp, ok := jwtExp(t, lastIssued(t, srv).AccessToken)
	if !ok {
		t.Fatal("the access token is not a JWT with exp")
	}
	if !o.Status.ExpiresAt.Time.Equal(exp) {
		t.Fatalf("expiresAt %s, the JWT's exp is %s", o.Status.ExpiresAt.UTC(), exp.UTC())
	}
	if got := string(h.secret("jwt").Data[v1alpha1.ExpiresAtKey]); got != exp.UTC().Format(time.RFC3339) {
		t.Fatalf("the Secret's expires_at %s, exp %s", got, exp.UTC())
	}
}

// jwtExp reads the exp claim of a JWT, unverified.
func jwtExp(t *testing.T, token string) (time.Time, bool) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(b, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}
