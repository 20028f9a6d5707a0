package controller

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// tokenView is what target.data templates see. It is the documented
// template API: keep field names stable.
type tokenView struct {
	AccessToken  string
	TokenType    string
	ExpiresAt    string // RFC 3339, UTC
	ExpiresIn    int64  // seconds from issue to expiry
	Scope        string // space-separated granted scopes
	IDToken      string
	RefreshToken string
	// RefreshExpiresIn is the refresh token's lifetime in seconds (the
	// response's refresh_expires_in), 0 when not given.
	RefreshExpiresIn int64
}

var templateFuncs = template.FuncMap{
	"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec": func(s string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		return string(b), err
	},
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"quote": strconv.Quote,
	"trim":  strings.TrimSpace,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

// maxRenderedSize bounds the rendered Secret data (the API server refuses
// Secrets above 1 MiB).
const maxRenderedSize = 512 << 10

// templates parses target.data. A template that does not parse, or that
// names a field or function tokensync does not offer, is an InvalidTemplate
// stall, found before any token is requested.
func templates(obj *v1alpha1.OAuthClientToken) (map[string]*template.Template, error) {
	t := obj.Spec.Target
	if t == nil || len(t.Data) == 0 {
		return nil, nil
	}
	out := make(map[string]*template.Template, len(t.Data))
	probe := tokenView{AccessToken: "a", TokenType: "Bearer", ExpiresAt: "2006-01-02T15:04:05Z", ExpiresIn: 1, Scope: "s", IDToken: "i", RefreshToken: "r", RefreshExpiresIn: 1}
	for _, key := range slices.Sorted(maps.Keys(t.Data)) {
		tpl, err := template.New(key).Option("missingkey=error").Funcs(templateFuncs).Parse(string(t.Data[key]))
		if err != nil {
			return nil, stalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: %v", key, err)
		}
		if err := tpl.Execute(&bytes.Buffer{}, probe); err != nil && !strings.Contains(err.Error(), "illegal base64") {
			return nil, stalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: %v", key, templateErr(err))
		}
		out[key] = tpl
	}
	return out, nil
}

// templateErr keeps a template error's text but never a value: execution
// errors quote the template (the user's text), not the data.
func templateErr(err error) string {
	return truncate(err.Error(), 300)
}

// render renders the templates over a token. Errors never quote the token.
func render(tpls map[string]*template.Template, view tokenView) (map[string][]byte, error) {
	out := make(map[string][]byte, len(tpls))
	total := 0
	for _, key := range slices.Sorted(maps.Keys(tpls)) {
		var b bytes.Buffer
		if err := tpls[key].Execute(&b, view); err != nil {
			return nil, stalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s] cannot be rendered for the token received (%s)", key, renderErrKind(err))
		}
		total += b.Len()
		if total > maxRenderedSize {
			return nil, stalled(v1alpha1.ReasonInvalidTemplate, "target.data renders more than %d bytes", maxRenderedSize)
		}
		out[key] = b.Bytes()
	}
	return out, nil
}

// renderErrKind describes a render failure without its text, which may
// quote a value (b64dec of a token, say).
func renderErrKind(err error) string {
	switch {
	case strings.Contains(err.Error(), "base64"):
		return "a b64dec argument is not base64"
	default:
		return "a function failed"
	}
}

// viewOf builds the template view of a token.
func viewOf(tok *oauth.Token, issuedAt, expiresAt time.Time) tokenView {
	return tokenView{
		AccessToken:      tok.AccessToken,
		TokenType:        tok.TokenType,
		ExpiresAt:        formatTime(expiresAt),
		ExpiresIn:        int64(expiresAt.Sub(issuedAt) / time.Second),
		Scope:            strings.Join(tok.Scopes, " "),
		IDToken:          tok.IDToken,
		RefreshToken:     tok.RefreshToken,
		RefreshExpiresIn: int64(tok.RefreshExpiresIn / time.Second),
	}
}

// dataHash digests the templates and what they rendered, so that an edited
// key or a changed template is detected.
func dataHash(obj *v1alpha1.OAuthClientToken, data map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte("tokensync/data/v1\x00"))
	tpls := obj.Spec.Target.Data
	for _, k := range slices.Sorted(maps.Keys(tpls)) {
		fmt.Fprintf(h, "%d:%s%d:%s%d:", len(k), k, len(tpls[k]), tpls[k], len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}
