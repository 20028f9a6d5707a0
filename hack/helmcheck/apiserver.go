package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cmdAPIServer runs an envtest API server (and its etcd) until SIGINT or
// SIGTERM, for kubectl's server-side dry run and the OpenAPI the schemas
// are made from. It writes an admin kubeconfig to -kubeconfig once the
// server is up.
func cmdAPIServer(args []string) error {
	fs := flag.NewFlagSet("apiserver", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "where to write the admin kubeconfig")
	_ = fs.Parse(args)
	if *kubeconfig == "" {
		return errors.New("-kubeconfig is required")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("starting envtest (is KUBEBUILDER_ASSETS set?): %w", err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "helmcheck", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	// Written whole or not at all: the caller waits for the file.
	if err := os.WriteFile(*kubeconfig+".tmp", kc, 0o600); err != nil {
		return err
	}
	if err := os.Rename(*kubeconfig+".tmp", *kubeconfig); err != nil {
		return err
	}
	<-stop
	return nil
}
