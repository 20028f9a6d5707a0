// Package monitoring_test checks the monitoring artefacts of config/monitoring
// against the code: every metric and label the alerting rules and the
// Grafana dashboard use must exist in the registry the manager builds, every
// alert must carry its severity, summary, description and a runbook_url
// whose anchor exists, and the dashboard must be importable as is.
package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// root is the repository's root, from this package's directory.
const root = "../.."

const runbookPrefix = "https://github.com/tokensync/tokensync/blob/main/"

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type promRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       map[string]any `json:"spec"`
	// groups is Spec, decoded strictly.
	groups []ruleGroup
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// loadRules reads config/monitoring/prometheusrule.yaml, strictly: an
// unknown field (a typo such as annotaions) fails.
func loadRules(t *testing.T) promRule {
	t.Helper()
	var pr promRule
	b := readFile(t, "config/monitoring/prometheusrule.yaml")
	if err := yaml.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml is a %s %s", pr.APIVersion, pr.Kind)
	}
	var spec struct {
		Groups []ruleGroup `json:"groups"`
	}
	raw, err := json.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &spec); err != nil {
		t.Fatalf("prometheusrule.yaml spec: %v", err)
	}
	pr.groups = spec.Groups
	return pr
}

func alerts(t *testing.T) []rule {
	t.Helper()
	var out []rule
	for _, g := range loadRules(t).groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules in prometheusrule.yaml")
	}
	return out
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Datasource   *datasource `json:"datasource"`
	Expr         string      `json:"expr"`
	RefID        string      `json:"refId"`
	LegendFormat string      `json:"legendFormat"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Query      any         `json:"query"`
	Definition string      `json:"definition"`
	Datasource *datasource `json:"datasource"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, "config/monitoring/grafana-dashboard.json"), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// allPanels returns the panels, with those nested in collapsed rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// dashboardExprs returns every PromQL expression of the dashboard, keyed by
// where it is, and the label of each label_values() variable query.
func dashboardExprs(t *testing.T, d dashboard) (exprs map[string]string, varLabels map[string][2]string) {
	t.Helper()
	exprs = map[string]string{}
	varLabels = map[string][2]string{}
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			exprs[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: unsupported query %q (only label_values(selector, label))", v.Name, v.Definition)
			continue
		}
		where := "variable " + v.Name
		if m[1] != "" {
			exprs[where] = m[1]
		}
		varLabels[where] = [2]string{m[1], m[2]}
	}
	return exprs, varLabels
}

// TestCheckRejectsMistakes makes sure the checks below fail on the
// mistakes they are there for, and accept correct expressions.
func TestCheckRejectsMistakes(t *testing.T) {
	known := knownSeries(t)
	ctrl := controllerName(t)
	for _, bad := range []string{
		`tokensync_token_expiry_timestamp_seconds - time()`,                      // misspelt metric
		`sum by (host) (rate(tokensync_token_requests_total[5m]))`,               // no host label
		`sum(rate(tokensync_token_requests_total[5m])) by (host)`,                // same, trailing clause
		`max by (namespace, name, secret) (tokensync_ready_status)`,              // no secret label
		`tokensync_ready_status{state="False"}`,                                  // no such label
		`tokensync_token_requests_total{result="failed"}`,                        // no such value
		`tokensync_ready_status{condition=~"False|Unkown"}`,                      // misspelt value
		`rate(tokensync_token_request_duration_seconds[5m])`,                     // a histogram's family name selects nothing
		`sum by (le) (rate(tokensync_token_request_duration_seconds_count[5m]))`, // le only on _bucket
		`workqueue_depth{controller="oauthclienttokens"}`,                        // not the manager's controller
		`sum(tokensync_token_expiration_timestamp_seconds) without (host)`,       // no host label
		`sum(rate(tokensync_token_requests_total{result="failure"}[5m])`,         // unbalanced
	} {
		if errs := check(bad, known, ctrl); len(errs) == 0 {
			t.Errorf("check(%q) found no problem", bad)
		}
	}
	for _, good := range []string{
		`histogram_quantile(0.9, sum by (le, host) (rate(tokensync_token_request_duration_seconds_bucket[5m])))`,
		`sum by (namespace) (rate(tokensync_token_requests_total{result="failure", reason!=""}[5m]))`,
		`max by (namespace, name, condition) (tokensync_ready_status{condition=~"False|Unknown", namespace=~"$namespace"}) == 1`,
		`sum(controller_runtime_reconcile_errors_total{controller="` + ctrl + `"})`,
		`absent(up{job=~".*tokensync.*"} == 1)`,
	} {
		if errs := check(good, known, ctrl); len(errs) > 0 {
			t.Errorf("check(%q): %v", good, errs)
		}
	}
}

