package index

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokensync/tokensync/test/testutil"
)

func rawSecret(i int) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("unrelated-%05d", i), Namespace: "team-a", ResourceVersion: fmt.Sprint(1000 + i),
			UID: "0b1c2d3e-0000-4000-8000-000000000000", Labels: map[string]string{"app": "x"},
			Annotations: map[string]string{"note": "y"}, Finalizers: []string{"f"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "d"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
	}
}

// TestIndexKeepsNameNamespaceAndVersionOnly: what the index keeps of an
// object answers its name, namespace and resourceVersion, and nothing
// else of what the watch decoded.
func TestIndexKeepsNameNamespaceAndVersionOnly(t *testing.T) {
	raw := rawSecret(7)
	out, err := slim(raw)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := out.(client.Object)
	if !ok {
		t.Fatalf("slim gave a %T, not a client.Object", out)
	}
	if o.GetName() != raw.Name || o.GetNamespace() != raw.Namespace || o.GetResourceVersion() != raw.ResourceVersion {
		t.Fatalf("kept %s/%s@%s, want %s/%s@%s", o.GetNamespace(), o.GetName(), o.GetResourceVersion(), raw.Namespace, raw.Name, raw.ResourceVersion)
	}
	if o.GetUID() != "" || o.GetLabels() != nil || o.GetAnnotations() != nil || o.GetFinalizers() != nil ||
		o.GetOwnerReferences() != nil || o.GetManagedFields() != nil {
		t.Fatalf("kept more than the name, namespace and version: %+v", o)
	}
	key, err := toolscache.MetaNamespaceKeyFunc(o)
	if err != nil || key != "team-a/unrelated-00007" {
		t.Fatalf("informer key = %q, %v", key, err)
	}
	cp := o.DeepCopyObject().(client.Object)
	cp.SetResourceVersion("9")
	if o.GetResourceVersion() != raw.ResourceVersion {
		t.Fatal("a deep copy shares its version with the original")
	}
}

// TestIndexCostsFewBytesPerObject: the index holds every Secret, ConfigMap
// and ServiceAccount the manager watches, most of them nothing to do with
// tokensync (the benchmark's 20,000 unrelated Secrets). The compact store
// keeps a name and a version per object, its own key included, in at
// most 80 bytes; an informer's store (without indexes) of the same
// entries costs more than twice that (this test measured 68 and 138
// bytes; 181 with controller-runtime's namespace index).
func TestIndexCostsFewBytesPerObject(t *testing.T) {
	const n = 20000
	raws := make([]any, n)
	for i := range raws {
		raws[i] = rawSecret(i)
	}
	c := newCompact(nil, "Secret", "test")
	before := testutil.HeapAlloc()
	if err := c.Replace(raws, "1"); err != nil {
		t.Fatal(err)
	}
	per := float64(testutil.HeapAlloc()-before) / n
	runtime.KeepAlive(raws)
	if got := len(c.ListKeys()); got != n {
		t.Fatalf("the store holds %d objects, want %d", got, n)
	}

	indexer := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	before = testutil.HeapAlloc()
	for _, raw := range raws {
		out, _ := slim(raw)
		if err := indexer.Add(out); err != nil {
			t.Fatal(err)
		}
	}
	informerPer := float64(testutil.HeapAlloc()-before) / n
	runtime.KeepAlive(raws)
	runtime.KeepAlive(indexer)
	runtime.KeepAlive(c)
	t.Logf("%.0f bytes per object; an informer's store: %.0f", per, informerPer)
	if per > 80 {
		t.Fatalf("the index costs %.0f bytes of heap per object, want at most 80", per)
	}
	if per > informerPer/2 {
		t.Fatalf("the index costs %.0f bytes per object, an informer's store %.0f: want at most half", per, informerPer)
	}
}
