package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// namespaced tells, for each kind the chart renders, whether its objects
// live in a namespace. A kind not listed is refused.
var namespaced = map[string]bool{
	"CustomResourceDefinition": false,
	"ClusterRole":              false,
	"ClusterRoleBinding":       false,
	"ServiceAccount":           true,
	"Role":                     true,
	"RoleBinding":              true,
	"Deployment":               true,
	"StatefulSet":              true, // the manager with sharding.shards > 1
	"Service":                  true,
	"ServiceMonitor":           true,
}

// roleDirs are the directories of config/ whose roles the chart copies:
// every install's, and the namespace-scoped install's Role on the signing
// key Secret (rendered only with watchNamespaces).
var roleDirs = []string{"rbac", "rollout-restart", filepath.Join("namespaced", "signing-key")}

// configRoles reads the names and kinds of every Role and ClusterRole
// under the directories dirs of config/.
func configRoles(configDir string, dirs ...string) (map[string]string, error) {
	roles := map[string]string{}
	for _, dir := range dirs {
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
					roles[d.u.GetName()] = k
				}
			}
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("no roles under %s", configDir)
	}
	return roles, nil
}

// watchedNamespaces returns the namespaces of the Deployment's
// --watch-namespaces argument (the last one wins, as for the manager).
func watchedNamespaces(dep *appsv1.Deployment) []string {
	var ns []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--watch-namespaces="); ok {
			ns = nil
			for _, n := range strings.Split(v, ",") {
				if n != "" {
					ns = append(ns, n)
				}
			}
		}
	}
	return ns
}

func cmdRender(args []string) error {
	fs := flag.NewFlagSet("render", flag.ExitOnError)
	rendered := fs.String("rendered", "", "helm template output")
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
			if k := d.u.GetKind(); k == "Deployment" || k == "StatefulSet" {
				*prefix = strings.TrimSuffix(d.u.GetName(), "controller-manager")
			}
		}
	}

	// 1. Every object is named, once, with the prefix, and in a namespace
	// if and only if its kind is namespaced. (kubeconform and the dry run
	// check each object's fields.)
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
		isNamespaced, known := namespaced[d.u.GetKind()]
		switch {
		case !known:
			p.add("%s: unexpected kind", d.id())
		case isNamespaced && d.u.GetNamespace() == "":
			p.add("%s is namespaced but has no namespace", d.id())
		case !isNamespaced && d.u.GetNamespace() != "":
			p.add("%s is cluster-scoped but sets namespace %s", d.id(), d.u.GetNamespace())
		}
		if d.u.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(d.u.GetName(), *prefix) {
			p.add("%s: name lacks the prefix %q", d.id(), *prefix)
		}
		if d.u.GetKind() == "ServiceMonitor" && d.u.GetAPIVersion() != "monitoring.coreos.com/v1" {
			p.add("%s: apiVersion %s", d.id(), d.u.GetAPIVersion())
		}
	}
	for _, k := range strings.Split(*kinds, ",") {
		if k != "" && len(byKind[k]) == 0 {
			p.add("no %s rendered", k)
		}
	}

	// 2. Each role is one of config/ (whose rules the chart copies).
	cfg, err := configRoles(*configDir, roleDirs...)
	if err != nil {
		return err
	}
	everyInstall, err := configRoles(*configDir, roleDirs[:2]...)
	if err != nil {
		return err
	}
	renderedRoles := map[string]bool{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, d := range byKind[kind] {
			renderedRoles[kind+"/"+d.u.GetName()] = true
			if _, ok := cfg[strings.TrimPrefix(d.u.GetName(), *prefix)]; !ok {
				p.add("%s: no role named %q under %s/rbac, %s/rollout-restart or %s/namespaced/signing-key", d.id(), strings.TrimPrefix(d.u.GetName(), *prefix), *configDir, *configDir, *configDir)
			}
		}
	}
	if *allRoles {
		for name, kind := range everyInstall {
			if !renderedRoles[kind+"/"+*prefix+name] {
				p.add("config/ %s %s has no rendered counterpart %s%s", kind, name, *prefix, name)
			}
		}
	}

	// 3. The Deployment, and what points at it.
	// A StatefulSet (sharding.shards > 1) is checked as the Deployment
	// would be: its pod template, selector and what points at it.
	var dep *appsv1.Deployment
	if ds, ss := byKind["Deployment"], byKind["StatefulSet"]; len(ds)+len(ss) != 1 {
		p.add("%d Deployments and %d StatefulSets rendered, want one of them", len(ds), len(ss))
	} else if len(ds) == 1 {
		dep = &appsv1.Deployment{}
		if err := yaml.Unmarshal(ds[0].raw, dep); err != nil {
			return err
		}
		checkDeployment(&p, dep)
	} else {
		var sts appsv1.StatefulSet
		if err := yaml.Unmarshal(ss[0].raw, &sts); err != nil {
			return err
		}
		dep = &appsv1.Deployment{ObjectMeta: sts.ObjectMeta, Spec: appsv1.DeploymentSpec{Replicas: sts.Spec.Replicas, Selector: sts.Spec.Selector, Template: sts.Spec.Template}}
		checkDeployment(&p, dep)
		if cs := dep.Spec.Template.Spec.Containers; len(cs) == 1 && !slices.Contains(cs[0].Args, "--shard-index=ordinal") {
			p.add("StatefulSet: the manager does not take its shard from its ordinal (--shard-index=ordinal)")
		}
	}
	if dep != nil && len(p) == 0 {
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
				if b.RoleRef.Kind == "Role" && !seen["Role/"+b.RoleRef.Name+"@"+d.u.GetNamespace()] {
					p.add("%s: Role %s is not rendered in its namespace %s", d.id(), b.RoleRef.Name, d.u.GetNamespace())
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
		checkWatchedNamespaces(&p, dep, *prefix, seen)
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

// checkWatchedNamespaces checks the manager's permissions against its
// --watch-namespaces: a ClusterRole and a ClusterRoleBinding without it, a
// Role and a RoleBinding in each watched namespace (and no ClusterRole)
// with it.
func checkWatchedNamespaces(p *problems, dep *appsv1.Deployment, prefix string, seen map[string]bool) {
	role, binding := prefix+"manager-role", prefix+"manager-rolebinding"
	ns := watchedNamespaces(dep)
	if len(ns) == 0 {
		if !seen["ClusterRole/"+role+"@"] || !seen["ClusterRoleBinding/"+binding+"@"] {
			p.add("the manager watches every namespace but has no ClusterRole %s bound", role)
		}
		return
	}
	if seen["ClusterRole/"+role+"@"] || seen["ClusterRoleBinding/"+binding+"@"] {
		p.add("the manager watches namespaces %v but has the cluster-wide ClusterRole %s", ns, role)
	}
	for _, n := range ns {
		if !seen["Role/"+role+"@"+n] || !seen["RoleBinding/"+binding+"@"+n] {
			p.add("the manager watches namespace %s but has no Role %s and RoleBinding %s there", n, role, binding)
		}
	}
	for key := range seen {
		if n, ok := strings.CutPrefix(key, "Role/"+role+"@"); ok && !slices.Contains(ns, n) {
			p.add("%s is in a namespace the manager does not watch (%v)", key, ns)
		}
	}
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