func TestAlertsUseRealMetrics(t *testing.T) {
	known := knownSeries(t)
	ctrl := controllerName(t)
	for _, r := range alerts(t) {
		for _, err := range check(r.Expr, known, ctrl) {
			t.Errorf("alert %s: %v", r.Alert, err)
		}
	}
}

func TestDashboardUsesRealMetrics(t *testing.T) {
	known := knownSeries(t)
	ctrl := controllerName(t)
	exprs, varLabels := dashboardExprs(t, loadDashboard(t))
	used := map[string]bool{}
	for where, expr := range exprs {
		for _, err := range check(expr, known, ctrl) {
			t.Errorf("%s: %v", where, err)
		}
		if a, err := analyze(expr); err == nil {
			for _, s := range a.Selectors {
				used[known[s.Metric].family] = true
			}
		}
	}
	for where, v := range varLabels {
		a, err := analyze(v[0])
		if err != nil || len(a.Selectors) != 1 {
			t.Errorf("%s: label_values needs one metric", where)
			continue
		}
		if s, ok := known[a.Selectors[0].Metric]; ok && !s.labels[v[1]] {
			t.Errorf("%s: %s has no label %s", where, a.Selectors[0].Metric, v[1])
		}
	}
	// The dashboard shows every tokensync metric.
	for _, s := range known {
		if strings.HasPrefix(s.family, "tokensync_") && !used[s.family] {
			t.Errorf("the dashboard does not use %s", s.family)
		}
	}
}

// TestDocumentedMetrics checks docs/monitoring.md lists every tokensync
// metric with its labels in its metrics table, and that the queries of its
// promql code blocks (one per line) use real metrics and labels.
func TestDocumentedMetrics(t *testing.T) {
	known := knownSeries(t)
	doc := string(readFile(t, "docs/monitoring.md"))
	rows := map[string]string{}
	var queries []string
	inPromQL := false
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "```promql"):
			inPromQL = true
		case strings.HasPrefix(line, "```"):
			inPromQL = false
		case inPromQL:
			if q := strings.TrimSpace(line); q != "" && !strings.HasPrefix(q, "#") {
				queries = append(queries, q)
			}
		case strings.HasPrefix(line, "| `tokensync_"):
			name := strings.Trim(strings.Split(line, "|")[1], " `")
			rows[name] = line
		}
	}
	families := map[string]map[string]bool{}
	for _, s := range known {
		if strings.HasPrefix(s.family, "tokensync_") {
			families[s.family] = s.own
		}
	}
	for family, labels := range families {
		row, ok := rows[family]
		if !ok {
			t.Errorf("docs/monitoring.md has no metrics table row for %s", family)
			continue
		}
		for l := range labels {
			if !strings.Contains(row, "`"+l+"`") {
				t.Errorf("docs/monitoring.md: the row of %s does not name its label %s", family, l)
			}
		}
	}
	for name := range rows {
		if families[name] == nil {
			t.Errorf("docs/monitoring.md documents %s, which the manager does not serve", name)
		}
	}
	if len(queries) < 5 {
		t.Errorf("found %d queries in the promql blocks of docs/monitoring.md", len(queries))
	}
	ctrl := controllerName(t)
	for _, q := range queries {
		for _, err := range check(q, known, ctrl) {
			t.Errorf("docs/monitoring.md: %s: %v", q, err)
		}
	}
}

