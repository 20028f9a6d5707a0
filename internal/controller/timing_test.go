package controller

import (
	"testing"
	"time"
)

func TestRenewalTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hour := t0.Add(time.Hour)
	cases := []struct {
		name        string
		expires     time.Time
		renewBefore time.Duration
		minInterval time.Duration
		want        time.Time
	}{
		{"two thirds by default", hour, 0, 10 * time.Second, t0.Add(40 * time.Minute)},
		{"renewBefore", hour, 5 * time.Minute, 10 * time.Second, t0.Add(55 * time.Minute)},
		{"renewBefore not below the lifetime falls back to 2/3", hour, 2 * time.Hour, 10 * time.Second, t0.Add(40 * time.Minute)},
		{"renewBefore equal to the lifetime falls back to 2/3", hour, time.Hour, 10 * time.Second, t0.Add(40 * time.Minute)},
		{"floor for tiny lifetimes", t0.Add(3 * time.Second), 0, 10 * time.Second, t0.Add(10 * time.Second)},
		{"ten days", t0.Add(240 * time.Hour), 0, 10 * time.Second, t0.Add(160 * time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := renewalTime(t0, tc.expires, tc.renewBefore, tc.minInterval, nil); !got.Equal(tc.want) {
				t.Fatalf("renewalTime = %v, want %v", got.Sub(t0), tc.want.Sub(t0))
			}
		})
	}
}

func TestRenewalJitterIsBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var maxSeen time.Duration
	// The jitter function is asked for at most 5% of the window, capped.
	got := renewalTime(t0, t0.Add(time.Hour), 0, time.Second, func(max time.Duration) time.Duration {
		maxSeen = max
		return max
	})
	if maxSeen != 2*time.Minute { // 5% of 40m = 2m, also the cap
		t.Fatalf("jitter bound = %v, want 2m", maxSeen)
	}
	if want := t0.Add(38 * time.Minute); !got.Equal(want) {
		t.Fatalf("with full jitter = %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	renewalTime(t0, t0.Add(240*time.Hour), 0, time.Second, func(max time.Duration) time.Duration {
		maxSeen = max
		return 0
	})
	if maxSeen != maxJitter {
		t.Fatalf("jitter for a 10-day token = %v, want the %v cap", maxSeen, maxJitter)
	}
	for range 1000 {
		if j := RandomJitter(time.Minute); j < 0 || j >= time.Minute {
			t.Fatalf("RandomJitter(1m) = %v", j)
		}
	}
	if RandomJitter(0) != 0 {
		t.Fatal("RandomJitter(0) != 0")
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		attempt    int32
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 2 * time.Second},
		{2, 0, 4 * time.Second},
		{5, 0, 32 * time.Second},
		{20, 0, 5 * time.Minute},
		{1000, 0, 5 * time.Minute},
		{1, 90 * time.Second, 90 * time.Second},
		{20, time.Hour, time.Hour},
	}
	for _, tc := range cases {
		if got := backoff(tc.attempt, baseBackoff, maxBackoff, tc.retryAfter); got != tc.want {
			t.Errorf("backoff(%d, retryAfter %v) = %v, want %v", tc.attempt, tc.retryAfter, got, tc.want)
		}
	}
}
