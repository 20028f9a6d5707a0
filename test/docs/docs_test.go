// Package docs_test checks that the documentation covers every condition
// reason the API declares, so a new reason cannot ship undocumented.
package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
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

// TestCitedTestsExist checks that every test the documentation names
// (`TestXxx` or `FuzzXxx` in backquotes) is a function of some _test.go
// file of the repository, so that a renamed or deleted test cannot leave
// docs/reliability.md promising a proof that no longer runs.
func TestCitedTestsExist(t *testing.T) {
	defined := map[string]bool{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil {
				defined[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)")
	for _, doc := range []string{"reliability.md", "security.md", "development.md", "performance.md"} {
		b, err := os.ReadFile(filepath.Join(root, "docs", doc))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cited.FindAllStringSubmatch(string(b), -1) {
			if !defined[m[1]] {
				t.Errorf("docs/%s cites %s, which no test file defines", doc, m[1])
			}
		}
	}
}
