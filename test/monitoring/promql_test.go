package monitoring_test

// A small PromQL scanner: enough to find the metric names, label matchers
// and grouping labels an expression references, without the Prometheus
// server module (github.com/prometheus/prometheus is not in the module
// graph, and its promql/parser would pull in most of it).
//
// It does not validate syntax (promtool does, see TestAlertsWithPromtool);
// it only has to classify every identifier correctly:
//
//   - an identifier followed by "(" is a function or an aggregation;
//   - the keywords (and, or, by, on, offset, bool...) are not metrics;
//   - the identifiers inside "{...}" are label names, followed by a
//     matcher operator and a string;
//   - the identifiers inside by/without/on/ignoring/group_left/group_right
//     "(...)" are label names;
//   - every other identifier is a metric name (a vector selector).
//
// Grafana variables ($var, ${var}, [[var]]) are skipped, as are strings,
// numbers, durations and comments.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

type tokenKind int

const (
	tIdent tokenKind = iota
	tNumber
	tString
	tVar
	tPunct
)

type token struct {
	kind tokenKind
	text string // for tString: the unquoted value
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c == ':' || (c >= '0' && c <= '9')
}

// lex splits a PromQL expression (possibly with Grafana variables) into
// tokens.
func lex(expr string) ([]token, error) {
	var out []token
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' && j+1 < len(expr) {
					j++
				}
				b.WriteByte(expr[j])
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			out = append(out, token{tString, b.String()})
			i = j + 1
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at offset %d", i)
				}
				j += k + 1
			} else {
				for j < len(expr) && isIdentChar(expr[j]) {
					j++
				}
			}
			out = append(out, token{tVar, expr[i:j]})
			i = j
		case strings.HasPrefix(expr[i:], "[["):
			k := strings.Index(expr[i:], "]]")
			if k < 0 {
				return nil, fmt.Errorf("unterminated [[ at offset %d", i)
			}
			out = append(out, token{tVar, expr[i : i+k+2]})
			i += k + 2
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9':
			// Numbers, durations (5m, 1h30m), hex and exponents (1e-3).
			j := i
			for j < len(expr) && (isIdentChar(expr[j]) && expr[j] != ':' || expr[j] == '.') {
				if (expr[j] == 'e' || expr[j] == 'E') && j+1 < len(expr) && (expr[j+1] == '-' || expr[j+1] == '+') {
					j++
				}
				j++
			}
			out = append(out, token{tNumber, expr[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			out = append(out, token{tIdent, expr[i:j]})
			i = j
		default:
			if i+1 < len(expr) {
				switch two := expr[i : i+2]; two {
				case "==", "!=", "=~", "!~", ">=", "<=":
					out = append(out, token{tPunct, two})
					i += 2
					continue
				}
			}
			if !strings.ContainsRune("+-*/%^<>=,(){}[]@:", rune(c)) {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			out = append(out, token{tPunct, string(c)})
			i++
		}
	}
	return out, nil
}

var (
	aggregations = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
		"quantile": true, "limitk": true, "limit_ratio": true,
	}
	// Keywords that are never metric names. inf and nan are numbers.
	keywords = map[string]bool{
		"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "inf": true, "nan": true, "start": true, "end": true,
	}
	// Clauses followed by a list of label names.
	labelClauses = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
)

// matcher is one label matcher of a selector: name op "value".
type matcher struct {
	Name, Op, Value string
}

// selector is a vector selector: a metric name and its matchers.
type selector struct {
	Metric   string
	Matchers []matcher
}

// grouping is a by/without/on/ignoring/group_left/group_right clause and
// the metrics it applies to: the argument of its aggregation, or (for the
// vector-matching clauses) every metric of the enclosing parentheses.
type grouping struct {
	Clause  string
	Labels  []string
	Metrics []string
}

type analysis struct {
	Selectors []selector
	Groupings []grouping
}

// frame is one level of parentheses.
type frame struct {
	metrics []string
	// Clauses that apply to this frame's metrics once it closes: the
	// leading by/without of an aggregation, and the vector-matching
	// clauses found at this level.
	pending []grouping
	// aggArg: this frame is the argument of an aggregation, which may be
	// followed by a trailing by/without clause.
	aggArg bool
}

