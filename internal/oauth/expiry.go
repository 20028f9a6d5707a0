package oauth

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxLifetime caps every lifetime this package reports (expires_in,
// refresh_expires_in, the time to a JWT's exp): math.MaxInt32 seconds,
// about 68 years, as x/oauth2 caps expires_in. An endpoint's expires_in of
// 10^12 seconds becomes MaxLifetime, and ReceivedAt + MaxLifetime cannot
// overflow a time.Time or a time.Duration.
const MaxLifetime = math.MaxInt32 * time.Second

// maxExpiresIn is MaxLifetime (the name the tests use).
const maxExpiresIn = MaxLifetime

// expiry reads a token's lifetime: expires_in when the endpoint gave a
// positive one, else the exp claim of a JWT access token when it is after
// now. It returns the lifetime in whole seconds, the absolute expiry and
// where they came from; zeros and "" when unknown.
func expiry(rawExpiresIn any, accessToken string, now time.Time) (time.Duration, time.Time, string) {
	if d := expiresIn(rawExpiresIn); d > 0 {
		return d, now.Add(d), "expires_in"
	}
	exp, ok := jwtExpiry(accessToken)
	if !ok {
		return 0, time.Time{}, ""
	}
	left := exp.Sub(now)
	if left < time.Second {
		// Already expired, or less than a second left, by this clock.
		return 0, time.Time{}, ""
	}
	if left > MaxLifetime {
		return MaxLifetime, now.Add(MaxLifetime), "jwt"
	}
	return left.Truncate(time.Second), exp, "jwt"
}

// expiresIn reads a raw expires_in value: a JSON number, a numeric string
// (as some endpoints send, and as form-encoded answers carry it) or a
// json.Number. Absent, non-positive or unreadable values give 0; values
// above MaxLifetime give MaxLifetime.
func expiresIn(v any) time.Duration {
	var secs float64
	switch x := v.(type) {
	case float64:
		secs = x
	case int64:
		secs = float64(x)
	case int:
		secs = float64(x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return 0
		}
		secs = f
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0
		}
		secs = f
	default:
		return 0
	}
	if math.IsNaN(secs) || secs < 1 {
		return 0
	}
	if secs >= float64(MaxLifetime/time.Second) {
		return MaxLifetime
	}
	return time.Duration(secs) * time.Second
}
