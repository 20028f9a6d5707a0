package main

import (
	"math"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

const (
	benchClientID     = "bench"
	benchClientSecret = "bench-secret"
)

// endpoint is a test token server on loopback that records when each
// request arrived and sets the lifetime of the tokens it issues: a fixed
// number of seconds, or counting down to one instant so that every token
// expires at the same moment.
type endpoint struct {
	srv *tokenserver.Server
	url string
	hs  *http.Server

	mu       sync.Mutex // held while a request is served, so that the lifetime set is the one issued
	times    []time.Time
	lifetime int
	expireAt time.Time
}

func startEndpoint(lifetime int) (*endpoint, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &endpoint{
		srv:      tokenserver.New(tokenserver.Options{Clients: map[string]string{benchClientID: benchClientSecret}, ExpiresIn: lifetime}),
		url:      "http://" + l.Addr().String() + "/token",
		lifetime: lifetime,
	}
	e.hs = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.hs.Serve(l) }()
	return e, nil
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	e.times = append(e.times, now)
	lifetime := e.lifetime
	if !e.expireAt.IsZero() {
		lifetime = max(1, int(math.Ceil(e.expireAt.Sub(now).Seconds())))
	}
	e.srv.SetExpiresIn(lifetime)
	e.srv.ServeHTTP(w, r)
}

func (e *endpoint) close() { _ = e.hs.Close() }

// setLifetime makes tokens issued from now on last seconds.
func (e *endpoint) setLifetime(seconds int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime, e.expireAt = seconds, time.Time{}
}

// expireAllAt makes tokens issued from now on expire at t.
func (e *endpoint) expireAllAt(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireAt = t
}

func (e *endpoint) requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.times)
}

// requestsIn returns the arrival times in [from, to).
func (e *endpoint) requestsIn(from, to time.Time) []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []time.Time
	for _, t := range e.times {
		if !t.Before(from) && t.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

// peakRate returns the largest number of requests in any window of length
// w among times, divided by w in seconds.
func peakRate(times []time.Time, w time.Duration) float64 {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return float64(best) / w.Seconds()
}
