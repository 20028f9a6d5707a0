package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/tools/clientcmd"
)

// cmdSchemas writes one JSON schema per kind the API server serves, in the
// layout -schema-location '{DIR}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'
// of kubeconform reads (Group is the version for the core group, "v1").
//
// The source is the server's OpenAPI v3: it describes exactly the
// Kubernetes version the project tests against (envtest's), and the CRDs
// installed in it with the schemas the server validates them with. There
// is no internet here to fetch the kubernetes-json-schema files kubeconform
// defaults to. The conversion does what openapi2jsonschema does for those
// files: references point into the file's own definitions, nullable and
// int-or-string become JSON schema types, and objects with properties
// refuse any other (kubeconform -strict needs schemas that say so), unless
// they preserve unknown fields.
func cmdSchemas(args []string) error {
	fs := flag.NewFlagSet("schemas", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server")
	out := fs.String("out", "", "directory to write the schemas to")
	_ = fs.Parse(args)
	if *kubeconfig == "" || *out == "" {
		return errors.New("-kubeconfig and -out are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	paths, err := openAPIPaths(dc)
	if err != nil {
		return err
	}
	written := 0
	for path, gv := range paths {
		group, version, ok := groupVersionOfPath(path)
		if !ok {
			continue
		}
		data, err := gv.Schema("application/json")
		if err != nil {
			return fmt.Errorf("reading the OpenAPI of %s: %w", path, err)
		}
		var doc struct {
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for name, s := range doc.Components.Schemas {
			for _, kind := range kindsOf(s, group, version) {
				dir := group
				if dir == "" {
					dir = version
				}
				file := filepath.Join(*out, dir, strings.ToLower(kind)+"_"+version+".json")
				if err := writeSchema(file, name, doc.Components.Schemas); err != nil {
					return err
				}
				written++
			}
		}
	}
	if written == 0 {
		return errors.New("the API server's OpenAPI v3 has no kinds")
	}
	fmt.Printf("helmcheck schemas: %d kubeconform schemas in %s, from the API server's OpenAPI v3\n", written, *out)
	return nil
}

// openAPIPaths returns the OpenAPI v3 documents of the server, by path,
// once there is one for every group and version it serves: the server
// publishes a CRD's OpenAPI a moment after the CRD is established.
func openAPIPaths(dc *discovery.DiscoveryClient) (map[string]openapi.GroupVersion, error) {
	groups, err := dc.ServerGroups()
	if err != nil {
		return nil, err
	}
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		paths, err := dc.OpenAPIV3().Paths()
		if err != nil {
			return nil, fmt.Errorf("reading /openapi/v3: %w", err)
		}
		missing = missing[:0]
		for _, g := range groups.Groups {
			for _, v := range g.Versions {
				p := "apis/" + v.GroupVersion
				if g.Name == "" {
					p = "api/" + v.Version
				}
				if _, ok := paths[p]; !ok {
					missing = append(missing, p)
				}
			}
		}
		if len(missing) == 0 {
			return paths, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the server serves %v but publishes no OpenAPI v3 for them", missing)
		}
	}
}

// groupVersionOfPath parses an OpenAPI v3 path: "api/v1" or
// "apis/GROUP/VERSION".
func groupVersionOfPath(p string) (group, version string, ok bool) {
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 2 && parts[0] == "api":
		return "", parts[1], true
	case len(parts) == 3 && parts[0] == "apis":
		return parts[1], parts[2], true
	}
	return "", "", false
}

// kindsOf returns the kinds of group/version schema s describes, from its
// x-kubernetes-group-version-kind.
func kindsOf(s any, group, version string) []string {
	m, _ := s.(map[string]any)
	gvks, _ := m["x-kubernetes-group-version-kind"].([]any)
	var kinds []string
	for _, g := range gvks {
		gvk, _ := g.(map[string]any)
		if gvk["group"] == group && gvk["version"] == version {
			if k, _ := gvk["kind"].(string); k != "" {
				kinds = append(kinds, k)
			}
		}
	}
	return kinds
}

const refPrefix = "#/components/schemas/"

// writeSchema writes schema root of schemas, with the definitions it
// refers to (transitively), as one standalone JSON schema.
func writeSchema(file, root string, schemas map[string]any) error {
	defs := map[string]any{}
	queue := []string{}
	refer := func(name string) {
		if _, ok := defs[name]; !ok {
			defs[name] = nil
			queue = append(queue, name)
		}
	}
	top := jsonSchema(schemas[root], refer)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		s, ok := schemas[name]
		if !ok {
			return fmt.Errorf("%s refers to %s, which the OpenAPI lacks", root, name)
		}
		defs[name] = jsonSchema(s, refer)
	}
	m, _ := top.(map[string]any)
	if m == nil {
		return fmt.Errorf("%s is not an object schema", root)
	}
	if len(defs) > 0 {
		m["definitions"] = defs
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

// jsonSchema converts an OpenAPI v3 schema into a strict draft-4 JSON
// schema, calling refer for each schema it references.
func jsonSchema(node any, refer func(string)) any {
	switch n := node.(type) {
	case []any:
		out := make([]any, len(n))
		for i, x := range n {
			out[i] = jsonSchema(x, refer)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(n)+1)
		for k, v := range n {
			switch k {
			case "$ref":
				name := strings.TrimPrefix(v.(string), refPrefix)
				refer(name)
				out[k] = "#/definitions/" + name
			case "properties", "definitions", "patternProperties":
				// a map of names to schemas, not a schema
				props := map[string]any{}
				for name, s := range v.(map[string]any) {
					props[name] = jsonSchema(s, refer)
				}
				out[k] = props
			case "example", "default", "enum":
				out[k] = v
			default:
				out[k] = jsonSchema(v, refer)
			}
		}
		if out["format"] == "int-or-string" || out["x-kubernetes-int-or-string"] == true {
			delete(out, "format")
			out["type"] = []any{"integer", "string"}
		}
		if out["nullable"] == true {
			if t, ok := out["type"].(string); ok {
				out["type"] = []any{t, "null"}
			}
			delete(out, "nullable")
		}
		if _, hasProps := out["properties"]; hasProps {
			if _, set := out["additionalProperties"]; !set && out["x-kubernetes-preserve-unknown-fields"] != true {
				out["additionalProperties"] = false
			}
		}
		return out
	default:
		return node
	}
}
