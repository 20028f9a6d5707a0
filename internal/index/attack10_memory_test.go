package index

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/tokensync/tokensync/test/testutil"
)

// TestAttack10_FewObjectsPerNamespaceCostLittle: every namespace has its
// "default" ServiceAccount and its "kube-root-ca.crt" ConfigMap, and most
// have a handful of Secrets. With a map per namespace (the first compact
// store) 1 object per namespace cost 336 bytes, more than an informer's
// store; with one map for all, each costs at most 90 bytes, and at most
// two thirds of an informer's store, however few a namespace holds.
func TestAttack10_FewObjectsPerNamespaceCostLittle(t *testing.T) {
	for _, perNS := range []int{1, 2, 3, 8} {
		const namespaces = 10000
		n := namespaces * perNS
		raws := make([]any, 0, n)
		for ns := range namespaces {
			for j := range perNS {
				raws = append(raws, &metav1.PartialObjectMetadata{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sa-%d", j), Namespace: fmt.Sprintf("tenant-%05d", ns), ResourceVersion: fmt.Sprint(100000 + len(raws))},
				})
			}
		}
		for _, raw := range raws {
			// Both stores share the interned namespaces: interned first.
			_, _ = slim(raw)
		}
		c := newCompact(nil, "ServiceAccount", "test")
		before := testutil.HeapAlloc()
		if err := c.Replace(raws, "1"); err != nil {
			t.Fatal(err)
		}
		per := float64(testutil.HeapAlloc()-before) / float64(n)
		runtime.KeepAlive(raws)

		indexer := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
		before = testutil.HeapAlloc()
		for _, raw := range raws {
			out, _ := slim(raw)
			_ = indexer.Add(out)
		}
		informerPer := float64(testutil.HeapAlloc()-before) / float64(n)
		runtime.KeepAlive(raws)
		runtime.KeepAlive(indexer)
		runtime.KeepAlive(c)
		t.Logf("%d objects per namespace: compact %.0f bytes/object, informer store %.0f", perNS, per, informerPer)
		if per > 90 || per > informerPer*2/3 {
			t.Errorf("%d per namespace: the compact store costs %.0f bytes per object (informer store: %.0f), want at most 90 and two thirds", perNS, per, informerPer)
		}
	}
}
