//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// leakPrefix is how much of a long encoded secret is enough to call it
// leaked: client-go truncates the bodies it logs (to 1 KiB at V(8)), so a
// leaked private key may appear only by its start.
const leakPrefix = 48

// leakForm is one way a secret may be written: as is, or encoded.
type leakForm struct {
	name   string
	encode func(string) string
}

var leakForms = []leakForm{
	{"raw", func(s string) string { return s }},
	{"base64", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }},
	{"base64url", func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }},
	{"URL-encoded", url.QueryEscape},
	{"URL-path-encoded", url.PathEscape},
	{"JSON-escaped", func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }},
	{"JSON-escaped (no HTML escaping)", func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n"), `"`)[1:]
	}},
	{"hex", func(s string) string { return hex.EncodeToString([]byte(s)) }},
	{"HEX", func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }},
}

// hexDumpLine matches a line of hex.Dump output, which client-go logs for
// binary (protobuf) bodies: an offset, up to 16 bytes in hex, their ASCII.
var hexDumpLine = regexp.MustCompile(`[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2}){1,16})`)

// hexDumps returns the bytes of every hex dump in text, concatenated: a
// secret in a protobuf body is split over lines there, in hex.
func hexDumps(text string) string {
	var b strings.Builder
	for _, m := range hexDumpLine.FindAllStringSubmatch(text, -1) {
		if raw, err := hex.DecodeString(strings.ReplaceAll(m[1], " ", "")); err == nil {
			b.Write(raw)
		}
	}
	return b.String()
}

// findLeaks returns, for each secret found in text in any leakForm (or,
// for a long one, by its first leakPrefix characters in that form), what
// was found, without the secret itself. The bytes of hex dumps in text are
// searched too.
func findLeaks(text string, secrets []string) []string {
	text += "\n" + hexDumps(text)
	var found []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, f := range leakForms {
			enc := f.encode(s)
			if strings.Contains(text, enc) || (len(enc) > 2*leakPrefix && strings.Contains(text, enc[:leakPrefix])) {
				found = append(found, fmt.Sprintf("a secret of %d characters, %s", len(s), f.name))
			}
		}
		// Each line of a PEM block on its own, as a logged body may wrap it.
		for _, line := range strings.Split(s, "\n") {
			if len(line) >= 32 && line != s && !strings.HasPrefix(line, "-----") && strings.Contains(text, line) {
				found = append(found, fmt.Sprintf("a line of a %d-character secret, raw", len(s)))
			}
		}
	}
	return found
}