// anchors returns the GitHub anchors of a Markdown file's headings:
// lower case, punctuation other than - and _ dropped, spaces to -, and -1,
// -2... for repeated headings. Headings in fenced code blocks do not count.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	link := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			switch {
			case fence == "":
				fence = trimmed[:3]
			case strings.HasPrefix(trimmed, fence):
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		text := link.ReplaceAllString(strings.TrimSpace(line[level:]), "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func TestAnchors(t *testing.T) {
	got := anchors("# Troubleshooting\n## Start here\n```promql\n# not a heading\n```\n" +
		"## Token URL allowlist, link-local and plain http\n### `tokensync_ready_status` [TokenExpired](#x)\n## Start here\n#nospace\n")
	for _, want := range []string{"troubleshooting", "start-here", "start-here-1", "token-url-allowlist-link-local-and-plain-http", "tokensync_ready_status-tokenexpired"} {
		if !got[want] {
			t.Errorf("no anchor %s in %v", want, got)
		}
	}
	if got["not-a-heading"] || got["nospace"] {
		t.Errorf("anchors from a code block or a non-heading: %v", got)
	}
}

func TestAlertMetadata(t *testing.T) {
	rules := alerts(t)
	monitoringDoc := anchors(string(readFile(t, "docs/monitoring.md")))
	names := map[string]bool{}
	docs := map[string]map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Record)
			continue
		}
		if names[r.Alert] {
			t.Errorf("alert %s is defined twice", r.Alert)
		}
		names[r.Alert] = true
		if !strings.HasPrefix(r.Alert, "Tokensync") {
			t.Errorf("alert %s: name does not start with Tokensync", r.Alert)
		}
		if r.For != "" {
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for: %v", r.Alert, err)
			}
		}
		if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
			t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, a)
			}
		}
		if !monitoringDoc[strings.ToLower(r.Alert)] {
			t.Errorf("alert %s: docs/monitoring.md has no %q heading", r.Alert, r.Alert)
		}

		u := r.Annotations["runbook_url"]
		rel, ok := strings.CutPrefix(u, runbookPrefix)
		if !ok {
			t.Errorf("alert %s: runbook_url %q does not start with %s", r.Alert, u, runbookPrefix)
			continue
		}
		file, anchor, ok := strings.Cut(rel, "#")
		if !ok || anchor == "" {
			t.Errorf("alert %s: runbook_url %q has no #anchor", r.Alert, u)
			continue
		}
		if docs[file] == nil {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
			if err != nil {
				t.Errorf("alert %s: runbook_url: %v", r.Alert, err)
				continue
			}
			docs[file] = anchors(string(b))
		}
		if !docs[file][anchor] {
			t.Errorf("alert %s: runbook_url %q: %s has no heading with anchor #%s", r.Alert, u, file, anchor)
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]*)#([^)\s]+)\)`)

// TestMonitoringDocLinks checks the anchors of the links of
// docs/monitoring.md, to itself and to other pages.
func TestMonitoringDocLinks(t *testing.T) {
	doc := string(readFile(t, "docs/monitoring.md"))
	pages := map[string]map[string]bool{"": anchors(doc)}
	for _, m := range mdLink.FindAllStringSubmatch(doc, -1) {
		page, anchor := m[1], m[2]
		if strings.Contains(page, "://") {
			continue
		}
		if pages[page] == nil {
			pages[page] = anchors(string(readFile(t, "docs/"+page)))
		}
		if !pages[page][anchor] {
			t.Errorf("docs/monitoring.md links to %s#%s, which has no such heading", page, anchor)
		}
	}
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: the ${datasource} object references need 36 or later", d.SchemaVersion)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("no Prometheus datasource variable named datasource: %+v", v)
	}
	if v, ok := vars["namespace"]; !ok || v.Type != "query" {
		t.Errorf("no query variable named namespace: %+v", v)
	}
	isOurs := func(ds *datasource) bool { return ds != nil && ds.Type == "prometheus" && ds.UID == "${datasource}" }
	for _, v := range d.Templating.List {
		if v.Type == "query" && !isOurs(v.Datasource) {
			t.Errorf("variable %s: datasource %+v, want ${datasource}", v.Name, v.Datasource)
		}
	}

	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: no id", name)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id also used by %q", name, other)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("%s: no title", name)
		}
		if !isOurs(p.Datasource) {
			t.Errorf("%s: datasource %+v, want {type: prometheus, uid: ${datasource}}", name, p.Datasource)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", name, g)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: target %s has no expr", name, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: missing or repeated refId %q", name, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && !isOurs(tg.Datasource) {
				t.Errorf("%s: target %s datasource %+v, want ${datasource}", name, tg.RefID, tg.Datasource)
			}
		}
	}

	// Top-level panels do not overlap.
	ps := d.Panels
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			a, b := ps[i].GridPos, ps[j].GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %d and %d overlap", ps[i].ID, ps[j].ID)
			}
		}
	}
}

