package index

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestAttack10_StartAgainIsRefused: an index whose first Start ran with a
// context that ended (before it listed) and is started again used to
// return nil at once from the second Start and never list: its sources
// never synced, and nothing said why. A second Start is refused with an
// error, as the controller-runtime caches it replaced refused theirs.
func TestAttack10_StartAgainIsRefused(t *testing.T) {
	lw := newScriptLW([]metav1.PartialObjectMetadata{secretMeta("team-a", "a", "1")})
	x := newIndex(nil, map[string]*hub{})
	c := newCompact(lw, "Secret", "test")
	x.informers = []*compact{c}
	x.stored = func(_ string, key types.NamespacedName) (string, bool) {
		return storedIn(map[string]informer{"": c}, key)
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.Start(dead); err != nil {
		t.Fatal(err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := x.Start(ctx); err == nil || !strings.Contains(err.Error(), "started already") {
		t.Fatalf("a second Start: %v, want it refused", err)
	}
}
