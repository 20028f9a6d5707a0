package intern

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestStringSharesTheFirstCopy: equal strings come back as one copy.
func TestStringSharesTheFirstCopy(t *testing.T) {
	tb := New(10)
	a := strings.Clone("oauth.tokensync.io/config-hash")
	b := strings.Clone(a)
	if same(a, b) {
		t.Fatal("test setup: the clones share memory")
	}
	if got := tb.String(a); !same(got, a) {
		t.Error("the first copy is not the one kept")
	}
	if got := tb.String(b); !same(got, a) || got != b {
		t.Error("an equal string did not come back as the first copy")
	}
}

// TestTableIsBounded: a full Table starts again empty instead of growing,
// and shares what comes next; past MaxLen it keeps nothing.
func TestTableIsBounded(t *testing.T) {
	tb := New(2)
	tb.String("a")
	tb.String("b")
	c := strings.Clone("c")
	if got := tb.String(c); !same(got, c) || tb.Len() > 2 {
		t.Errorf("a full table grew: len %d", tb.Len())
	}
	if got := tb.String(strings.Clone("c")); !same(got, c) {
		t.Error("a full table did not share what came after")
	}
	long := strings.Repeat("x", MaxLen+1)
	tb2 := New(10)
	if tb2.String(long); tb2.Len() != 0 {
		t.Error("a string past MaxLen was kept")
	}
	if tb2.String(""); tb2.Len() != 0 {
		t.Error("the empty string was kept")
	}
}

// TestMaps: keys (and values when asked) are shared; the content is kept.
func TestMaps(t *testing.T) {
	tb := New(10)
	k := tb.String(strings.Clone("app"))
	v := tb.String(strings.Clone("payments"))
	m := tb.Map(map[string]string{strings.Clone("app"): strings.Clone("payments")}, true)
	for mk, mv := range m {
		if !same(mk, k) || !same(mv, v) {
			t.Error("a label was not shared")
		}
	}
	n := tb.Map(map[string]string{strings.Clone("app"): strings.Clone("payments")}, false)
	for nk, nv := range n {
		if !same(nk, k) || same(nv, v) || nv != "payments" {
			t.Error("keys only: a key was not shared, or a value was")
		}
	}
	if tb.Map(nil, true) != nil {
		t.Error("nil maps must stay nil")
	}
}

// TestSharedMap: equal small maps come back as one map, whatever the
// order they were built in; large ones are copies with shared strings; the
// number of maps is bounded.
func TestSharedMap(t *testing.T) {
	tb := New(2)
	a := tb.SharedMap(map[string]string{"oauth.tokensync.io/managed": "true", "app": "x"})
	b := tb.SharedMap(map[string]string{"app": strings.Clone("x"), strings.Clone("oauth.tokensync.io/managed"): "true"})
	if fmt.Sprintf("%p", a) != fmt.Sprintf("%p", b) || len(b) != 2 || b["app"] != "x" {
		t.Errorf("equal maps are not one map: %v %v", a, b)
	}
	if c := tb.SharedMap(map[string]string{"app": "y"}); c["app"] != "y" || len(c) != 1 {
		t.Errorf("a different map came back as %v", c)
	}
	big := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
	if c := tb.SharedMap(big); fmt.Sprintf("%p", c) == fmt.Sprintf("%p", big) || len(c) != 5 {
		t.Error("a map past maxSharedMap entries was not copied")
	}
	before := tb.Len()
	tb.SharedMap(map[string]string{"z": "1"})
	tb.SharedMap(map[string]string{"w": "2"})
	if tb.Len()-before > 2 {
		t.Errorf("the table grew past its bound: %d", tb.Len())
	}
	if tb.SharedMap(nil) != nil {
		t.Error("nil must stay nil")
	}
}