// analyze returns the selectors and grouping clauses of a PromQL expression.
func analyze(expr string) (analysis, error) {
	toks, err := lex(expr)
	if err != nil {
		return analysis{}, err
	}
	var a analysis
	stack := []*frame{{}}
	at := func(i int) token {
		if i < len(toks) {
			return toks[i]
		}
		return token{kind: tPunct, text: ""}
	}
	isPunct := func(i int, s string) bool { t := at(i); return t.kind == tPunct && t.text == s }

	// labelList parses "(a, b, ...)" at i (optional for group_left and
	// group_right) and returns the labels and the index after it.
	labelList := func(i int, optional bool) ([]string, int, error) {
		if !isPunct(i, "(") {
			if optional {
				return nil, i, nil
			}
			return nil, i, fmt.Errorf("expected ( after grouping clause")
		}
		var labels []string
		i++
		for !isPunct(i, ")") {
			t := at(i)
			switch {
			case t.kind == tIdent:
				labels = append(labels, t.text)
			case t.kind == tPunct && t.text == ",":
			default:
				return nil, i, fmt.Errorf("unexpected %q in label list", t.text)
			}
			i++
			if i >= len(toks) {
				return nil, i, fmt.Errorf("unterminated label list")
			}
		}
		return labels, i + 1, nil
	}

	// closeFrame resolves the pending clauses of the innermost frame and
	// hands its metrics to its parent.
	closeFrame := func() *frame {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, g := range f.pending {
			g.Metrics = slices.Clone(f.metrics)
			a.Groupings = append(a.Groupings, g)
		}
		if len(stack) > 0 {
			parent := stack[len(stack)-1]
			parent.metrics = append(parent.metrics, f.metrics...)
		}
		return f
	}

	for i := 0; i < len(toks); {
		t := toks[i]
		switch {
		case t.kind == tPunct && t.text == "(":
			stack = append(stack, &frame{})
			i++
		case t.kind == tPunct && t.text == ")":
			if len(stack) == 1 {
				return a, fmt.Errorf("unbalanced )")
			}
			f := closeFrame()
			i++
			// A trailing "by (...)"/"without (...)" after an aggregation's
			// argument applies to that argument's metrics.
			if f.aggArg && at(i).kind == tIdent && (at(i).text == "by" || at(i).text == "without") {
				labels, next, err := labelList(i+1, false)
				if err != nil {
					return a, err
				}
				a.Groupings = append(a.Groupings, grouping{Clause: at(i).text, Labels: labels, Metrics: slices.Clone(f.metrics)})
				i = next
			}
		case t.kind == tPunct && t.text == "[":
			// Range or subquery: durations and variables only.
			for i < len(toks) && !isPunct(i, "]") {
				i++
			}
			i++
		case t.kind == tPunct && t.text == "{":
			// A selector without a metric name: only {__name__="..."}.
			sel, next, err := parseMatchers(toks, i)
			if err != nil {
				return a, err
			}
			for _, m := range sel {
				if m.Name == "__name__" && m.Op == "=" {
					s := selector{Metric: m.Value, Matchers: sel}
					a.Selectors = append(a.Selectors, s)
					stack[len(stack)-1].metrics = append(stack[len(stack)-1].metrics, s.Metric)
				}
			}
			i = next
		case t.kind == tIdent && aggregations[t.text] && (isPunct(i+1, "(") || at(i+1).text == "by" || at(i+1).text == "without"):
			i++
			var lead *grouping
			if at(i).kind == tIdent {
				labels, next, err := labelList(i+1, false)
				if err != nil {
					return a, err
				}
				lead = &grouping{Clause: at(i).text, Labels: labels}
				i = next
			}
			if !isPunct(i, "(") {
				return a, fmt.Errorf("expected ( after aggregation %s", t.text)
			}
			f := &frame{aggArg: lead == nil}
			if lead != nil {
				f.pending = append(f.pending, *lead)
			}
			stack = append(stack, f)
			i++
		case t.kind == tIdent && labelClauses[t.text]:
			// on/ignoring/group_left/group_right of a binary operation (a
			// stray by/without would land here too).
			labels, next, err := labelList(i+1, t.text == "group_left" || t.text == "group_right")
			if err != nil {
				return a, err
			}
			f := stack[len(stack)-1]
			f.pending = append(f.pending, grouping{Clause: t.text, Labels: labels})
			i = next
		case t.kind == tIdent && isPunct(i+1, "("):
			// A function call.
			i++
		case t.kind == tIdent && keywords[strings.ToLower(t.text)]:
			i++
		case t.kind == tIdent:
			s := selector{Metric: t.text}
			i++
			if isPunct(i, "{") {
				ms, next, err := parseMatchers(toks, i)
				if err != nil {
					return a, err
				}
				s.Matchers = ms
				i = next
			}
			a.Selectors = append(a.Selectors, s)
			stack[len(stack)-1].metrics = append(stack[len(stack)-1].metrics, s.Metric)
		default:
			i++
		}
	}
	if len(stack) != 1 {
		return a, fmt.Errorf("unbalanced (")
	}
	closeFrame()
	return a, nil
}

