package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// cpuProfiles takes CPU profiles of the API server (and, when pprofURL is
// set, of the manager) for d from now, and saves them in dir as
// <prefix>-apiserver.pb.gz and <prefix>-manager.pb.gz, for go tool pprof.
// The returned function waits until both are saved. It is how the
// creation phase's cost on the control plane is split between the
// manager's requests and watches and the baseline's.
func cpuProfiles(ctx context.Context, admin *rest.Config, pprofURL string, d time.Duration, dir, prefix string) func() {
	if d <= 0 {
		return func() {}
	}
	secs := strconv.Itoa(int(d.Round(time.Second).Seconds()))
	done := make(chan struct{}, 2)
	n := 1
	go func() {
		defer func() { done <- struct{}{} }()
		cs, err := kubernetes.NewForConfig(admin)
		if err != nil {
			logf("cpu profile: %v", err)
			return
		}
		b, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", secs).
			Timeout(d + time.Minute).DoRaw(ctx)
		saveProfile(filepath.Join(dir, prefix+"-apiserver.pb.gz"), b, err)
	}()
	if pprofURL != "" {
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			path := filepath.Join(dir, prefix+"-manager.pb.gz")
			if err := download(pprofURL+"/profile?seconds="+secs, path); err != nil {
				logf("cpu profile: %v", err)
				return
			}
			logf("cpu profile in %s", path)
		}()
	}
	return func() {
		for range n {
			<-done
		}
	}
}

func saveProfile(path string, b []byte, err error) {
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		logf("cpu profile: %v", err)
		return
	}
	logf("cpu profile in %s", path)
}
