package token

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lastApplied is the annotation kubectl apply keeps a whole copy of the
// object in; the reconciler never reads it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// slimObject is the manager cache's transform: it drops what the
// reconciler never reads, managed fields and kubectl's last-applied copy
// of the object (as large as the object itself for objects applied with
// kubectl apply).
func slimObject(in any) (any, error) {
	if o, ok := in.(metav1.Object); ok {
		if o.GetManagedFields() != nil {
			o.SetManagedFields(nil)
		}
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a[lastApplied]; ok {
				delete(a, lastApplied)
			}
		}
	}
	return in, nil
}
