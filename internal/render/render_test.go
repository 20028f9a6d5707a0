package render

import (
	"runtime"
	"strings"
	"testing"
	"time"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

var view = View{AccessToken: "tok", TokenType: "Bearer", ExpiresAt: "2026-11-22T13:00:00Z", ExpiresIn: 3600, Scope: "read write"}

func TestRenders(t *testing.T) {
	tpls, err := Parse(map[string]v1alpha1.DataTemplate{
		"header": `{{ .TokenType }} {{ .AccessToken }}`,
		"json":   `{"token":{{ json .AccessToken }},"exp":{{ .ExpiresIn }}}`,
		"b64":    `{{ .AccessToken | b64enc }}`,
		"pf":     `{{ printf "%s-%5d" .Scope .ExpiresIn }}`,
		"if":     `{{ if eq .TokenType "Bearer" }}b{{ else }}x{{ end }}{{ with .Scope }}{{ upper . }}{{ end }}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpls.Render(view)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"header": "Bearer tok", "json": `{"token":"tok","exp":3600}`, "b64": "dG9r", "pf": "read write- 3600", "if": "bREAD WRITE",
	} {
		if string(out[k]) != want {
			t.Errorf("%s = %q, want %q", k, out[k], want)
		}
	}
}

func stalledReason(t *testing.T, err error) string {
	t.Helper()
	r, stalled, ok := failure.ReasonOf(err)
	if !ok || !stalled {
		t.Fatalf("want a Stalled error, got %v", err)
	}
	return r
}

// Templates a tenant can write to exhaust the manager: each is refused or
// stopped quickly, with little memory allocated.
func TestHostileTemplatesAreBounded(t *testing.T) {
	big := `{{printf "%01000000d" 0}}`
	for name, text := range map[string]string{
		"range":                     `{{range 300}}{{printf "%01000000d" 0}}{{end}}`,
		"empty loop":                `{{range 1000000000}}{{end}}`,
		"recursion":                 `{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`,
		"block":                     `{{block "b" .}}x{{end}}`,
		"variables":                 `{{$x := printf "%01000000d" 0}}{{$x}}{{$x}}`,
		"variable in if":            `{{if $x := .AccessToken}}{{$x}}{{end}}`,
		"output":                    strings.Repeat(big, 600),
		"many widths in one printf": `{{printf "` + strings.Repeat("%1000000d", 1800) + `"}}`,
		"precision":                 `{{printf "%.1000000d%.1000000d%.1000000d%.1000000d%.1000000d" 1 1 1 1 1}}`,
		"growth":                    `{{printf "%0250000d" 0 | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc | b64enc}}`,
		"many arguments":            `{{printf "%s" ` + strings.Repeat(`(printf "%0200000d" 0) `, 200) + `}}`,
		"escapers":                  `{{js (printf "%0900000d" 0)}}{{html (printf "%0900000d" 0)}}`,
		"star width":                `{{printf "%*d%*d%*d%*d%*d" 1000000 1 1000000 1 1000000 1 1000000 1 1000000 1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			tpls, err := Parse(map[string]v1alpha1.DataTemplate{"k": v1alpha1.DataTemplate(text)})
			if err == nil {
				_, err = tpls.Render(view)
			}
			runtime.ReadMemStats(&after)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %s", took)
			}
			if got := stalledReason(t, err); got != v1alpha1.ReasonInvalidTemplate {
				t.Fatalf("reason %s", got)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

func TestOutputBounds(t *testing.T) {
	// Just under the per-key bound renders; just over does not.
	ok := map[string]v1alpha1.DataTemplate{"k": `{{printf "%0200000d" 0}}`}
	tpls, err := Parse(ok)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tpls.Render(view); err != nil || len(out["k"]) != 200000 {
		t.Fatalf("200 KB key: %d bytes, %v", len(out["k"]), err)
	}
	tpls, err = Parse(map[string]v1alpha1.DataTemplate{"k": `{{printf "%0200000d" 0}}{{printf "%0100000d" 0}}`})
	if err == nil {
		_, err = tpls.Render(view)
	}
	stalledReason(t, err)
	// Three keys of 200 KB: over the total.
	three := map[string]v1alpha1.DataTemplate{"a": ok["k"], "b": ok["k"], "c": ok["k"]}
	if _, err := Parse(three); err == nil {
		t.Fatal("600 KB in all: want InvalidTemplate")
	}
}

func TestUnknownFieldsAndFunctions(t *testing.T) {
	for _, text := range []string{`{{ .Nope }}`, `{{ nope . }}`, `{{ .AccessToken`} {
		if _, err := Parse(map[string]v1alpha1.DataTemplate{"k": v1alpha1.DataTemplate(text)}); err == nil {
			t.Errorf("%q: want an error", text)
		} else if strings.Contains(err.Error(), "tok") && !strings.Contains(text, "tok") {
			t.Errorf("%q: error quotes a value: %v", text, err)
		}
	}
}

func TestRenderErrorsNeverQuoteTheToken(t *testing.T) {
	tpls, err := Parse(map[string]v1alpha1.DataTemplate{"k": `{{ b64dec .AccessToken }}`})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpls.Render(View{AccessToken: "not*base64-secret-token"})
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("err = %v", err)
	}
}
