// Command helmcheck checks the Helm chart in charts/tokensync against the
// kustomize manifests under config/, which stay the primary install path.
// hack/verify-helm.sh runs it; it does not run helm itself.
//
//	helmcheck render -rendered FILE [-config DIR] [-prefix P] [-all-config-roles] [-same-as-kustomize] [-kinds K,K]
//	    FILE is `helm template --include-crds` output. Checks that every
//	    object decodes strictly into its Kubernetes type (no unknown or
//	    misplaced fields); that each Role/ClusterRole has the rules (and
//	    aggregation labels) of its config/ counterpart, named without the
//	    release prefix P; that bindings, Service and ServiceMonitor point at
//	    rendered objects; with -all-config-roles, that every config/ role is
//	    rendered; with -same-as-kustomize, that the Deployment and metrics
//	    Service equal config/manager/manager.yaml and
//	    config/default/metrics_service.yaml where it matters.
//	helmcheck docs -schema values.schema.json -values values.yaml -doc docs/helm.md
//	    Every value in the schema has a default in values.yaml and a row in
//	    the doc (written `name`), and values.yaml has nothing the schema lacks.
//	helmcheck dryrun -rendered FILE
//	    Starts an envtest API server (KUBEBUILDER_ASSETS), installs the
//	    CRDs of FILE and creates every other object with server-side dry run,
//	    so that the API server validates it. Kinds whose API the server does
//	    not serve (ServiceMonitor) are reported and skipped.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helmcheck render|docs|dryrun [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "render":
		err = cmdRender(os.Args[2:])
	case "docs":
		err = cmdDocs(os.Args[2:])
	case "dryrun":
		err = cmdDryRun(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helmcheck %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// problems collects every failed check, so that one run reports them all.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(append([]string{fmt.Sprintf("%d problem(s):", len(p))}, p...), "\n  - "))
}

// doc is one YAML document of a stream, raw and as unstructured.
type doc struct {
	raw []byte
	u   *unstructured.Unstructured
}

func (d doc) id() string { return d.u.GetKind() + "/" + d.u.GetName() }

// readDocs splits a multi-document YAML stream, skipping empty documents
// (helm emits comment-only ones for templates that render nothing).
func readDocs(path string) ([]doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []doc
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: document %d does not parse: %w\n%s", path, len(docs)+1, err, raw)
		}
		if len(m) == 0 {
			continue
		}
		docs = append(docs, doc{raw: raw, u: &unstructured.Unstructured{Object: m}})
	}
}

// typed returns an empty typed object for the kinds the chart renders.
func typed(kind string) any {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}
	case "Service":
		return &corev1.Service{}
	case "ServiceAccount":
		return &corev1.ServiceAccount{}
	case "ClusterRole":
		return &rbacv1.ClusterRole{}
	case "Role":
		return &rbacv1.Role{}
	case "ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "RoleBinding":
		return &rbacv1.RoleBinding{}
	}
	return nil
}

