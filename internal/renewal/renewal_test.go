package renewal

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func hour(n float64) time.Duration { return time.Duration(n * float64(time.Hour)) }

func TestRenewAt(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		tok  Token
		want time.Time
	}{
		{"two thirds", Schedule{MinInterval: 10 * time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}, t0.Add(2 * time.Hour)},
		{"renewBefore", Schedule{RenewBefore: 5 * time.Minute, MinInterval: 10 * time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, t0.Add(55 * time.Minute)},
		{"renewBefore longer than the lifetime: two thirds", Schedule{RenewBefore: 2 * time.Hour, MinInterval: 10 * time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, t0.Add(40 * time.Minute)},
		{"floor", Schedule{MinInterval: 10 * time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Second)}, t0.Add(10 * time.Second)},
		{"default lifetime follows the schedule", Schedule{DefaultLifetime: 3 * time.Hour, MinInterval: time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), LifetimeDefaulted: true}, t0.Add(2 * time.Hour)},
		{"not after", Schedule{MinInterval: time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(3 * time.Hour), NotAfter: t0.Add(30 * time.Minute)}, t0.Add(20 * time.Minute)},
		// 200 years: lifetime*2 overflows time.Duration; the renewal
		// time must still be two thirds of the way, not the floor.
		{"no overflow", Schedule{MinInterval: 10 * time.Second}, Token{IssuedAt: t0, ExpiresAt: t0.Add(hour(1752000))}, t0.Add(hour(1752000) / 3 * 2).Truncate(time.Second)},
		{"no overflow with a default lifetime", Schedule{DefaultLifetime: hour(1752000), MinInterval: 10 * time.Second}, Token{IssuedAt: t0, LifetimeDefaulted: true}, t0.Add(hour(1752000) / 3 * 2).Truncate(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.RenewAt(tc.tok); !got.Equal(tc.want) {
				t.Fatalf("RenewAt = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestJitterIsBoundedAndDeterministic(t *testing.T) {
	s := Schedule{MinInterval: time.Second, Jitter: true}
	seen := map[time.Time]bool{}
	for i := range 200 {
		tok := Token{IssuedAt: t0, ExpiresAt: t0.Add(30 * time.Hour), Seed: Seed("ns", "name", string(rune('a'+i%26)), string(rune('a'+i/26)))}
		at := s.RenewAt(tok)
		if at2 := s.RenewAt(tok); !at2.Equal(at) {
			t.Fatalf("not deterministic: %s then %s", at, at2)
		}
		base := t0.Add(20 * time.Hour)
		if at.After(base) || at.Before(base.Add(-MaxJitter)) {
			t.Fatalf("renewal %s outside [%s, %s]", at, base.Add(-MaxJitter), base)
		}
		seen[at] = true
	}
	if len(seen) < 50 {
		t.Fatalf("only %d distinct renewal times among 200 tokens: jitter does not spread them", len(seen))
	}
	// 5% of a short window.
	tok := Token{IssuedAt: t0, ExpiresAt: t0.Add(30 * time.Minute), Seed: ^uint64(0)}
	if at := s.RenewAt(tok); at.Before(t0.Add(19 * time.Minute)) {
		t.Fatalf("jitter of a 20m window exceeds 5%%: %s", at)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt    int32
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 2 * time.Second}, {2, 0, 4 * time.Second}, {9, 0, 5 * time.Minute}, {1000, 0, 5 * time.Minute}, {1, time.Minute, time.Minute},
	} {
		if got := Backoff(tc.attempt, BaseBackoff, MaxBackoff, tc.retryAfter); got != tc.want {
			t.Errorf("Backoff(%d, %s) = %s, want %s", tc.attempt, tc.retryAfter, got, tc.want)
		}
	}
	// Transient, with a token valid for another 10 minutes: at most halfway.
	if got := RetryDelay(20, false, t0, t0.Add(10*time.Minute), 0, 10*time.Second); got != 5*time.Minute {
		t.Errorf("RetryDelay with 10m left = %s, want 5m", got)
	}
	if got := RetryDelay(20, false, t0, t0.Add(4*time.Second), 0, 10*time.Second); got != 10*time.Second {
		t.Errorf("RetryDelay with 4s left = %s, want the 10s floor", got)
	}
	if got := RetryDelay(20, false, t0, t0.Add(10*time.Minute), 7*time.Minute, 10*time.Second); got != 7*time.Minute {
		t.Errorf("RetryDelay honours Retry-After: got %s", got)
	}
	if got := RetryDelay(3, true, t0, t0.Add(10*time.Minute), 0, 10*time.Second); got != 4*time.Minute {
		t.Errorf("stalled RetryDelay(3) = %s, want 4m", got)
	}
}

func TestDecide(t *testing.T) {
	s := Schedule{MinInterval: 10 * time.Second, DefaultLifetime: time.Hour}
	held := &Token{IssuedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}
	for _, tc := range []struct {
		name    string
		in      Input
		request bool
		reason  Reason
		next    time.Time
	}{
		{"valid", Input{Now: t0.Add(time.Hour), Held: held, Current: true}, false, Valid, t0.Add(2 * time.Hour)},
		{"no token", Input{Now: t0}, true, NoToken, time.Time{}},
		{"inputs changed", Input{Now: t0, Held: held}, true, InputsChanged, time.Time{}},
		{"due", Input{Now: t0.Add(2 * time.Hour), Held: held, Current: true}, true, Due, time.Time{}},
		{"expired", Input{Now: t0.Add(3 * time.Hour), Held: held, Current: true}, true, Expired, time.Time{}},
		{"forced while valid", Input{Now: t0, Held: held, Current: true, Forced: true}, true, Forced, time.Time{}},
		{"forced while backing off", Input{Now: t0, Forced: true, HoldUntil: t0.Add(time.Hour)}, true, Forced, time.Time{}},
		{"backing off without a token", Input{Now: t0, HoldUntil: t0.Add(time.Minute)}, false, BackingOff, t0.Add(time.Minute)},
		{"backing off when due", Input{Now: t0.Add(2 * time.Hour), Held: held, Current: true, HoldUntil: t0.Add(2*time.Hour + time.Minute)}, false, BackingOff, t0.Add(2*time.Hour + time.Minute)},
		{"backoff over", Input{Now: t0.Add(2 * time.Hour), Held: held, Current: true, HoldUntil: t0.Add(time.Hour)}, true, Due, time.Time{}},
		{"backoff does not hide a valid token's schedule", Input{Now: t0, Held: held, Current: true, HoldUntil: t0.Add(time.Minute)}, false, Valid, t0.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Schedule = s
			d := Decide(in)
			if d.Request != tc.request || d.Reason != tc.reason || !d.Next.Equal(tc.next) {
				t.Fatalf("Decide = request %v, %s, next %s (%s); want request %v, %s, next %s", d.Request, d.Reason, d.Next, d.Message, tc.request, tc.reason, tc.next)
			}
			if d.Message == "" {
				t.Fatal("a decision must say why")
			}
		})
	}
	// Editing the schedule moves the renewal time of the held token at once.
	in := Input{Now: t0.Add(time.Minute), Held: held, Current: true, Schedule: s}
	before := Decide(in).RenewAt
	in.Schedule.RenewBefore = 30 * time.Minute
	if after := Decide(in).RenewAt; !after.Equal(t0.Add(150*time.Minute)) || after.Equal(before) {
		t.Fatalf("renewBefore 30m: renewAt %s (was %s), want %s", after, before, t0.Add(150*time.Minute))
	}
	defaulted := &Token{IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), LifetimeDefaulted: true}
	in = Input{Now: t0.Add(50 * time.Minute), Held: defaulted, Current: true, Schedule: s}
	if d := Decide(in); !d.Request {
		t.Fatalf("1h default lifetime at 50m: want a renewal, got %s", d.Message)
	}
	in.Schedule.DefaultLifetime = 3 * time.Hour
	if d := Decide(in); d.Request || !d.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("3h default lifetime at 50m: want no request and expiry at +3h, got %v %s (%s)", d.Request, d.ExpiresAt, d.Message)
	}
}
