package secrets

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// TestClaim is the ownership state machine, as a table: every origin a
// Secret can have, every policy, and who else names it.
func TestClaim(t *testing.T) {
	const (
		owner  = v1alpha1.CreationPolicyOwner
		orphan = v1alpha1.CreationPolicyOrphan
		merge  = v1alpha1.CreationPolicyMerge
	)
	ok := func(a Action) string { return map[Action]string{Create: "create", Write: "write"}[a] }
	for _, tc := range []struct {
		name string
		in   ClaimInput
		want string // "create", "write", or the reason of the refusal
	}{
		{"absent, Owner: create", ClaimInput{Policy: owner, Origin: Absent}, "create"},
		{"absent, Orphan: create", ClaimInput{Policy: orphan, Origin: Absent}, "create"},
		{"absent, Merge: nothing to merge into", ClaimInput{Policy: merge, Origin: Absent}, v1alpha1.ReasonTargetSecretNotFound},
		{"absent, an older object names it: it creates it", ClaimInput{Policy: owner, Origin: Absent, Older: "old"}, v1alpha1.ReasonSecretConflict},
		{"foreign, Owner: never taken over", ClaimInput{Policy: owner, Origin: Foreign}, v1alpha1.ReasonSecretConflict},
		{"foreign, Orphan: never taken over", ClaimInput{Policy: orphan, Origin: Foreign}, v1alpha1.ReasonSecretConflict},
		{"foreign, Merge: merge", ClaimInput{Policy: merge, Origin: Foreign}, "write"},
		{"foreign, Merge, an older object merges too: it does", ClaimInput{Policy: merge, Origin: Foreign, Older: "old"}, v1alpha1.ReasonSecretConflict},
		{"merged by self, Merge: write", ClaimInput{Self: "me", Owner: "me", Policy: merge, Origin: Merged}, "write"},
		{"merged by self, then Owner: never taken over", ClaimInput{Self: "me", Owner: "me", Policy: owner, Origin: Merged}, v1alpha1.ReasonSecretConflict},
		{"merged by self, then Orphan: never taken over", ClaimInput{Self: "me", Owner: "me", Policy: orphan, Origin: Merged}, v1alpha1.ReasonSecretConflict},
		{"created by self, any policy: write", ClaimInput{Self: "me", Owner: "me", Policy: merge, Origin: Created}, "write"},
		{"created by self, Orphan: write", ClaimInput{Self: "me", Owner: "me", Policy: orphan, Origin: Created}, "write"},
		{"created by self, an older object names it too: self keeps it", ClaimInput{Self: "me", Owner: "me", Policy: owner, Origin: Created, Older: "old"}, "write"},
		{"written by another that still names it", ClaimInput{Self: "me", Owner: "other", OwnerClaims: true, Policy: owner, Origin: Created}, v1alpha1.ReasonSecretConflict},
		{"written by another that moved or went: adopt", ClaimInput{Self: "me", Owner: "other", Policy: owner, Origin: Created}, "write"},
		{"written by another that went, an older one waits: it adopts", ClaimInput{Self: "me", Owner: "other", Policy: owner, Origin: Created, Older: "old"}, v1alpha1.ReasonSecretConflict},
		{"merged by another that went, Merge: adopt", ClaimInput{Self: "me", Owner: "other", Policy: merge, Origin: Merged}, "write"},
		{"merged by another that went, Owner: never taken over", ClaimInput{Self: "me", Owner: "other", Policy: owner, Origin: Merged}, v1alpha1.ReasonSecretConflict},
		{"another object's state Secret, Owner: never a target", ClaimInput{Self: "me", Owner: "other", Policy: owner, Origin: Created, StateOf: "other"}, v1alpha1.ReasonSecretConflict},
		{"another object's state Secret, Merge: never a target", ClaimInput{Self: "me", Owner: "other", Policy: merge, Origin: Created, StateOf: "other"}, v1alpha1.ReasonSecretConflict},
		{"its own state Secret: never its target", ClaimInput{Self: "me", Owner: "me", Policy: orphan, Origin: Created, StateOf: "x"}, v1alpha1.ReasonSecretConflict},
		{"created, controlled by someone else, Owner", ClaimInput{Self: "me", Owner: "me", Policy: owner, Origin: Created, Controller: &metav1.OwnerReference{Kind: "Deployment", Name: "x"}}, v1alpha1.ReasonSecretConflict},
		{"created, controlled by someone else, Orphan", ClaimInput{Self: "me", Owner: "me", Policy: orphan, Origin: Created, Controller: &metav1.OwnerReference{Kind: "Deployment", Name: "x"}}, "write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Name = "s"
			if tc.in.Self == "" {
				tc.in.Self = "me"
			}
			a, err := Claim(tc.in)
			got := ok(a)
			if err != nil {
				reason, stalled, _ := failure.ReasonOf(err)
				if !stalled {
					t.Fatalf("refusal %v is not Stalled", err)
				}
				got = reason
			}
			if got != tc.want {
				t.Fatalf("Claim = %s (%v), want %s", got, err, tc.want)
			}
		})
	}
}

func TestOriginOf(t *testing.T) {
	yes := true
	ctrlRef := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "OAuthClientToken", Name: "x", Controller: &yes}
	managed := map[string]string{v1alpha1.ManagedLabel: "true"}
	for _, tc := range []struct {
		name   string
		m      *metav1.ObjectMeta
		legacy bool
		intact bool
		want   Origin
	}{
		{"no label", &metav1.ObjectMeta{}, false, false, Foreign},
		{"created", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OriginAnnotation: "created", v1alpha1.OwnerAnnotation: "x"}}, false, true, Created},
		{"created, record not signed by this key: a forged origin", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OriginAnnotation: "created", v1alpha1.OwnerAnnotation: "x"}}, false, false, Merged},
		{"created, signed with a key since lost, with its controller reference", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OriginAnnotation: "created", v1alpha1.OwnerAnnotation: "x", v1alpha1.SignatureAnnotation: "s"}, OwnerReferences: []metav1.OwnerReference{ctrlRef}}, false, false, Created},
		{"merged", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OwnerAnnotation: "x", v1alpha1.SignatureAnnotation: "s"}}, false, false, Merged},
		{"v0.1 Owner", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OwnerAnnotation: "x"}, OwnerReferences: []metav1.OwnerReference{ctrlRef}}, false, false, Created},
		{"v0.1 Orphan: tokensync applied its type", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OwnerAnnotation: "x"}}, true, false, Created},
		{"v0.1 Merge", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OwnerAnnotation: "x"}}, false, false, Merged},
		{"a signed record is never legacy", &metav1.ObjectMeta{Labels: managed, Annotations: map[string]string{v1alpha1.OwnerAnnotation: "x", v1alpha1.SignatureAnnotation: "s"}, OwnerReferences: []metav1.OwnerReference{ctrlRef}}, true, false, Merged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := originOf(tc.m, func() bool { return tc.legacy }, func() bool { return tc.intact }); got != tc.want {
				t.Fatalf("originOf = %s, want %s", got, tc.want)
			}
		})
	}
	if originOf(nil, nil, nil) != Absent {
		t.Fatal("nil metadata is not Absent")
	}
}
