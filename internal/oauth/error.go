package oauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrorKind classifies a failed token request by what the caller should do.
type ErrorKind string

const (
	// KindTransient: timeouts, connection errors, 5xx, 429, 408 (whatever
	// the body says), and the RFC 6749 codes temporarily_unavailable and
	// server_error. Retry with backoff, honouring Error.RetryAfter.
	KindTransient ErrorKind = "Transient"
	// KindRejected: the endpoint refused the request: an RFC 6749 section
	// 5.2 error such as invalid_client or invalid_scope, any other 4xx, or a
	// redirect. Retrying the same request will not help; a human must act.
	KindRejected ErrorKind = "Rejected"
	// KindInvalidResponse: a 2xx answer that is not a usable token response
	// (not parseable, or without access_token).
	KindInvalidResponse ErrorKind = "InvalidResponse"
	// KindConfig: the request cannot be sent as configured. Nothing was sent.
	KindConfig ErrorKind = "Config"
	// KindThrottled: the client's own per-host limits held the request
	// back; nothing was sent. Try again after Error.RetryAfter.
	KindThrottled ErrorKind = "Throttled"
)

// maxDescription bounds Error.Description (in bytes).
const maxDescription = 256

// Error is a failed token request. Its text holds the endpoint's error code
// and description or a summary of what went wrong; it never contains the
// request body, the client secret, a token, or a response body.
type Error struct {
	Kind ErrorKind
	// StatusCode is the HTTP status of the (last) response, 0 when none
	// arrived.
	StatusCode int
	// Code is the RFC 6749 error code, e.g. invalid_client; empty if none.
	Code string
	// Description is the endpoint's error_description (control characters
	// stripped, truncated to 256 bytes) or, when the endpoint gave none, a
	// summary written by this package.
	Description string
	// RetryAfter is the delay the endpoint asked for in Retry-After
	// (delta-seconds or HTTP-date), 0 when absent, at most 24h.
	RetryAfter time.Duration
	// Forbidden is set when the request was refused before sending because
	// it would reach a link-local or metadata address.
	Forbidden bool
	// Challenge is the auth scheme of the WWW-Authenticate header of a 401
	// (e.g. "SCA"); only the scheme, never its parameters.
	Challenge string
	// InteractionRequired is set when the endpoint wants a person to act
	// (an interactive WWW-Authenticate challenge such as SCA, or the OpenID
	// Connect errors interaction_required, login_required,
	// consent_required): retrying will not help until someone does.
	InteractionRequired bool
	// Err is the underlying transport error, if any. Response errors carry
	// none (x/oauth2's RetrieveError would print the response body).
	Err error

	note   string   // appended to the message, e.g. the Auto fallback
	redact []string // strings scrubbed from the message (the client secret)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "token endpoint returned %d", e.StatusCode)
	} else {
		b.WriteString("token request failed")
	}
	var detail strings.Builder
	if e.Code != "" {
		fmt.Fprintf(&detail, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&detail, ": %s", e.Description)
	}
	if e.Err != nil {
		fmt.Fprintf(&detail, ": %v", e.Err)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&detail, " (retry after %s)", e.RetryAfter)
	}
	if e.note != "" {
		fmt.Fprintf(&detail, " (%s)", e.note)
	}
	b.WriteString(scrub(detail.String(), e.redact))
	return b.String()
}

// Unwrap returns the underlying transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as *Error when it is one or wraps one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// secretsOf lists what must never appear in an error message: each
// secret (client secret, password, refresh token) as sent in a form body
// and in a Basic header (URL-encoded). Very short secrets are not scrubbed:
// replacing them would garble messages and a two-character secret is no
// secret.
func secretsOf(secrets ...string) []string {
	var out []string
	for _, secret := range secrets {
		if len(secret) < 4 {
			continue
		}
		out = append(out, secret)
		if q := url.QueryEscape(secret); q != secret {
			out = append(out, q)
		}
	}
	return out
}

func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "[redacted]")
	}
	return s
}

// serverText prepares text from the endpoint (error, error_description) for
// a message: the client secret and anything that looks like a token are
// replaced, then control characters dropped and the length capped (in that
// order, so a cut cannot leave part of a secret behind).
func serverText(s string, n int, secrets []string) string {
	return clean(redactTokenLike(scrub(s, secrets)), n)
}

// redactTokenLike replaces runs of token characters that look like
// credentials: JWTs, and opaque strings of 32 or more token68 characters
// mixing letters and digits. UUIDs (trace and correlation ids, as Entra ID
// puts in its descriptions) and URLs are kept.
func redactTokenLike(s string) string {
	isTokenChar := func(r rune) bool {
		return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/=", r))
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isTokenChar(rune(s[j])) {
			j++
		}
		if j == i {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError {
				b.WriteByte(s[i])
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
			continue
		}
		w := s[i:j]
		isURL := i > 0 && s[i-1] == ':' && strings.HasPrefix(w, "//")
		if !isURL && looksLikeToken(w) {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(w)
		}
		i = j
	}
	return b.String()
}

func looksLikeToken(w string) bool {
	core := strings.Trim(w, ".=")
	if strings.HasPrefix(core, "eyJ") && strings.Count(core, ".") >= 2 {
		return true // a JWT
	}
	if len(core) < 32 || uuidLike(core) {
		return false
	}
	return strings.ContainsAny(core, "0123456789") && strings.IndexFunc(core, unicode.IsLetter) >= 0
}

// uuidLike reports whether w is a UUID (8-4-4-4-12 hex digits).
func uuidLike(w string) bool {
	if len(w) != 36 {
		return false
	}
	for i, r := range w {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !unicode.Is(unicode.ASCII_Hex_Digit, r) {
			return false
		}
	}
	return true
}

// clean keeps the printable characters of s (no control characters, no
// invalid UTF-8), at most n bytes, marking a cut with "...".
func clean(s string, n int) string {
	var b strings.Builder
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			if unicode.IsSpace(r) {
				b.WriteByte(' ')
			}
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
