// Command pause is the pod sandbox ("pause") image's binary for the test
// node of `make test-cluster`: it holds the pod's namespaces open, doing
// nothing, until SIGTERM or SIGINT, then exits 0. The node cannot pull
// registry.k8s.io/pause, so hack/cluster/images.sh builds this instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
