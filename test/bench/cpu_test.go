package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadStatParsesCommWithSpacesAndParentheses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	// proc(5): pid (comm) state ppid ... utime (14) stime (15) ...
	line := "4242 (kube (api) server) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 1 1\n"
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	comm, ppid, cpu, ok := readStat(path)
	if !ok || comm != "kube (api) server" || ppid != 17 || cpu != 3250*time.Millisecond {
		t.Fatalf("readStat = %q, %d, %s, %v; want \"kube (api) server\", 17, 3.25s, true", comm, ppid, cpu, ok)
	}
	if _, _, _, ok := readStat(filepath.Join(t.TempDir(), "missing")); ok {
		t.Fatal("a missing file parsed")
	}
}

func TestSampleCPUCountsThisProcess(t *testing.T) {
	before := sampleCPU(os.Getpid())
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	d := sampleCPU(os.Getpid()).sub(before)
	if d.bench < 100*time.Millisecond || d.manager < 100*time.Millisecond {
		t.Fatalf("300 ms of busy loop counted as %s (bench) and %s (as the manager's pid); x=%d", d.bench, d.manager, x)
	}
}
