// Package render renders the target.data templates of an OAuthClientToken
// over a token, within fixed bounds: what a template may do is limited at
// parse time (no loops, no recursion) and what it may write is limited as
// it writes, so that no template, however small, can make the manager
// spend more than a few megabytes or a noticeable time on it.
package render

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// View is what target.data templates see. It is the documented template
// API: keep field names stable.
type View struct {
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

// Bounds on what templates write. The API server refuses Secrets above
// 1 MiB; these stay well below it.
const (
	MaxKeySize   = 256 << 10
	MaxTotalSize = 512 << 10
)

// Budget is how many bytes one render may produce in all, output and
// every intermediate value included: each function charges what it makes
// before it makes it, and fails past the budget.
const Budget = 4 << 20

// budget is one render's allowance.
type budget struct{ left int }

var errBudget = errors.New("template functions would produce more than the render budget")

func (b *budget) charge(n int) error {
	if n < 0 || n > b.left {
		b.left = 0
		return errBudget
	}
	b.left -= n
	return nil
}

// funcs are the template functions, each charged to b. The builtins that
// make new strings (printf, print, println, html, js, urlquery) are
// replaced by charged versions; the others (len, index, slice, comparisons,
// and, or, not) make nothing new.
func funcs(b *budget) template.FuncMap {
	str := func(f func(string) string, grow int) func(string) (string, error) {
		return func(s string) (string, error) {
			if err := b.charge(len(s)*grow + 8); err != nil {
				return "", err
			}
			return f(s), nil
		}
	}
	return template.FuncMap{
		"b64enc": str(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }, 2),
		"b64dec": func(s string) (string, error) {
			if err := b.charge(len(s)); err != nil {
				return "", err
			}
			d, err := base64.StdEncoding.DecodeString(s)
			return string(d), err
		},
		"json": func(v any) (string, error) {
			if err := b.charge(6*len(fmt.Sprint(v)) + 8); err != nil {
				return "", err
			}
			d, err := json.Marshal(v)
			return string(d), err
		},
		"quote":    str(strconv.Quote, 6),
		"trim":     str(strings.TrimSpace, 1),
		"lower":    str(strings.ToLower, 2),
		"upper":    str(strings.ToUpper, 2),
		"html":     func(args ...any) (string, error) { return charged(b, 6, args, template.HTMLEscaper) },
		"js":       func(args ...any) (string, error) { return charged(b, 6, args, template.JSEscaper) },
		"urlquery": func(args ...any) (string, error) { return charged(b, 3, args, template.URLQueryEscaper) },
		"print":    func(args ...any) (string, error) { return charged(b, 1, args, fmt.Sprint) },
		"println":  func(args ...any) (string, error) { return charged(b, 1, args, fmt.Sprintln) },
		"printf": func(format string, args ...any) (string, error) {
			if err := b.charge(len(format) + padding(format) + argsSize(args)); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
	}
}

// charged charges grow times the size of args, then calls f.
func charged(b *budget, grow int, args []any, f func(...any) string) (string, error) {
	if err := b.charge(grow*argsSize(args) + 8); err != nil {
		return "", err
	}
	return f(args...), nil
}

// argsSize is about how many bytes the arguments print as.
func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += 2 * len(v)
		default:
			n += 32
		}
		n++
	}
	return n
}

// padding is the most that the widths and precisions of a printf format
// add to its output: each is at most a million in package fmt, '*' takes
// it from an argument.
func padding(format string) int {
	n := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		num := 0
		for i++; i < len(format); i++ {
			c := format[i]
			if c >= '0' && c <= '9' {
				num = min(num*10+int(c-'0'), 1e6)
				continue
			}
			if c == '*' {
				num = 1e6
				continue
			}
			n, num = n+num, 0
			if !strings.ContainsRune("+-# .[]", rune(c)) {
				break // the verb
			}
		}
		n += num
	}
	return n
}

// Templates are target.data templates that parsed and passed the checks.
type Templates map[string]v1alpha1.DataTemplate

