package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// cmdValues checks that every value the schema describes has a default in
// values.yaml. The other direction needs no check: the schema sets
// additionalProperties false, so helm lint refuses a value it lacks; and
// helm-docs writes docs/helm.md's table from values.yaml.
func cmdValues(args []string) error {
	fs := flag.NewFlagSet("values", flag.ExitOnError)
	schemaPath := fs.String("schema", "", "values.schema.json")
	valuesPath := fs.String("values", "", "values.yaml")
	_ = fs.Parse(args)
	var schema, values map[string]any
	data, err := os.ReadFile(*schemaPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		return fmt.Errorf("%s: %w", *schemaPath, err)
	}
	if data, err = os.ReadFile(*valuesPath); err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("%s: %w", *valuesPath, err)
	}
	var p problems
	n := 0
	var walk func(prefix string, s, v map[string]any)
	walk = func(prefix string, s, v map[string]any) {
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
			n++
			if subSchema, _ := sub.(map[string]any); subSchema["properties"] != nil {
				m, _ := val.(map[string]any)
				walk(path, subSchema, m)
			}
		}
	}
	walk("", schema, values)
	if err := p.err(); err != nil {
		return err
	}
	fmt.Printf("helmcheck values: the %d values of %s have a default in %s\n", n, *schemaPath, *valuesPath)
	return nil
}
