package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// namespacesFlag is the value of --watch-namespaces: a comma-separated list
// of namespace names, sorted and without duplicates.
type namespacesFlag struct{ names *[]string }

func (f namespacesFlag) String() string {
	if f.names == nil {
		return ""
	}
	return strings.Join(*f.names, ",")
}

func (f namespacesFlag) Set(v string) error {
	var names []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return fmt.Errorf("%q is not a namespace name: %s", n, strings.Join(errs, "; "))
		}
		names = append(names, n)
	}
	slices.Sort(names)
	*f.names = slices.Compact(names)
	return nil
}

// bindWatchNamespacesFlag binds --watch-namespaces to names.
func bindWatchNamespacesFlag(fs *flag.FlagSet, names *[]string) {
	fs.Var(namespacesFlag{names: names}, "watch-namespaces",
		"Comma-separated namespaces the manager caches, watches and reads OAuthClientTokens and Secrets in; "+
			"empty (the default) means every namespace. With a list, the manager needs permissions in those "+
			"namespaces only (Roles, see config/namespaced), and objects elsewhere are never reconciled.")
}

// defaultNamespaces returns the manager cache's DefaultNamespaces for the
// watched namespaces: nil (every namespace) when there are none.
func defaultNamespaces(names []string) map[string]cache.Config {
	if len(names) == 0 {
		return nil
	}
	m := make(map[string]cache.Config, len(names))
	for _, n := range names {
		m[n] = cache.Config{}
	}
	return m
}
