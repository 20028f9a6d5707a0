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

// TestIndexEntryCostsFewBytes: the index holds an entry for every Secret,
// ConfigMap and ServiceAccount the manager watches, most of them nothing
// to do with tokensync (the benchmark's 20,000 unrelated Secrets). In an
// informer's store, with its namespace index, an entry costs at most 250
// bytes beyond the strings it shares with the decoded object; the
// PartialObjectMetadata it used to keep cost about 420 (this test measured
// 181 and 422).
func TestIndexEntryCostsFewBytes(t *testing.T) {
	const n = 20000
	raws := make([]*metav1.PartialObjectMetadata, n)
	for i := range raws {
		raws[i] = rawSecret(i)
	}
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	before := testutil.HeapAlloc()
	for _, raw := range raws {
		out, err := slim(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Add(out); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(testutil.HeapAlloc()-before) / n
	runtime.KeepAlive(raws)
	if len(store.ListKeys()) != n {
		t.Fatalf("the store holds %d entries, want %d", len(store.ListKeys()), n)
	}
	t.Logf("%.0f bytes per entry", per)
	if per > 250 {
		t.Fatalf("an index entry costs %.0f bytes of heap, want at most 250", per)
	}
}
