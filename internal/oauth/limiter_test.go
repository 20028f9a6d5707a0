package oauth

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// throttled checks that err is a KindThrottled *Error and returns it.
func throttled(t *testing.T, err error) *Error {
	t.Helper()
	e := mustError(t, err)
	if e.Kind != KindThrottled || e.RetryAfter <= 0 || e.StatusCode != 0 {
		t.Fatalf("got Kind=%s RetryAfter=%s Status=%d (%v), want Throttled with a RetryAfter", e.Kind, e.RetryAfter, e.StatusCode, e)
	}
	return e
}

func TestHostLimiterBoundsTheRateWithoutWaiting(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{})
	now := fixedNow
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := &Client{HTTPClient: NewHTTPClient(), Now: clock, Limiter: &HostLimiter{Rate: rate.Limit(20), Burst: 2}}
	req := func(i int) Request {
		return Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, Scopes: []string{string(rune('a' + i))}, Timeout: 5 * time.Second}
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 22)
	for i := range 22 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Token(context.Background(), req(i))
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("22 calls took %s: the limiter waited", took)
	}
	// Burst 2: two went out; the others got distinct slots in the next
	// second (20/s), unsent.
	if n := srv.Requests(); n != 2 {
		t.Fatalf("%d requests reached the server, want 2", n)
	}
	seen := map[time.Duration]bool{}
	var retry []int
	for i, err := range errs {
		if err == nil {
			continue
		}
		e := throttled(t, err)
		if e.RetryAfter > time.Second+time.Millisecond || seen[e.RetryAfter] {
			t.Errorf("RetryAfter %s (seen before: %t)", e.RetryAfter, seen[e.RetryAfter])
		}
		seen[e.RetryAfter] = true
		retry = append(retry, i)
	}
	if len(retry) != 20 {
		t.Fatalf("%d throttled, want 20", len(retry))
	}
	// Coming back when told, each uses the slot booked for it: all go
	// out, without taking more slots than the rate allows.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	for _, i := range retry {
		if _, err := c.Token(context.Background(), req(i)); err != nil {
			t.Fatalf("call %d after its RetryAfter: %v", i, err)
		}
	}
	if n := srv.Requests(); n != 22 {
		t.Fatalf("%d requests reached the server, want 22", n)
	}
	// A new caller now gets a slot after those booked ones, not at once.
	throttled(t, func() error { _, err := c.Token(context.Background(), req(30)); return err }())
	if n := srv.Requests(); n != 22 {
		t.Fatalf("a throttled request was sent")
	}
}

func TestHostLimiterNeverSleeps(t *testing.T) {
	srv, u := startTokenServer(t, tokenserver.Options{})
	c := &Client{HTTPClient: NewHTTPClient(), Limiter: &HostLimiter{Rate: rate.Limit(0.1), Burst: 1}}
	mustToken(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	start := time.Now()
	_, err := c.Token(context.Background(), Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret, Timeout: time.Minute})
	e := throttled(t, err)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("a throttled call took %s", took)
	}
	if e.RetryAfter < 5*time.Second || e.RetryAfter > 10*time.Second || srv.Requests() != 1 {
		t.Fatalf("got %v, %d requests sent", e, srv.Requests())
	}
	// Discovery requests share the limit, and fail the same way.
	_, err = (&Discovery{Client: c}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: u})
	throttled(t, err)
}

// blocking is a token endpoint whose answers wait until release.
func blocking(t *testing.T) (url string, inFlight *atomic.Int32, release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	inFlight = &atomic.Int32{}
	u, _ := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		reply(200, "application/json", `{"access_token":"a"}`)(w, r)
	})
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return u, inFlight, release
}

