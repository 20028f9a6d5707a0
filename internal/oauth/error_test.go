package oauth

import (
	"strings"
	"testing"
)

func TestServerTextRedaction(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	tests := []struct{ name, in, want string }{
		{"plain description", "Client authentication failed", "Client authentication failed"},
		{"JWT", "token " + jwt + " expired", "token [redacted] expired"},
		{"opaque token", `echo "tst_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"`, `echo "[redacted]"`},
		{"hex token", "got 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, sorry", "got [redacted], sorry"},
		{"trace ids kept", "AADSTS7000215: Invalid client secret. Trace ID: 2a9c1f3e-0b7d-4c52-9e61-8f0a3b7c6d10", "AADSTS7000215: Invalid client secret. Trace ID: 2a9c1f3e-0b7d-4c52-9e61-8f0a3b7c6d10"},
		{"URLs kept", "see https://login.microsoftonline.com/common/oauth2/v2.0/token for details", "see https://login.microsoftonline.com/common/oauth2/v2.0/token for details"},
		{"long words without digits kept", "the_client_is_not_allowed_to_use_this_grant_type", "the_client_is_not_allowed_to_use_this_grant_type"},
		{"the secret", "secret hunter2-XYZ+ was wrong", "secret [redacted] was wrong"},
		{"the URL-encoded secret", "got hunter2-XYZ%2B", "got [redacted]"},
		{"control characters", "a\x00b\x1b[0m\r\nc\u202e", "ab[0m  c"},
		{"non-ASCII kept", "clé invalide", "clé invalide"},
	}
	secrets := secretsOf("hunter2-XYZ+")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverText(tt.in, maxDescription, secrets); got != tt.want {
				t.Errorf("serverText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("truncation cannot leave part of a secret", func(t *testing.T) {
		in := strings.Repeat("x ", 125) + "hunter2-XYZ+"
		if got := serverText(in, 256, secrets); strings.Contains(got, "hunt") {
			t.Errorf("got %q", got)
		}
	})
}

func TestErrorStringShape(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{Kind: KindRejected, StatusCode: 401, Code: "invalid_client", Description: "Client authentication failed"},
			"token endpoint returned 401: invalid_client: Client authentication failed"},
		{&Error{Kind: KindTransient, StatusCode: 503, Description: "empty body", RetryAfter: 30e9},
			"token endpoint returned 503: empty body (retry after 30s)"},
		{&Error{Kind: KindConfig, Description: "empty client id"}, "token request failed: empty client id"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
