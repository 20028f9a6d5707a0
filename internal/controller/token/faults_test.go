package token

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/renewal"
	"github.com/tokensync/tokensync/test/tokenserver"
)

// faultEndpoint is a token endpoint (a tokenserver behind a FaultServer,
// over TLS, on the harness clock) that can be made to fail and recover.
type faultEndpoint struct {
	h     *harness
	fs    *tokenserver.FaultServer
	ts    *httptest.Server
	addr  string
	url   string
	fault tokenserver.Fault
	down  bool // failing means a closed listener, not a fault
}

func newFaultEndpoint(h *harness, clientID, clientSecret string) *faultEndpoint {
	h.t.Helper()
	srv := tokenserver.New(tokenserver.Options{
		Clients:   map[string]string{clientID: clientSecret},
		ExpiresIn: 3600,
		Now:       h.clock.Now,
	})
	e := &faultEndpoint{h: h, fs: tokenserver.NewFaultServer(srv)}
	e.ts = httptest.NewTLSServer(e.fs)
	e.addr = e.ts.Listener.Addr().String()
	e.url = e.ts.URL + "/token"
	h.t.Cleanup(func() { e.ts.Close() })
	return e
}

// fail starts the failure: the fault on every request, or the listener
// closed (connection refused) for an endpoint that is down.
func (e *faultEndpoint) fail() {
	if e.down {
		e.ts.Close()
		return
	}
	e.fs.InjectFaults(-1, e.fault)
}

// recover ends the failure: the faults are cleared, or the endpoint is
// served again on the same address.
func (e *faultEndpoint) recover() {
	e.h.t.Helper()
	if !e.down {
		e.fs.ClearFaults()
		return
	}
	l, err := net.Listen("tcp", e.addr)
	if err != nil {
		e.h.t.Fatalf("listening again on %s: %v", e.addr, err)
	}
	ts := httptest.NewUnstartedServer(e.fs)
	_ = ts.Listener.Close()
	ts.Listener = l
	ts.StartTLS()
	e.ts = ts
}

// wantRetryDelay is the backoff rule the controller documents: 2s doubling
// per failed attempt up to 5m; while the token is valid, at most half its
// remaining lifetime (floored at the min refresh interval) so that a retry
// comes before it expires; never sooner than the endpoint's Retry-After.
func wantRetryDelay(attempt int32, left, retryAfter time.Duration) time.Duration {
	d := renewal.BaseBackoff
	for i := int32(1); i < attempt && d < renewal.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, renewal.MaxBackoff)
	if left > 0 && d > left/2 {
		d = max(left/2, DefaultMinRefreshInterval)
	}
	return max(d, retryAfter)
}

type faultCase struct {
	name   string
	down   bool
	fault  tokenserver.Fault
	reason string
	// timeout is spec.provider.timeout; zero leaves the default.
	timeout time.Duration
	// header, when set, builds the fault's header at the time of failure.
	header func(now time.Time) http.Header
	// retryAfter is the delay the endpoint asks for when asked at now.
	retryAfter func(now time.Time) time.Duration
	// maxAttemptTime bounds the wall time of one failing reconcile.
	maxAttemptTime time.Duration
}

func faultCases() []faultCase {
	return []faultCase{
		{name: "down", down: true, reason: v1alpha1.ReasonTokenEndpointUnavailable},
		{
			name:  "slow",
			fault: tokenserver.Fault{Delay: 5 * time.Second}, timeout: time.Second,
			reason:         v1alpha1.ReasonTokenEndpointUnavailable,
			maxAttemptTime: 4 * time.Second,
		},
		{
			name:   "500",
			fault:  tokenserver.Fault{Status: http.StatusInternalServerError, Body: `{"error":"server_error","error_description":"database on fire"}`},
			reason: v1alpha1.ReasonTokenEndpointUnavailable,
		},
		{name: "reset", fault: tokenserver.Fault{Reset: true}, reason: v1alpha1.ReasonTokenEndpointUnavailable},
		{
			name:       "429 Retry-After seconds",
			fault:      tokenserver.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"120"}}, Body: `{"error":"slow_down"}`},
			reason:     v1alpha1.ReasonTokenEndpointUnavailable,
			retryAfter: func(time.Time) time.Duration { return 120 * time.Second },
		},
		func() faultCase {
			var until time.Time
			return faultCase{
				name:   "503 Retry-After date",
				fault:  tokenserver.Fault{Status: http.StatusServiceUnavailable, Body: "Service Unavailable"},
				reason: v1alpha1.ReasonTokenEndpointUnavailable,
				header: func(now time.Time) http.Header {
					until = now.Add(10 * time.Minute)
					return http.Header{"Retry-After": {until.UTC().Format(http.TimeFormat)}}
				},
				retryAfter: func(now time.Time) time.Duration {
					return max(until.Truncate(time.Second).Sub(now), 0)
				},
			}
		}(),
		{
			name: "HTML 502",
			fault: tokenserver.Fault{Status: http.StatusBadGateway, Header: http.Header{"Content-Type": {"text/html"}},
				Body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"},
			reason: v1alpha1.ReasonTokenEndpointUnavailable,
		},
		{
			name:   "200 without access_token",
			fault:  tokenserver.Fault{Status: http.StatusOK, Body: `{"token_type":"Bearer","expires_in":3600}`},
			reason: v1alpha1.ReasonInvalidTokenResponse,
		},
		{
			name: "10 MiB 200 body",
			fault: tokenserver.Fault{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
				Body: `{"access_token":"junk","padding":["0123456789abcdef",`, BodySize: 10 << 20},
			reason:         v1alpha1.ReasonInvalidTokenResponse,
			maxAttemptTime: 3 * time.Second,
		},
	}
}