// configRoles reads every Role and ClusterRole under config/rbac and
// config/rollout-restart, by name.
func configRoles(configDir string) (map[string]doc, error) {
	roles := map[string]doc{}
	for _, dir := range []string{"rbac", "rollout-restart"} {
		files, err := filepath.Glob(filepath.Join(configDir, dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			docs, err := readDocs(f)
			if err != nil {
				return nil, err
			}
			for _, d := range docs {
				if k := d.u.GetKind(); k == "Role" || k == "ClusterRole" {
					roles[d.u.GetName()] = d
				}
			}
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("no roles under %s", configDir)
	}
	return roles, nil
}

// rulesAndLabels returns a role's rules and its rbac.authorization.k8s.io labels.
func rulesAndLabels(d doc) ([]rbacv1.PolicyRule, map[string]string, error) {
	var r rbacv1.ClusterRole // Role has the same metadata and rules fields.
	if err := yaml.UnmarshalStrict(d.raw, &r); err != nil {
		return nil, nil, err
	}
	agg := map[string]string{}
	for k, v := range r.Labels {
		if strings.HasPrefix(k, "rbac.authorization.k8s.io/") {
			agg[k] = v
		}
	}
	return r.Rules, agg, nil
}

func cmdRender(args []string) error {
	fs := flag.NewFlagSet("render", flag.ExitOnError)
	rendered := fs.String("rendered", "", "helm template --include-crds output")
	configDir := fs.String("config", "config", "kustomize config directory")
	prefix := fs.String("prefix", "", "name prefix of the rendered objects, the release's fullname and a dash (default: the Deployment's name less controller-manager)")
	allRoles := fs.Bool("all-config-roles", false, "require a rendered counterpart of every config/ role")
	sameAsKustomize := fs.Bool("same-as-kustomize", false, "compare the Deployment and metrics Service with config/")
	kinds := fs.String("kinds", "", "comma-separated kinds that must be rendered")
	_ = fs.Parse(args)
	if *rendered == "" {
		return errors.New("-rendered is required")
	}
	docs, err := readDocs(*rendered)
	if err != nil {
		return err
	}
	var p problems
	if *prefix == "" {
		for _, d := range docs {
			if d.u.GetKind() == "Deployment" {
				*prefix = strings.TrimSuffix(d.u.GetName(), "controller-manager")
			}
		}
	}

	// 1. Every object is complete and decodes strictly into its type.
	byKind := map[string][]doc{}
	seen := map[string]bool{}
	for _, d := range docs {
		if d.u.GetAPIVersion() == "" || d.u.GetKind() == "" || d.u.GetName() == "" {
			p.add("an object lacks apiVersion, kind or metadata.name:\n%s", d.raw)
			continue
		}
		key := d.id() + "@" + d.u.GetNamespace()
		if seen[key] {
			p.add("%s is rendered twice in namespace %q", d.id(), d.u.GetNamespace())
		}
		seen[key] = true
		byKind[d.u.GetKind()] = append(byKind[d.u.GetKind()], d)
		switch k := d.u.GetKind(); k {
		case "CustomResourceDefinition":
		case "ServiceMonitor":
			if d.u.GetAPIVersion() != "monitoring.coreos.com/v1" {
				p.add("%s: apiVersion %s", d.id(), d.u.GetAPIVersion())
			}
		default:
			obj := typed(k)
			if obj == nil {
				p.add("%s: unexpected kind", d.id())
				continue
			}
			if err := yaml.UnmarshalStrict(d.raw, obj); err != nil {
				p.add("%s does not decode strictly as %T: %v", d.id(), obj, err)
			}
		}
	}
	for _, k := range strings.Split(*kinds, ",") {
		if k != "" && len(byKind[k]) == 0 {
			p.add("no %s rendered", k)
		}
	}

	// 2. Roles equal their config/ counterparts.
	cfg, err := configRoles(*configDir)
	if err != nil {
		return err
	}
	renderedRoles := map[string]bool{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, d := range byKind[kind] {
			name := d.u.GetName()
			renderedRoles[kind+"/"+name] = true
			base, ok := strings.CutPrefix(name, *prefix)
			if !ok {
				p.add("%s: name lacks the prefix %q", d.id(), *prefix)
				continue
			}
			c, ok := cfg[base]
			if !ok {
				p.add("%s: no %s named %q under %s/rbac or %s/rollout-restart to compare it with", d.id(), kind, base, *configDir, *configDir)
				continue
			}
			if c.u.GetKind() != kind {
				p.add("%s: config/ has %s %s", d.id(), c.u.GetKind(), base)
			}
			gotRules, gotAgg, err1 := rulesAndLabels(d)
			wantRules, wantAgg, err2 := rulesAndLabels(c)
			if err := errors.Join(err1, err2); err != nil {
				p.add("%s: %v", d.id(), err)
				continue
			}
			if !reflect.DeepEqual(gotRules, wantRules) {
				p.add("%s: rules differ from config/ %s %s (regenerated by `make manifests`?):\n%s", d.id(), kind, base, diffYAML(wantRules, gotRules))
			}
			if !reflect.DeepEqual(gotAgg, wantAgg) {
				p.add("%s: aggregation labels %v, config/ has %v", d.id(), gotAgg, wantAgg)
			}
		}
	}
	if *allRoles {
		for name, c := range cfg {
			if !renderedRoles[c.u.GetKind()+"/"+*prefix+name] {
				p.add("config/ %s %s has no rendered counterpart %s%s", c.u.GetKind(), name, *prefix, name)
			}
		}
	}

	// 3. The Deployment, and what points at it.
	var dep *appsv1.Deployment
	if ds := byKind["Deployment"]; len(ds) != 1 {
		p.add("%d Deployments rendered, want 1", len(ds))
	} else {
		dep = &appsv1.Deployment{}
		if err := yaml.Unmarshal(ds[0].raw, dep); err != nil {
			return err
		}
		checkDeployment(&p, dep)
	}
	if dep != nil {
		sa := dep.Spec.Template.Spec.ServiceAccountName
		for _, d := range byKind["ServiceAccount"] {
			if d.u.GetName() != sa || d.u.GetNamespace() != dep.Namespace {
				p.add("%s in %q is not the Deployment's ServiceAccount %s in %q", d.id(), d.u.GetNamespace(), sa, dep.Namespace)
			}
		}
		for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
			for _, d := range byKind[kind] {
				var b rbacv1.RoleBinding
				if err := yaml.Unmarshal(d.raw, &b); err != nil {
					return err
				}
				if !renderedRoles[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
					p.add("%s: roleRef %s/%s is not rendered", d.id(), b.RoleRef.Kind, b.RoleRef.Name)
				}
				if strings.HasSuffix(b.RoleRef.Name, "-metrics-reader") {
					continue // bound to Prometheus, not to the manager
				}
				if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" ||
					b.Subjects[0].Name != sa || b.Subjects[0].Namespace != dep.Namespace {
					p.add("%s: subjects %+v, want the manager's ServiceAccount %s/%s", d.id(), b.Subjects, dep.Namespace, sa)
				}
			}
		}
		checkService(&p, byKind, dep)
	}

	// 4. Equivalence with the kustomize install.
	if *sameAsKustomize && dep != nil {
		if err := compareWithKustomize(&p, *configDir, dep, byKind["Service"]); err != nil {
			return err
		}
	}
	if err := p.err(); err != nil {
		return err
	}
	var names []string
	for k, ds := range byKind {
		names = append(names, fmt.Sprintf("%d %s", len(ds), k))
	}
	sort.Strings(names)
	fmt.Printf("helmcheck render: %s: %s: ok\n", *rendered, strings.Join(names, ", "))
	return nil
}

func checkDeployment(p *problems, dep *appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		p.add("Deployment selector %v does not select its pod template labels %v", dep.Spec.Selector, dep.Spec.Template.Labels)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "manager" {
		p.add("Deployment: want one container named manager")
		return
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add("Deployment: the manager container must have a read-only root filesystem and no privilege escalation")
	}
	nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) ||
		(pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot)
	if !nonRoot {
		p.add("Deployment: runAsNonRoot is not set")
	}
	ports := map[string]bool{}
	for _, cp := range c.Ports {
		ports[cp.Name] = true
	}
	for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil || !ports[pr.HTTPGet.Port.String()] {
			p.add("Deployment: a probe is missing or names no container port")
		}
	}
}