// Parse parses target.data (nil when there is none). A template that does
// not parse, loops or recurses (range, template, define, block), names a
// field or function tokensync does not offer, or writes more than the
// bounds is an InvalidTemplate stall, found before any token is requested.
func Parse(data map[string]v1alpha1.DataTemplate) (Templates, error) {
	if len(data) == 0 {
		return nil, nil
	}
	out := Templates(data)
	for _, key := range slices.Sorted(maps.Keys(data)) {
		if _, err := parseOne(key, data[key], &budget{}); err != nil {
			return nil, err
		}
	}
	probe := View{AccessToken: "a", TokenType: "Bearer", ExpiresAt: "2006-01-02T15:04:05Z", ExpiresIn: 1, Scope: "s", IDToken: "i", RefreshToken: "r", RefreshExpiresIn: 1}
	if _, err := out.render(probe, true); err != nil {
		return nil, err
	}
	return out, nil
}

// parseOne parses one template with the functions of b, and refuses what
// templates may not do.
func parseOne(key string, text v1alpha1.DataTemplate, b *budget) (*template.Template, error) {
	tpl, err := template.New(key).Option("missingkey=error").Funcs(funcs(b)).Parse(string(text))
	if err != nil {
		return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: %v", key, truncate(err.Error(), 300))
	}
	for _, t := range tpl.Templates() {
		if t.Name() != key {
			return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: define and block are not allowed", key)
		}
		if bad := forbidden(t.Root); bad != "" {
			return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: %s is not allowed (a template renders one token: no loops, no nested templates)", key, bad)
		}
	}
	return tpl, nil
}

// forbidden returns the first node kind of the tree that templates may not
// use, "" when there is none.
func forbidden(n parse.Node) string {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Nodes {
			if bad := forbidden(c); bad != "" {
				return bad
			}
		}
	case *parse.RangeNode:
		return "range"
	case *parse.TemplateNode:
		return "template"
	case *parse.BreakNode:
		return "break"
	case *parse.ContinueNode:
		return "continue"
	case *parse.ActionNode:
		return decl(n.Pipe)
	case *parse.IfNode:
		return first(decl(n.Pipe), first(forbidden(n.List), forbidden(n.ElseList)))
	case *parse.WithNode:
		return first(decl(n.Pipe), first(forbidden(n.List), forbidden(n.ElseList)))
	}
	return ""
}

// decl refuses variable declarations: each would hold a value past the
// action that made it.
func decl(p *parse.PipeNode) string {
	if p != nil && len(p.Decl) > 0 {
		return "a variable"
	}
	return ""
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Render renders the templates over a token. Errors never quote the token.
func (t Templates) Render(v View) (map[string][]byte, error) {
	return t.render(v, false)
}

func (t Templates) render(v View, probe bool) (map[string][]byte, error) {
	out := make(map[string][]byte, len(t))
	b := &budget{left: Budget}
	w := &limited{total: MaxTotalSize}
	for _, key := range slices.Sorted(maps.Keys(t)) {
		tpl, err := parseOne(key, t[key], b)
		if err != nil {
			return nil, err
		}
		w.key, w.buf = MaxKeySize, nil
		if err := tpl.Execute(w, v); err != nil {
			switch {
			case errors.Is(err, errBudget):
				return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s] makes more than %d bytes while rendering", key, Budget)
			case errors.Is(err, errTooLarge):
				return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s] renders more than %d bytes (at most %d per key, %d in all)", key, min(MaxKeySize, MaxTotalSize), MaxKeySize, MaxTotalSize)
			case probe && strings.Contains(err.Error(), "illegal base64"):
				// b64dec of the probe's placeholder values: fine.
			case probe:
				return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s]: %s", key, truncate(err.Error(), 300))
			default:
				return nil, failure.NewStalled(v1alpha1.ReasonInvalidTemplate, "target.data[%s] cannot be rendered for the token received (%s)", key, errKind(err))
			}
		}
		out[key] = w.buf
	}
	return out, nil
}

var errTooLarge = errors.New("template output too large")

// limited collects what one key renders, within its own and the total
// budget. Exceeding either stops the template at its next write.
type limited struct {
	buf        []byte
	key, total int
}

func (l *limited) Write(p []byte) (int, error) {
	if len(p) > l.key || len(p) > l.total {
		return 0, errTooLarge
	}
	l.key -= len(p)
	l.total -= len(p)
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// errKind describes a render failure without its text, which may quote a
// value (b64dec of a token, say).
func errKind(err error) string {
	if strings.Contains(err.Error(), "base64") {
		return "a b64dec argument is not base64"
	}
	return "a function failed"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
