package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	uberzap "go.uber.org/zap"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestLoggerCappedBelowBodyLogging: at --zap-log-level=10 the manager's
// logger still drops V(6) and above (client-go logs request headers at 7
// and bodies at 8 and above), keeps V(5) and below, and names the caller,
// not the cap.
func TestLoggerCappedBelowBodyLogging(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	opts := zap.Options{DestWriter: &out}
	bindLogFlags(fs, &opts)
	if err := fs.Parse([]string{"--zap-log-level=10", "--zap-encoder=json"}); err != nil {
		t.Fatal(err)
	}
	opts.ZapOpts = append(opts.ZapOpts, uberzap.AddCaller())
	log := newLogger(&opts)
	for v := 0; v <= 10; v++ {
		log.V(v).Info("level", "v", v)
	}
	log.WithName("named").WithValues("k", "x").V(9).Info("body")
	got := out.String()
	if n := strings.Count(got, `"msg":"level"`); n != 6 {
		t.Errorf("%d of levels 0..10 logged, want 0..5:\n%s", n, got)
	}
	if strings.Contains(got, `"v":6`) || strings.Contains(got, `"msg":"body"`) {
		t.Errorf("a message above V(5) was logged:\n%s", got)
	}
	if !strings.Contains(got, `"caller":"cmd/logging_test.go:`) {
		t.Errorf("the caller is not the test's line:\n%s", got)
	}
	if log.V(6).Enabled() || !log.V(5).Enabled() {
		t.Error("V(6) enabled or V(5) disabled")
	}
}
