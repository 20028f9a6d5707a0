// Command helmcheck does for hack/verify-helm.sh what the tools it runs
// (helm lint, kubeconform, helm-docs, kubectl's server-side dry run) do not:
//
//	helmcheck render -rendered FILE [-config DIR] [-prefix P] [-all-config-roles] [-same-as-kustomize] [-kinds K,K]
//	    FILE is `helm template` output. Checks what relates objects to each
//	    other and to config/: every object is named with the release prefix
//	    P, once, namespaced or not as its kind is; bindings, the
//	    ServiceAccount, the Service and the ServiceMonitor point at rendered
//	    objects (and the ServiceMonitor keeps the per-object namespace
//	    label); the Deployment runs non-root with probes; with
//	    --watch-namespaces, the manager's Role is in each of those namespaces
//	    and it has no ClusterRole; with -all-config-roles, every role of
//	    config/rbac and config/rollout-restart is rendered; with
//	    -same-as-kustomize, the Deployment and metrics Service equal
//	    config/manager/manager.yaml and config/default/metrics_service.yaml
//	    where it matters. (The rules of the roles are not compared: the
//	    chart reads them from files hack/sync-chart.sh copies from config/.)
//	helmcheck values -schema values.schema.json -values values.yaml
//	    Every value in the schema has a default in values.yaml (helm lint
//	    already refuses a value the schema lacks).
//	helmcheck apiserver -kubeconfig FILE
//	    Starts an envtest API server and etcd (KUBEBUILDER_ASSETS), writes
//	    an admin kubeconfig to FILE and runs until SIGINT or SIGTERM.
//	helmcheck schemas -kubeconfig FILE -out DIR
//	    Writes kubeconform's JSON schemas for every kind the API server
//	    serves (built-in types and installed CRDs), from its OpenAPI v3.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helmcheck render|values|apiserver|schemas [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "render":
		err = cmdRender(os.Args[2:])
	case "values":
		err = cmdValues(os.Args[2:])
	case "apiserver":
		err = cmdAPIServer(os.Args[2:])
	case "schemas":
		err = cmdSchemas(os.Args[2:])
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
