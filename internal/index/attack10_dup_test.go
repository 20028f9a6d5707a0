package index

import "testing"

// TestAttack10_ADuplicateInARelistCountsAsItsLast: a re-list naming a key
// twice (A@5 as held, then A@6) used to leave the store at 6 with no
// event at all, and a new key listed twice was handed on at its first
// version while the store held the second. Now the last listing counts:
// an update to 6, a create at 8. Only a ListerWatcher that returns
// duplicates can do this (the API server, the watch-list temporary store
// and the shard filter do not).
func TestAttack10_ADuplicateInARelistCountsAsItsLast(t *testing.T) {
	c := newCompact(nil, "Secret", "test")
	e := &events{}
	if _, err := c.AddEventHandler(e); err != nil {
		t.Fatal(err)
	}
	_ = c.Replace(metas(secretMeta("a", "s", "5")), "5")
	e.take()
	_ = c.Replace(metas(secretMeta("a", "s", "5"), secretMeta("a", "s", "6"), secretMeta("a", "n", "7"), secretMeta("a", "n", "8")), "8")
	got := e.take()
	t.Logf("events %q", got)
	if obj, _, _ := c.GetByKey("a/s"); obj.(*entry).rv != "6" {
		t.Fatalf("store %v", obj)
	}
	wantEvents(t, e) // drained above
	hasS, nAt8 := false, false
	for _, g := range got {
		if g == "update a/s@5->6" {
			hasS = true
		}
		if g == "add a/n@8 initial=false" {
			nAt8 = true
		}
	}
	if !hasS || !nAt8 {
		t.Fatalf("events %q: want the update of a/s to 6 and a/n handed on at 8, the version the store holds", got)
	}
}