// TestFaultsKeepTheTokenAndBackOff drives each endpoint fault through a
// whole failure streak: from renewal time, past expiry, to recovery.
func TestFaultsKeepTheTokenAndBackOff(t *testing.T) {
	for i, tc := range faultCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runFaultCase(t, i, tc)
		})
	}
}

func runFaultCase(t *testing.T, i int, tc faultCase) {
	h := newHarness(t)
	clientID := "fault-client-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-")
	clientSecret := "Fault-S3cret-" + string(rune('a'+i)) + "-do-not-leak"
	e := newFaultEndpoint(h, clientID, clientSecret)
	e.down, e.fault = tc.down, tc.fault
	h.createCreds("creds", clientID, clientSecret)
	h.createToken("tok", "creds", func(o *v1alpha1.OAuthClientToken) {
		o.Spec.Provider.TokenURL = e.url
		if tc.timeout > 0 {
			o.Spec.Provider.Timeout = &metav1.Duration{Duration: tc.timeout}
		}
	})

	// A first good token.
	h.reconcile("tok")
	o := h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	first := lastIssued(t, e.fs.Server()).AccessToken
	if got := string(h.secret("tok").Data["access_token"]); got != first {
		t.Fatal("the Secret does not hold the first token")
	}
	expiresAt := o.Status.ExpiresAt.Time
	secrets := []string{first, clientSecret}
	noLeak := func(when string) {
		t.Helper()
		b, err := json.Marshal(h.get("tok").Status)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Fatalf("%s: status carries a credential or token: %s", when, b)
			}
		}
	}

	// Renewal time (2/3 of the hour): the endpoint starts failing.
	h.clock.Step(41 * time.Minute)
	if tc.header != nil {
		e.fault.Header = tc.header(h.clock.Now())
	}
	e.fail()

	var (
		prev      time.Duration
		doubled   int
		delays    []time.Duration
		throttled = true // every attempt got a Retry-After
		delay     time.Duration
		attempts  int32
		expired   bool
	)
	for !expired {
		attempts++
		if attempts > 40 {
			t.Fatal("the token never expired: the retries do not move the clock forward")
		}
		now := h.clock.Now()
		left := expiresAt.Sub(now)
		before := e.fs.Requests()
		started := time.Now()
		res := h.reconcile("tok") // (a): fatal on a Reconcile error
		took := time.Since(started)
		if tc.maxAttemptTime > 0 && took > tc.maxAttemptTime {
			t.Fatalf("attempt %d took %v, want at most %v", attempts, took, tc.maxAttemptTime)
		}
		if !tc.down && e.fs.Requests() == before {
			t.Fatalf("attempt %d sent no token request", attempts)
		}
		o := h.get("tok")
		if o.Status.FailedAttempts != attempts {
			t.Fatalf("failedAttempts = %d, want %d", o.Status.FailedAttempts, attempts)
		}
		// (b) the Secret keeps the first token, expired or not.
		if string(h.secret("tok").Data["access_token"]) != first {
			t.Fatalf("attempt %d: the Secret no longer holds the first token", attempts)
		}
		// (c) Ready while the token is valid; Reconciling says why.
		c := wantCondition(t, o, v1alpha1.ConditionReconciling, metav1.ConditionTrue, tc.reason)
		if condition(o, v1alpha1.ConditionStalled) != nil {
			t.Fatalf("Stalled set for a transient failure: %q", c.Message)
		}
		expired = left <= 0
		if !expired {
			wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
		} else {
			// (f) expired with the endpoint still failing.
			wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired)
		}
		noLeak("after a failed attempt")

		// (d) exponential backoff, capped before expiry, at least Retry-After.
		var ra time.Duration
		if tc.retryAfter != nil {
			ra = tc.retryAfter(now)
		}
		delay = res.RequeueAfter
		if want := wantRetryDelay(attempts, left, ra); delay != want {
			t.Fatalf("attempt %d (token left %v, Retry-After %v): retry in %v, want %v", attempts, left, ra, delay, want)
		}
		if delay < ra {
			t.Fatalf("attempt %d: retry in %v, sooner than Retry-After %v", attempts, delay, ra)
		}
		if left > 0 && delay > max(left/2, DefaultMinRefreshInterval, ra) {
			t.Fatalf("attempt %d: retry in %v with %v left: more than half the remaining lifetime", attempts, delay, left)
		}
		if left > 2*DefaultMinRefreshInterval && ra < left && delay >= left {
			t.Fatalf("attempt %d: retry in %v comes after expiry in %v", attempts, delay, left)
		}
		if ra == 0 {
			throttled = false
		}
		if prev > 0 && ra == 0 && delay == 2*prev {
			doubled++
		}
		prev = delay
		delays = append(delays, delay)
		if attempts == 1 {
			t.Logf("Reconciling: %s", c.Message)
		}

		// (e) a reconcile before the delay has passed sends nothing.
		requests := e.fs.Requests()
		early := delay / 2
		h.clock.Step(early)
		res = h.reconcile("tok")
		if e.fs.Requests() != requests {
			t.Fatalf("attempt %d: a reconcile %v into a %v backoff sent a token request", attempts, early, delay)
		}
		if res.RequeueAfter != delay-early {
			t.Fatalf("attempt %d: held back for %v, want the rest of the backoff %v", attempts, res.RequeueAfter, delay-early)
		}
		if got := h.get("tok").Status.FailedAttempts; got != attempts {
			t.Fatalf("a held-back reconcile changed failedAttempts to %d", got)
		}
		h.clock.Step(delay - early)
	}
	if !throttled && doubled < 5 {
		t.Fatalf("the delay doubled %d times over %d attempts, want exponential growth", doubled, attempts)
	}
	t.Logf("retry delays until expiry: %v", delays)

	// (g) the endpoint recovers: the next reconcile after the delay
	// (the clock is already past it) gets a new token.
	e.recover()
	before := e.fs.Requests()
	res := h.reconcile("tok")
	if e.fs.Requests() != before+1 {
		t.Fatalf("recovery sent %d requests, want 1", e.fs.Requests()-before)
	}
	o = h.get("tok")
	wantCondition(t, o, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTokenReady)
	if condition(o, v1alpha1.ConditionReconciling) != nil || condition(o, v1alpha1.ConditionStalled) != nil {
		t.Fatalf("conditions after recovery: %+v", o.Status.Conditions)
	}
	if o.Status.FailedAttempts != 0 || o.Status.LastFailureTime != nil {
		t.Fatalf("failure state not cleared: failedAttempts %d lastFailureTime %v", o.Status.FailedAttempts, o.Status.LastFailureTime)
	}
	second := lastIssued(t, e.fs.Server()).AccessToken
	if second == first || string(h.secret("tok").Data["access_token"]) != second {
		t.Fatal("the Secret does not hold the new token after recovery")
	}
	if !o.Status.ExpiresAt.Time.After(h.clock.Now()) || res.RequeueAfter <= 0 {
		t.Fatalf("expiresAt %v, requeue %v after recovery", o.Status.ExpiresAt, res.RequeueAfter)
	}
	secrets = append(secrets, second)
	noLeak("after recovery")

	ev := h.events()
	failures, recovered := 0, 0
	for _, s := range ev {
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Fatalf("event carries a credential or token: %q", s)
			}
		}
		if strings.Contains(s, v1alpha1.EventTokenRequestFailed) {
			failures++
		}
		if strings.Contains(s, v1alpha1.EventTokenRecovered) {
			recovered++
		}
	}
	if recovered != 1 || !strings.Contains(ev[len(ev)-1], v1alpha1.EventTokenRecovered) {
		t.Fatalf("want one TokenRecovered event, last; events: %q", ev)
	}
	if failures != 1 {
		t.Fatalf("%d TokenRequestFailed events for one failure streak, want 1: %q", failures, ev)
	}
}
