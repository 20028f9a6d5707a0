package index

import (
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// liveStore is an informer store that shows version rv, settable as the
// informer's store moves.
type liveStore struct {
	mu *sync.Mutex
	rv *string
}

func (s liveStore) stored(string, types.NamespacedName) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.rv, true
}

// TestAttack4_NoOpApplyDropsSomeoneElsesPendingEvent: someone else writes
// the Secret at version 8; the informer's store shows 8 and the event is
// still queued for the token controller's handler. A reconcile that read
// an older copy applies; the apply changes nothing, and the API server
// answers with the existing version, 8. The store showed 8 before Begin,
// so 8 cannot be the reconciler's write, yet own records it and the
// pending event of the other writer's change is dropped: the objects that
// read this Secret as an input are never reconciled for it. Before
// 86e5e11, Wrote saw the store at 8 and let the event through.
func TestAttack4_NoOpApplyDropsSomeoneElsesPendingEvent(t *testing.T) {
	key := types.NamespacedName{Namespace: "team-a", Name: "api-token"}
	rv := "8" // the store already holds someone else's write
	x := newIndex(liveStore{mu: &sync.Mutex{}, rv: &rv}.stored, nil)
	x.Begin(key)
	x.Wrote(key, "8") // no-op server-side apply: the existing version
	handled := 0
	x.route("Secret", key, "8", true, func() { handled++ })
	if handled != 1 {
		t.Fatal("the event of someone else's write (version 8, in the store before the write began) was dropped as the reconciler's own")
	}
}
