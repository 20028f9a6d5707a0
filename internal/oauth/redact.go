package oauth

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What this package writes in a message never holds a secret of the
// request (client secret, password, refresh token, client assertion,
// subject and actor tokens) nor anything from the endpoint that looks like
// a token; URLs lose their user information, query and fragment.

// secretsOf lists what must never appear in an error message: each
// secret (client secret, password, refresh token, assertion, token) as sent in a form body
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

// RedactedURL drops user information, query and fragment from a URL so it
// can appear in messages. An unparseable URL gives a placeholder.
func RedactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Keep scheme and host when recognisable; never echo the rest.
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