// parseMatchers parses "{name op "value", ...}" starting at the "{" at i.
func parseMatchers(toks []token, i int) ([]matcher, int, error) {
	var out []matcher
	i++ // {
	for {
		if i >= len(toks) {
			return nil, i, fmt.Errorf("unterminated {")
		}
		t := toks[i]
		if t.kind == tPunct && t.text == "}" {
			return out, i + 1, nil
		}
		if t.kind == tPunct && t.text == "," {
			i++
			continue
		}
		if t.kind != tIdent || i+2 >= len(toks) {
			return nil, i, fmt.Errorf("expected a label name in matchers, got %q", t.text)
		}
		op, val := toks[i+1], toks[i+2]
		if op.kind != tPunct || !slices.Contains([]string{"=", "!=", "=~", "!~"}, op.text) {
			return nil, i, fmt.Errorf("expected a matcher operator after %s, got %q", t.text, op.text)
		}
		if val.kind != tString {
			return nil, i, fmt.Errorf("expected a string after %s%s, got %q", t.text, op.text, val.text)
		}
		out = append(out, matcher{Name: t.text, Op: op.text, Value: val.text})
		i += 3
	}
}

func TestLex(t *testing.T) {
	toks, err := lex(`rate(x_total{a=~"b|c", d!="e\"f"}[$__rate_interval]) > 1e-3 # comment sum(y)`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, tk.text)
	}
	want := []string{"rate", "(", "x_total", "{", "a", "=~", "b|c", ",", "d", "!=", `e"f`, "}", "[", "$__rate_interval", "]", ")", ">", "1e-3"}
	if !slices.Equal(got, want) {
		t.Fatalf("lex:\n got %q\nwant %q", got, want)
	}
	for _, bad := range []string{`x{a="b}`, `x ; y`, `${unterminated`} {
		if _, err := lex(bad); err == nil {
			t.Errorf("lex(%q): no error", bad)
		}
	}
}

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		selectors []string // metric{matcher names...}
		groupings []string // clause(labels)[metrics]
	}{
		{
			expr:      `histogram_quantile(0.99, sum by (le, host) (rate(d_bucket{job=~".*x.*"}[$__rate_interval])))`,
			selectors: []string{"d_bucket{job}"},
			groupings: []string{"by(le,host)[d_bucket]"},
		},
		{
			// A trailing clause, vector matching and keywords.
			expr:      `max(a{x="1"} offset 5m) without (instance) / on (x) group_left b > bool 0 and c unless d or e`,
			selectors: []string{"a{x}", "b", "c", "d", "e"},
			groupings: []string{"without(instance)[a]", "on(x)[a,b,c,d,e]", "group_left()[a,b,c,d,e]"},
		},
		{
			// Multi-line, with comments, strings that look like code,
			// functions, a subquery, Inf and a selector by __name__.
			expr: `
				# sum(not_a_metric)
				count(max by (namespace, name) (time() - ts{namespace=~"$namespace", msg="sum(y)"}) > 600) or vector(0)
				+ absent(up{job=~".*tokensync.*"} == 1)
				+ max_over_time(z[1h:5m]) + Inf + {__name__="w", a="b"}`,
			selectors: []string{"ts{namespace,msg}", "up{job}", "z", "w{__name__,a}"},
			groupings: []string{"by(namespace,name)[ts]"},
		},
		{
			expr:      `sum(rate(r_total{result="failure"}[15m])) by (reason) / ignoring(reason) group_left sum(rate(r_total[15m]))`,
			selectors: []string{"r_total{result}", "r_total"},
			groupings: []string{"by(reason)[r_total]", "ignoring(reason)[r_total,r_total]", "group_left()[r_total,r_total]"},
		},
	} {
		a, err := analyze(tc.expr)
		if err != nil {
			t.Errorf("analyze(%q): %v", tc.expr, err)
			continue
		}
		var sels, groups []string
		for _, s := range a.Selectors {
			var names []string
			for _, m := range s.Matchers {
				names = append(names, m.Name)
			}
			if len(names) > 0 {
				sels = append(sels, s.Metric+"{"+strings.Join(names, ",")+"}")
			} else {
				sels = append(sels, s.Metric)
			}
		}
		for _, g := range a.Groupings {
			groups = append(groups, g.Clause+"("+strings.Join(g.Labels, ",")+")["+strings.Join(g.Metrics, ",")+"]")
		}
		if !slices.Equal(sels, tc.selectors) {
			t.Errorf("analyze(%q) selectors:\n got %q\nwant %q", tc.expr, sels, tc.selectors)
		}
		if !slices.Equal(groups, tc.groupings) {
			t.Errorf("analyze(%q) groupings:\n got %q\nwant %q", tc.expr, groups, tc.groupings)
		}
	}
	for _, bad := range []string{`sum(x`, `x)`, `x{a}`, `x{a="b" c="d"`, `sum by x (y)`} {
		if _, err := analyze(bad); err == nil {
			t.Errorf("analyze(%q): no error", bad)
		}
	}
}