// checkService checks that the metrics Service selects the manager pods and
// targets a container port, and that a ServiceMonitor selects that Service.
func checkService(p *problems, byKind map[string][]doc, dep *appsv1.Deployment) {
	c := dep.Spec.Template.Spec.Containers
	ports := map[string]bool{}
	if len(c) == 1 {
		for _, cp := range c[0].Ports {
			ports[cp.Name] = true
		}
	}
	var svcs []corev1.Service
	for _, d := range byKind["Service"] {
		var s corev1.Service
		if err := yaml.Unmarshal(d.raw, &s); err != nil {
			p.add("%s: %v", d.id(), err)
			continue
		}
		svcs = append(svcs, s)
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
			p.add("Service %s does not select the manager pods", s.Name)
		}
		for _, sp := range s.Spec.Ports {
			if !ports[sp.TargetPort.String()] {
				p.add("Service %s: targetPort %s is not a container port", s.Name, sp.TargetPort.String())
			}
		}
	}
	for _, d := range byKind["ServiceMonitor"] {
		var sm struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
			Spec     struct {
				Endpoints []struct {
					Port            string         `json:"port"`
					Scheme          string         `json:"scheme"`
					BearerTokenFile string         `json:"bearerTokenFile"`
					TLSConfig       map[string]any `json:"tlsConfig"`
					HonorLabels     bool           `json:"honorLabels"`
				} `json:"endpoints"`
				Selector metav1.LabelSelector `json:"selector"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(d.raw, &sm); err != nil {
			p.add("%s: %v", d.id(), err)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		var target *corev1.Service
		for i := range svcs {
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(svcs[i].Labels)) && svcs[i].Namespace == sm.Metadata.Namespace {
				target = &svcs[i]
			}
		}
		if target == nil {
			p.add("%s selects no rendered Service", d.id())
			continue
		}
		for _, e := range sm.Spec.Endpoints {
			found := false
			for _, sp := range target.Spec.Ports {
				found = found || sp.Name == e.Port
			}
			if !found {
				p.add("%s: endpoint port %q is not a port of Service %s", d.id(), e.Port, target.Name)
			}
			if strings.HasPrefix(e.Port, "https") && (e.Scheme != "https" || e.BearerTokenFile == "" || e.TLSConfig == nil) {
				p.add("%s: secure metrics need scheme https, bearerTokenFile and tlsConfig", d.id())
			}
			if !e.HonorLabels {
				// The per-object series carry the object's namespace in a
				// "namespace" label; without honorLabels Prometheus renames it
				// exported_namespace and the alerts group every token under
				// the manager's namespace.
				p.add("%s: endpoint %q needs honorLabels: true (the metrics carry the object's namespace)", d.id(), e.Port)
			}
		}
	}
}

func compareWithKustomize(p *problems, configDir string, dep *appsv1.Deployment, svcDocs []doc) error {
	docs, err := readDocs(filepath.Join(configDir, "manager", "manager.yaml"))
	if err != nil {
		return err
	}
	var want *appsv1.Deployment
	for _, d := range docs {
		if d.u.GetKind() == "Deployment" {
			want = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict(d.raw, want); err != nil {
				return err
			}
		}
	}
	if want == nil {
		return errors.New("no Deployment in config/manager/manager.yaml")
	}
	if !reflect.DeepEqual(dep.Spec.Replicas, want.Spec.Replicas) {
		p.add("Deployment replicas differ from config/manager")
	}
	wp, gp := want.Spec.Template.Spec, dep.Spec.Template.Spec
	if wa, ga := want.Spec.Template.Annotations, dep.Spec.Template.Annotations; !reflect.DeepEqual(wa, ga) {
		p.add("pod annotations %v, config/manager has %v", ga, wa)
	}
	same := func(what string, w, g any) {
		if !reflect.DeepEqual(w, g) {
			p.add("%s differs from config/:\n%s", what, diffYAML(w, g))
		}
	}
	same("Deployment pod securityContext (config/manager/manager.yaml)", wp.SecurityContext, gp.SecurityContext)
	same("Deployment volumes (config/manager/manager.yaml)", wp.Volumes, gp.Volumes)
	same("Deployment terminationGracePeriodSeconds (config/manager/manager.yaml)", wp.TerminationGracePeriodSeconds, gp.TerminationGracePeriodSeconds)
	wc, gc := wp.Containers[0], gp.Containers[0]
	same("Deployment container name (config/manager/manager.yaml)", wc.Name, gc.Name)
	same("Deployment command (config/manager/manager.yaml)", wc.Command, gc.Command)
	same("Deployment ports (config/manager/manager.yaml)", wc.Ports, gc.Ports)
	same("Deployment container securityContext (config/manager/manager.yaml)", wc.SecurityContext, gc.SecurityContext)
	same("Deployment livenessProbe (config/manager/manager.yaml)", wc.LivenessProbe, gc.LivenessProbe)
	same("Deployment readinessProbe (config/manager/manager.yaml)", wc.ReadinessProbe, gc.ReadinessProbe)
	same("Deployment resources (config/manager/manager.yaml)", wc.Resources, gc.Resources)
	same("Deployment volumeMounts (config/manager/manager.yaml)", wc.VolumeMounts, gc.VolumeMounts)
	// Every argument of the kustomize install, with the same value ("--x"
	// for a boolean is "--x=true").
	norm := func(a string) string {
		if !strings.Contains(a, "=") {
			return a + "=true"
		}
		return a
	}
	got := map[string]bool{}
	for _, a := range gc.Args {
		got[norm(a)] = true
	}
	for _, a := range wc.Args {
		if !got[norm(a)] {
			p.add("Deployment args lack %s (config/manager/manager.yaml has it); args: %v", norm(a), gc.Args)
		}
	}

	// The metrics Service.
	sdocs, err := readDocs(filepath.Join(configDir, "default", "metrics_service.yaml"))
	if err != nil {
		return err
	}
	if len(sdocs) != 1 || len(svcDocs) != 1 {
		p.add("want one metrics Service in config/default/metrics_service.yaml and in the chart, got %d and %d", len(sdocs), len(svcDocs))
		return nil
	}
	var ws, gs corev1.Service
	if err := errors.Join(yaml.UnmarshalStrict(sdocs[0].raw, &ws), yaml.Unmarshal(svcDocs[0].raw, &gs)); err != nil {
		return err
	}
	same("metrics Service ports (config/default/metrics_service.yaml)", ws.Spec.Ports, gs.Spec.Ports)
	return nil
}

// diffYAML shows want and got, for a failed comparison.
func diffYAML(want, got any) string {
	w, _ := yaml.Marshal(want)
	g, _ := yaml.Marshal(got)
	return "    want:\n" + indent(string(w)) + "    got:\n" + indent(string(g))
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	return b.String()
}

// cmdDocs checks that the schema, values.yaml and the doc name the same values.
func cmdDocs(args []string) error {
	fs := flag.NewFlagSet("docs", flag.ExitOnError)
	schemaPath := fs.String("schema", "", "values.schema.json")
	valuesPath := fs.String("values", "", "values.yaml")
	docPath := fs.String("doc", "", "the Markdown doc with the values table")
	_ = fs.Parse(args)
	var schema map[string]any
	data, err := os.ReadFile(*schemaPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		return fmt.Errorf("%s: %w", *schemaPath, err)
	}
	var values map[string]any
	data, err = os.ReadFile(*valuesPath)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("%s: %w", *valuesPath, err)
	}
	docText, err := os.ReadFile(*docPath)
	if err != nil {
		return err
	}
	var p problems
	var leaves []string
	var walk func(prefix string, s map[string]any, v map[string]any)
	walk = func(prefix string, s map[string]any, v map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, sub := range props {
			path := strings.TrimPrefix(prefix+"."+name, ".")
			if path == "global" {
				continue
			}
			val, ok := v[name]
			if !ok {
				p.add("%s: %s has no default in %s", *schemaPath, path, *valuesPath)
				continue
			}
			subSchema, _ := sub.(map[string]any)
			if _, nested := subSchema["properties"]; nested {
				m, _ := val.(map[string]any)
				walk(path, subSchema, m)
				continue
			}
			leaves = append(leaves, path)
			if !bytes.Contains(docText, []byte("`"+path+"`")) {
				p.add("%s: value `%s` is not documented", *docPath, path)
			}
		}
		for name := range v {
			if _, ok := props[name]; !ok {
				p.add("%s: %s is not in %s", *valuesPath, strings.TrimPrefix(prefix+"."+name, "."), *schemaPath)
			}
		}
	}
	walk("", schema, values)
	if err := p.err(); err != nil {
		return err
	}
	fmt.Printf("helmcheck docs: %d values, each in the schema, %s and %s\n", len(leaves), *valuesPath, *docPath)
	return nil
}

// cmdDryRun creates the rendered objects in a throwaway envtest API server
// with server-side dry run.
func cmdDryRun(args []string) error {
	fs := flag.NewFlagSet("dryrun", flag.ExitOnError)
	rendered := fs.String("rendered", "", "helm template --include-crds output")
	_ = fs.Parse(args)
	docs, err := readDocs(*rendered)
	if err != nil {
		return err
	}
	var crdFiles, others []doc
	for _, d := range docs {
		if d.u.GetKind() == "CustomResourceDefinition" {
			crdFiles = append(crdFiles, d)
		} else {
			others = append(others, d)
		}
	}
	dir, err := os.MkdirTemp("", "helmcheck-crds-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for i, d := range crdFiles {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("crd-%d.yaml", i)), d.raw, 0o600); err != nil {
			return err
		}
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{dir}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting envtest (is KUBEBUILDER_ASSETS set?): %w", err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var p problems
	namespaces := map[string]bool{}
	checked, skipped := 0, []string{}
	for _, d := range others {
		obj := d.u.DeepCopy()
		mapping, err := c.RESTMapper().RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
		if meta.IsNoMatchError(err) {
			skipped = append(skipped, d.id())
			continue
		}
		if err != nil {
			p.add("%s: %v", d.id(), err)
			continue
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				p.add("%s is namespaced but has no namespace", d.id())
				continue
			}
			if !namespaces[ns] {
				n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
				if err := c.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
					return err
				}
				namespaces[ns] = true
			}
		} else if obj.GetNamespace() != "" {
			p.add("%s is cluster-scoped but sets namespace %s", d.id(), obj.GetNamespace())
		}
		if err := c.Create(ctx, obj, client.DryRunAll); err != nil {
			p.add("%s: the API server refuses it: %v", d.id(), err)
			continue
		}
		checked++
	}
	if err := p.err(); err != nil {
		return err
	}
	msg := fmt.Sprintf("helmcheck dryrun: %s: %d CRD(s) installed, %d object(s) accepted by the API server (server-side dry run)", *rendered, len(crdFiles), checked)
	if len(skipped) > 0 {
		msg += fmt.Sprintf("; skipped, API not served by envtest: %s", strings.Join(skipped, ", "))
	}
	fmt.Println(msg)
	return nil
}