// TestKustomization checks config/monitoring installs its three objects
// next to config/default, and that the ServiceMonitor selects the metrics
// Service of config/default by its labels and port name.
func TestKustomization(t *testing.T) {
	type kustomization struct {
		Namespace          string   `json:"namespace"`
		NamePrefix         string   `json:"namePrefix"`
		Resources          []string `json:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `json:"name"`
			Files   []string `json:"files"`
			Options struct {
				DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
				Labels                map[string]string `json:"labels"`
			} `json:"options"`
		} `json:"configMapGenerator"`
	}
	var mon, def kustomization
	if err := yaml.Unmarshal(readFile(t, "config/monitoring/kustomization.yaml"), &mon); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(readFile(t, "config/default/kustomization.yaml"), &def); err != nil {
		t.Fatal(err)
	}
	if mon.Namespace != def.Namespace || mon.NamePrefix != def.NamePrefix {
		t.Errorf("namespace/namePrefix %s/%s, config/default has %s/%s", mon.Namespace, mon.NamePrefix, def.Namespace, def.NamePrefix)
	}
	for _, r := range []string{"servicemonitor.yaml", "prometheusrule.yaml"} {
		if !slices.Contains(mon.Resources, r) {
			t.Errorf("kustomization.yaml does not list %s", r)
		}
	}
	found := false
	for _, g := range mon.ConfigMapGenerator {
		for _, f := range g.Files {
			if strings.HasSuffix(f, "=grafana-dashboard.json") || f == "grafana-dashboard.json" {
				found = true
				if g.Options.Labels["grafana_dashboard"] != "1" || !g.Options.DisableNameSuffixHash {
					t.Errorf("the dashboard ConfigMap needs the label grafana_dashboard: \"1\" and disableNameSuffixHash")
				}
			}
		}
	}
	if !found {
		t.Error("no configMapGenerator for grafana-dashboard.json")
	}

	var sm struct {
		Kind string `json:"kind"`
		Spec struct {
			Endpoints []struct {
				Port            string `json:"port"`
				Scheme          string `json:"scheme"`
				BearerTokenFile string `json:"bearerTokenFile"`
				HonorLabels     bool   `json:"honorLabels"`
			} `json:"endpoints"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(readFile(t, "config/monitoring/servicemonitor.yaml"), &sm); err != nil {
		t.Fatal(err)
	}
	var svc struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Ports []struct {
				Name string `json:"name"`
			} `json:"ports"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(readFile(t, "config/default/metrics_service.yaml"), &svc); err != nil {
		t.Fatal(err)
	}
	if sm.Kind != "ServiceMonitor" || len(sm.Spec.Endpoints) != 1 || len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Fatalf("servicemonitor.yaml: want a ServiceMonitor with one endpoint and a label selector")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service does not have", k, v)
		}
	}
	ep := sm.Spec.Endpoints[0]
	if !slices.ContainsFunc(svc.Spec.Ports, func(p struct {
		Name string `json:"name"`
	}) bool {
		return p.Name == ep.Port
	}) {
		t.Errorf("the ServiceMonitor scrapes port %q, which the metrics Service does not have", ep.Port)
	}
	if ep.Scheme != "https" || ep.BearerTokenFile == "" {
		t.Error("the metrics endpoint is https with authentication: scheme https and a bearer token are needed")
	}
	if !ep.HonorLabels {
		t.Error("honorLabels must be true, or the objects' namespace label becomes exported_namespace")
	}
}

// TestAlertsWithPromtool checks the rules and runs the unit tests of
// testdata/alerts_test.yaml with promtool, when it is installed
// (hack/install-promtool.sh). TOKENSYNC_REQUIRE_PROMTOOL=1 turns the skip
// into a failure, for CI.
func TestAlertsWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TOKENSYNC_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found (TOKENSYNC_REQUIRE_PROMTOOL=1): run hack/install-promtool.sh")
		}
		t.Skip("promtool not found: run hack/install-promtool.sh")
	}
	dir := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": loadRules(t).groups})
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": rules, "alerts_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Every alert has a unit test.
	for _, r := range alerts(t) {
		if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
			t.Errorf("testdata/alerts_test.yaml does not test %s", r.Alert)
		}
	}
}
