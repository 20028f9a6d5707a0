package main

import (
	"context"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// runtimeGOGC is the garbage collection target the Go runtime itself is
// running at, as it read it from GOGC at start (nothing in the test binary
// changes it before TestGOGCProbe runs alone in a child process).
func runtimeGOGC() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()) // -1 ("off") reads as 1<<64-1
}

// TestGOGCProbe prints the runtime's target; it does nothing unless run by
// TestGCPercentMatchesRuntime.
func TestGOGCProbe(t *testing.T) {
	if os.Getenv("TOKENSYNC_GOGC_PROBE") == "" {
		t.Skip("run by TestGCPercentMatchesRuntime")
	}
	os.Stdout.WriteString("gogc=" + strconv.FormatInt(runtimeGOGC(), 10) + "\n")
}

// TestGCPercentMatchesRuntime: with GOGC set, gcPercent reports the target
// the Go runtime actually uses for it (the manager logs it at start), and
// for forms the runtime does not read ("OFF", " 50", "abc", out of range)
// that is the runtime's default, not "off".
func TestGCPercentMatchesRuntime(t *testing.T) {
	for _, v := range []string{"off", "100", "200", "0", "-1", "+50", "OFF", "Off", " 50", "50 ", "abc", "1e2", "-5", "3000000000"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGOGCProbe$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GOGC="+v, "TOKENSYNC_GOGC_PROBE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOGC=%q: probe: %v\n%s", v, err, out)
		}
		_, rest, ok := strings.Cut(string(out), "gogc=")
		if !ok {
			t.Fatalf("GOGC=%q: probe printed no target:\n%s", v, out)
		}
		want, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		if err != nil {
			t.Fatalf("GOGC=%q: probe: %v", v, err)
		}
		got, from := gcPercent(func(k string) string { return map[string]string{"GOGC": v}[k] })
		if from != "GOGC" || int64(got) != want {
			t.Errorf("GOGC=%q: gcPercent() = %d from %s, the runtime runs at %d from GOGC", v, got, from, want)
		}
	}
}

// TestStartGCLeavesAnySetGOGC: whatever GOGC holds, even a form the runtime
// does not read, startGC neither sets the target nor starts a tuner.
func TestStartGCLeavesAnySetGOGC(t *testing.T) {
	const sentinel = 137
	prev := debug.SetGCPercent(sentinel)
	defer debug.SetGCPercent(prev)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, v := range []string{"off", "OFF", "100", "-1", "0", "abc", " 50", "3000000000"} {
		if _, from := startGC(ctx, func(k string) string { return map[string]string{"GOGC": v}[k] }, time.Millisecond, logr.Discard()); from != "GOGC" {
			t.Errorf("GOGC=%q: from %s, want GOGC", v, from)
		}
	}
	time.Sleep(50 * time.Millisecond) // many intervals of any tuner
	if got := runtimeGOGC(); got != sentinel {
		t.Errorf("with GOGC set the target became %d, want %d", got, sentinel)
	}
}
