package oauth

import (
	"testing"
	"time"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// A JWT's exp is ExpiresAt exactly, even when the answer arrives within a
// second (ExpiresIn, in whole seconds, is cut; ExpiresAt is not).
func TestExpiresAtIsTheJWTExpExactly(t *testing.T) {
	_, u := startTokenServer(t, tokenserver.Options{JWTAccessTokens: true, JWTLifetime: 864000, Now: fixedClock})
	received := fixedNow.Add(700 * time.Millisecond)
	c := &Client{HTTPClient: NewHTTPClient(), Now: func() time.Time { return received }}
	tok := mustToken(t, c, Request{TokenURL: u, ClientID: testID, ClientSecret: testSecret})
	want := fixedNow.Add(864000 * time.Second)
	if !tok.ExpiresAt.Equal(want) || tok.ExpiresFrom != "jwt" {
		t.Fatalf("ExpiresAt %s from %q, want %s (the exp claim)", tok.ExpiresAt, tok.ExpiresFrom, want)
	}
	if tok.ExpiresIn != 863999*time.Second {
		t.Fatalf("ExpiresIn %s", tok.ExpiresIn)
	}
}

func TestExpiresAt(t *testing.T) {
	jwtAt := func(exp string) string { return jtToken(`{"exp":` + exp + `}`) }
	tests := []struct {
		name string
		body string
		want time.Time
		in   time.Duration
	}{
		{"expires_in", `{"access_token":"a","expires_in":3600}`, fixedNow.Add(time.Hour), time.Hour},
		{"expires_in wins over exp", `{"access_token":"` + jwtAt("1900000000") + `","expires_in":60}`, fixedNow.Add(time.Minute), time.Minute},
		{"fractional exp is kept", `{"access_token":"` + jwtAt("1772366460.25") + `"}`, time.Unix(1772366460, 250000000), 60 * time.Second},
		{"expired JWT is unknown", `{"access_token":"` + jwtAt("1772366000") + `"}`, time.Time{}, 0},
		{"neither is unknown", `{"access_token":"a"}`, time.Time{}, 0},
		{"expires_in of 10^12 s is capped", `{"access_token":"a","expires_in":1000000000000}`, fixedNow.Add(MaxLifetime), MaxLifetime},
		{"expires_in beyond int64 is capped", `{"access_token":"a","expires_in":100000000000000000000}`, fixedNow.Add(MaxLifetime), MaxLifetime},
		{"exp in year 9999 is capped", `{"access_token":"` + jwtAt("253402300799") + `"}`, fixedNow.Add(MaxLifetime), MaxLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := answerOf(t, tt.body)
			if !tok.ExpiresAt.Equal(tt.want) || tok.ExpiresIn != tt.in {
				t.Fatalf("ExpiresAt %s ExpiresIn %s, want %s %s", tok.ExpiresAt, tok.ExpiresIn, tt.want, tt.in)
			}
			if !tok.ExpiresAt.IsZero() && tok.ExpiresAt.Sub(tok.ReceivedAt) > MaxLifetime {
				t.Fatalf("ExpiresAt is %s after ReceivedAt", tok.ExpiresAt.Sub(tok.ReceivedAt))
			}
		})
	}
	if MaxLifetime != 2147483647*time.Second {
		t.Fatalf("MaxLifetime %s", MaxLifetime)
	}
}

// answerOf is the Token read from a 200 JSON answer with body.
func answerOf(t *testing.T, body string) *Token {
	t.Helper()
	u, _ := startHandler(t, reply(200, "application/json", body))
	return mustToken(t, testClient(), request(u, AuthMethodBasic))
}
