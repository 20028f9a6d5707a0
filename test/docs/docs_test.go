// Package docs_test checks that the documentation covers every condition
// reason the API declares, so a new reason cannot ship undocumented.
package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// reasons returns the values of the Reason* constants of api/v1alpha1.
func reasons(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join("..", "..", "api", "v1alpha1", "conditions.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d reasons in conditions.go: is the parser still right?", len(out))
	}
	return out
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryReasonHasATroubleshootingSection checks docs/troubleshooting.md
// has a "## Reason" heading (the anchor alerts and messages link to) for
// each reason.
func TestEveryReasonHasATroubleshootingSection(t *testing.T) {
	doc := readDoc(t, "troubleshooting.md")
	headings := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			headings[strings.TrimSpace(h)] = true
		}
	}
	for _, r := range reasons(t) {
		if !headings[r] {
			t.Errorf("docs/troubleshooting.md has no \"## %s\" section", r)
		}
	}
}

// TestEveryReasonIsInTheConceptsTable checks the reasons table of
// docs/concepts.md lists each reason.
func TestEveryReasonIsInTheConceptsTable(t *testing.T) {
	doc := readDoc(t, "concepts.md")
	for _, r := range reasons(t) {
		if !strings.Contains(doc, "| `"+r+"` |") {
			t.Errorf("docs/concepts.md's reasons table has no row for %s", r)
		}
	}
}
