package index

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// entry is what the index keeps of an object: its name, namespace and
// resourceVersion. It takes 48 bytes where the PartialObjectMetadata the
// watch decodes takes 288, and the index holds one for every Secret,
// ConfigMap and ServiceAccount of the namespaces it watches, the ones
// tokensync has nothing to do with included.
//
// It is a client.Object, so that the informer keys it and
// controller-runtime's event handlers take it: the fields it does not
// keep read as empty, and setting them does nothing. Nothing writes it
// back to the API server.
type entry struct{ name, namespace, rv string }

var _ metav1.Object = (*entry)(nil)

func (e *entry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (e *entry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

func (e *entry) GetName() string                               { return e.name }
func (e *entry) SetName(v string)                              { e.name = v }
func (e *entry) GetNamespace() string                          { return e.namespace }
func (e *entry) SetNamespace(v string)                         { e.namespace = v }
func (e *entry) GetResourceVersion() string                    { return e.rv }
func (e *entry) SetResourceVersion(v string)                   { e.rv = v }
func (e *entry) GetGenerateName() string                       { return "" }
func (e *entry) SetGenerateName(string)                        {}
func (e *entry) GetUID() types.UID                             { return "" }
func (e *entry) SetUID(types.UID)                              {}
func (e *entry) GetGeneration() int64                          { return 0 }
func (e *entry) SetGeneration(int64)                           {}
func (e *entry) GetSelfLink() string                           { return "" }
func (e *entry) SetSelfLink(string)                            {}
func (e *entry) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (e *entry) SetCreationTimestamp(metav1.Time)              {}
func (e *entry) GetDeletionTimestamp() *metav1.Time            { return nil }
func (e *entry) SetDeletionTimestamp(*metav1.Time)             {}
func (e *entry) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (e *entry) SetDeletionGracePeriodSeconds(*int64)          {}
func (e *entry) GetLabels() map[string]string                  { return nil }
func (e *entry) SetLabels(map[string]string)                   {}
func (e *entry) GetAnnotations() map[string]string             { return nil }
func (e *entry) SetAnnotations(map[string]string)              {}
func (e *entry) GetFinalizers() []string                       { return nil }
func (e *entry) SetFinalizers([]string)                        {}
func (e *entry) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (e *entry) SetOwnerReferences([]metav1.OwnerReference)    {}
func (e *entry) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (e *entry) SetManagedFields([]metav1.ManagedFieldsEntry)  {}
