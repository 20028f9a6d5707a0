package token

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/secrets"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// blackHole accepts connections and never answers.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "https://" + l.Addr().String() + "/token"
}

// TestBlackHoleTenantCannotDelayOthers: 100 objects in one namespace aim at
// endpoints that never answer; every object of another namespace is still
// renewed on time. Each token request is bounded by the client's
// MaxTimeout, and one namespace holds at most MaxRequestsPerNamespace of
// the workers.
func TestBlackHoleTenantCannotDelayOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute")
	}
	hostile, victim := newHarness(t), newHarness(t)
	srv, base := providerServer(victim, tokenserver.Options{Clients: map[string]string{"victim": "s3cret"}, ExpiresIn: 24, Now: time.Now})
	hostile.createSecret("creds", "", map[string][]byte{"client_id": []byte("hostile"), "client_secret": []byte("x")})
	victim.createSecret("creds", "", map[string][]byte{"client_id": []byte("victim"), "client_secret": []byte("s3cret")})
	run := startControllerWith(t, []string{hostile.ns, victim.ns}, func(r *Reconciler, o *crcontroller.Options) {
		r.Tokens = &oauth.Client{HTTPClient: httpClient, MaxTimeout: 3 * time.Second, Limiter: &oauth.HostLimiter{MaxInFlight: 8}}
		r.MaxRequestsPerNamespace = 2
		o.MaxConcurrentReconciles = 4
	})
	// Spread over 25 hosts, so that no per-host limit holds them back.
	var holes []string
	for range 25 {
		holes = append(holes, blackHole(t))
	}
	for i := range 100 {
		hostile.createToken(fmt.Sprintf("hole-%03d", i), "creds", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Provider.TokenURL = holes[i%len(holes)]
			o.Spec.Provider.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
		})
	}
	// The hostile objects, created while the controller runs, are in the
	// queue first.
	time.Sleep(2 * time.Second)
	const victims = 5
	for i := range victims {
		victim.createToken(fmt.Sprintf("v%d", i), "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	}

	// Tokens live 24 s and are renewed 8 s before they expire (after 2/3
	// of the lifetime, floored at 10 s: at 16 s). For 60 s, every victim
	// must hold an unexpired token at all times once it first got one.
	deadline := time.Now().Add(60 * time.Second)
	first := map[string]bool{}
	worst := time.Duration(1 << 62)
	for time.Now().Before(deadline) {
		for i := range victims {
			name := fmt.Sprintf("v%d", i)
			o := victim.get(name)
			if o.Status.ExpiresAt == nil {
				if time.Since(deadline.Add(-60*time.Second)) > 10*time.Second && !first[name] {
					t.Fatalf("%s: no token 10 s after it was created", name)
				}
				continue
			}
			first[name] = true
			left := time.Until(o.Status.ExpiresAt.Time)
			worst = min(worst, left)
			if left <= 0 || !apimeta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReady) {
				t.Fatalf("%s: the token expired (%s ago) while another namespace's endpoint hung", name, -left)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	renewals := 0
	for _, it := range srv.Issued() {
		if it.ClientID == "victim" {
			renewals++
		}
	}
	if renewals < 3*victims {
		t.Fatalf("%d tokens for %d objects over 60 s of 24 s tokens: renewals were held up", renewals, victims)
	}
	t.Logf("worst time left on a victim's token: %s; %d tokens issued", worst.Round(100*time.Millisecond), renewals)
	_ = run
}

// TestHostileTemplates: the worst templates the API server admits end
// Stalled with InvalidTemplate, before any token is requested, and cost
// the manager little memory; those it can refuse, it refuses at
// admission.
func TestHostileTemplates(t *testing.T) {
	h := newHarness(t)
	h.createCreds("creds", "templates", "s3cret")
	for i, text := range []string{
		`{{range 300}}{{printf "%01000000d" 0}}{{end}}`,
		`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`,
		`{{$x := .AccessToken}}{{$x}}`,
	} {
		o := &v1alpha1.OAuthClientToken{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("refused-%d", i), Namespace: h.ns},
			Spec: v1alpha1.OAuthClientTokenSpec{
				CredentialsRef: &v1alpha1.CredentialsReference{Name: "creds"},
				Provider:       v1alpha1.ProviderSpec{TokenURL: tokenURL},
				Target:         &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"k": v1alpha1.DataTemplate(text)}},
			},
		}
		if err := k8sClient.Create(h.ctx, o); !apierrors.IsInvalid(err) {
			t.Fatalf("%q admitted: %v", text, err)
		}
	}
	admitted := map[string]string{
		"output":      strings.Repeat(`{{printf "%01000000d" 0}}`, 600),
		"one printf":  `{{printf "` + strings.Repeat("%1000000d", 1700) + `"}}`,
		"growth":      `{{printf "%0250000d" 0 | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc}}`,
		"token width": `{{printf "%0900000s" .AccessToken}}{{printf "%0900000s" .AccessToken}}`,
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for name, text := range admitted {
		obj := strings.ReplaceAll(name, " ", "-")
		h.createToken(obj, "creds", func(o *v1alpha1.OAuthClientToken) {
			o.Spec.Target = &v1alpha1.TargetSpec{Data: map[string]v1alpha1.DataTemplate{"k": v1alpha1.DataTemplate(text)}}
		})
		h.reconcile(obj)
		wantCondition(t, h.get(obj), v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidTemplate)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Fatalf("the reconciles allocated %d MiB", alloc>>20)
	}
	if n := len(h.issued("templates")); n != 0 {
		t.Fatalf("%d tokens requested for templates that cannot render", n)
	}
}

// TestRefreshTokensAreKeptOnlyWhereTheyServe: with the client-credentials
// grant, a refresh token the endpoint issues anyway is not stored (RFC 6749
// section 4.4.3); with the password grant it is, and used.
func TestRefreshTokensAreKeptOnlyWhereTheyServe(t *testing.T) {
	h := newHarness(t)
	srv, base := providerServer(h, tokenserver.Options{Clients: map[string]string{"rt-default": "s3cret"}, Users: map[string]string{"alice": "pw"}, ExpiresIn: 3600, IssueRefreshTokens: true, Now: h.clock.Now})
	h.createSecret("creds", "", map[string][]byte{"client_id": []byte("rt-default"), "client_secret": []byte("s3cret"), "username": []byte("alice"), "password": []byte("pw")})
	h.createToken("cc", "creds", func(o *v1alpha1.OAuthClientToken) { o.Spec.Provider.TokenURL = base + "/token" })
	h.createToken("pw", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = base + "/token"
		o.Spec.Provider.Grant = v1alpha1.GrantPassword
	})
	h.reconcile("cc")
	h.reconcile("pw")
	if h.secretOrNil(secrets.StateName("cc")) != nil {
		t.Fatal("a client-credentials refresh token was stored")
	}
	if h.secretOrNil(secrets.StateName("pw")) == nil {
		t.Fatal("the password grant's refresh token was not stored")
	}
	h.clock.Step(41 * time.Minute)
	h.reconcile("pw")
	if g := lastIssued(t, srv).GrantType; g != "refresh_token" {
		t.Fatalf("the password grant renewed with %q", g)
	}
}