// busy starts n calls that stay in flight until release, and waits until
// the server sees them.
func busy(t *testing.T, c *Client, req Request, n int, inFlight *atomic.Int32) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	before := inFlight.Load()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Token(context.Background(), req); err != nil {
				t.Errorf("in-flight call: %v", err)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < before+int32(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in flight, want %d", inFlight.Load()-before, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &wg
}

func TestHostLimiterCapsRequestsInFlight(t *testing.T) {
	u, inFlight, release := blocking(t)
	c := &Client{HTTPClient: NewHTTPClient(), Limiter: &HostLimiter{MaxInFlight: 2, MaxInFlightPerTenant: 2}}
	req := request(u, AuthMethodBasic)
	wg := busy(t, c, req, 2, inFlight)
	start := time.Now()
	_, err := c.Token(context.Background(), req)
	e := throttled(t, err)
	if e.RetryAfter != ThrottleRetryAfter || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("got %v after %s", e, time.Since(start))
	}
	if n := inFlight.Load(); n != 2 {
		t.Fatalf("%d requests in flight, want 2", n)
	}
	// Another host is not affected.
	other, _ := startHandler(t, reply(200, "application/json", `{"access_token":"b"}`))
	mustToken(t, c, request(other, AuthMethodBasic))
	release()
	wg.Wait()
	// The slots are free again.
	mustToken(t, c, req)
}

func TestHostLimiterSharesSlotsBetweenTenants(t *testing.T) {
	u, inFlight, release := blocking(t)
	// Four slots; a tenant's share is half of them by default.
	c := &Client{HTTPClient: NewHTTPClient(), Limiter: &HostLimiter{MaxInFlight: 4}}
	a := request(u, AuthMethodBasic)
	a.Tenant = "team-a"
	wg := busy(t, c, a, 2, inFlight)
	e := throttled(t, func() error { _, err := c.Token(context.Background(), a); return err }())
	if e.RetryAfter != ThrottleRetryAfter {
		t.Fatalf("RetryAfter %s", e.RetryAfter)
	}
	b := a
	b.Tenant = "team-b"
	wg2 := busy(t, c, b, 2, inFlight)
	// Now the host is full for everyone.
	cReq := a
	cReq.Tenant = "team-c"
	throttled(t, func() error { _, err := c.Token(context.Background(), cReq); return err }())
	release()
	wg.Wait()
	wg2.Wait()
	// Requests without a tenant count only against the host's limit.
	u2, inFlight2, release2 := blocking(t)
	none := request(u2, AuthMethodBasic)
	wg3 := busy(t, c, none, 4, inFlight2)
	throttled(t, func() error { _, err := c.Token(context.Background(), none); return err }())
	release2()
	wg3.Wait()
}

func TestHostLimiterTenantShare(t *testing.T) {
	for _, tc := range []struct{ max, perTenant, want int }{{0, 0, 0}, {1, 0, 1}, {2, 0, 1}, {8, 0, 4}, {9, 0, 5}, {8, 3, 3}, {0, 2, 2}} {
		if got := (&HostLimiter{MaxInFlight: tc.max, MaxInFlightPerTenant: tc.perTenant}).perTenant(); got != tc.want {
			t.Errorf("MaxInFlight %d, MaxInFlightPerTenant %d: share %d, want %d", tc.max, tc.perTenant, got, tc.want)
		}
	}
}

func TestMaxTimeoutCutsLongerTimeouts(t *testing.T) {
	u, _ := startHandler(t, hang)
	c := testClient()
	c.MaxTimeout = 200 * time.Millisecond
	for _, timeout := range []time.Duration{0, time.Minute} {
		req := request(u, AuthMethodBasic)
		req.Timeout = timeout
		start := time.Now()
		_, err := c.Token(context.Background(), req)
		e := mustError(t, err)
		if took := time.Since(start); took > 2*time.Second || e.Kind != KindTransient || e.Description != "no complete response within 200ms" {
			t.Fatalf("timeout %s: %v after %s", timeout, e, took)
		}
	}
	// A shorter one is kept.
	req := request(u, AuthMethodBasic)
	req.Timeout = 50 * time.Millisecond
	if e := mustError(t, func() error { _, err := c.Token(context.Background(), req); return err }()); e.Description != "no complete response within 50ms" {
		t.Fatalf("got %v", e)
	}
	// Discovery too.
	start := time.Now()
	_, err := (&Discovery{Client: c}).TokenEndpoint(context.Background(), DiscoveryRequest{IssuerURL: u[:len(u)-len("/token")], Timeout: time.Minute})
	if mustError(t, err).Kind != KindTransient || time.Since(start) > 2*time.Second {
		t.Fatalf("discovery: %v after %s", err, time.Since(start))
	}
}
