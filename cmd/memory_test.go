package main

import (
	"runtime/debug"
	"testing"
)

// TestGCPercentDefault: without GOGC the manager collects at 50% heap
// growth; GOGC, when set, is left as the Go runtime read it.
func TestGCPercentDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if n, from := gcPercent(func(string) string { return "" }); n != defaultGCPercent || from != "default" {
		t.Errorf("gcPercent() = %d from %s, want %d from default", n, from, defaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("the runtime's GC percent is %d, want %d", got, defaultGCPercent)
	}
	if n, from := gcPercent(func(k string) string { return map[string]string{"GOGC": "200"}[k] }); n != 200 || from != "GOGC" {
		t.Errorf("with GOGC=200: %d from %s", n, from)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the runtime's GC percent was changed to %d", got)
	}
}
