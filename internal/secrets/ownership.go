package secrets

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// Who a target Secret belongs to, and what an OAuthClientToken may do with
// it, is one explicit state machine: the Secret's Origin and owner, the
// object's creationPolicy, and the other objects that name the Secret give
// one Action. Claim is pure and table-tested; the Writer carries it out.

// Origin says how a Secret came to hold tokensync's keys.
type Origin int

const (
	// Absent: no such Secret.
	Absent Origin = iota
	// Foreign: the Secret exists and tokensync has never written it.
	Foreign
	// Created: tokensync created it (creationPolicy Owner or Orphan). Only
	// such a Secret may carry tokensync's ownerReference.
	Created
	// Merged: someone else created it and tokensync merged its keys into
	// it (creationPolicy Merge). tokensync never takes it over.
	Merged
)

func (o Origin) String() string {
	return [...]string{"absent", "foreign", "created", "merged"}[o]
}

// OriginCreated is the value of OriginAnnotation on Secrets tokensync
// created.
const OriginCreated = "created"

// originOf classifies Secret metadata. A Secret written by tokensync v0.1
// carries no origin annotation: it was created by tokensync when it has an
// OAuthClientToken controller reference, or when tokensync's field manager
// owns its type (only a created Secret's type is applied); legacyCreated
// reports the latter from managedFields, which only an uncached read has.
//
// The origin annotation alone proves nothing: anyone who may write the
// Secret can copy it from a Secret tokensync created. It counts when the
// signed record covers it (intact), or when the Secret already carries an
// OAuthClientToken's controller reference (a record signed with a key
// since lost); else a Secret that says "created" is taken as Merged, so
// that it is never taken over.
func originOf(m metav1.Object, legacyCreated, intact func() bool) Origin {
	if m == nil {
		return Absent
	}
	if m.GetLabels()[v1alpha1.ManagedLabel] != "true" {
		return Foreign
	}
	if m.GetAnnotations()[v1alpha1.OriginAnnotation] == OriginCreated {
		if (intact != nil && intact()) || hasTokenController(m) {
			return Created
		}
		return Merged
	}
	if m.GetAnnotations()[v1alpha1.OwnerAnnotation] != "" && m.GetAnnotations()[v1alpha1.SignatureAnnotation] == "" {
		if hasTokenController(m) || (legacyCreated != nil && legacyCreated()) {
			return Created
		}
	}
	return Merged
}

// hasTokenController reports whether an OAuthClientToken is m's controller.
func hasTokenController(m metav1.Object) bool {
	for _, ref := range m.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "OAuthClientToken" && ref.APIVersion == v1alpha1.GroupVersion.String() {
			return true
		}
	}
	return false
}

// Action is what an object may do with its target Secret.
type Action int

const (
	// Create the Secret, failing if it appears meanwhile.
	Create Action = iota
	// Write (or adopt) the Secret.
	Write
)

// ClaimInput is what Claim decides on.
type ClaimInput struct {
	Name   string // the Secret
	Self   string // the object claiming it
	Policy v1alpha1.CreationPolicy
	Origin Origin
	// Owner is the object the Secret's owner annotation names.
	Owner string
	// OwnerClaims is set when Owner (another object) exists, is not being
	// deleted and still names this Secret: the incumbent writer.
	OwnerClaims bool
	// Older is the oldest other object, not being deleted, that names this
	// Secret and is older than Self; "" when Self is the oldest.
	Older string
	// Controller is a controller reference to something other than an
	// OAuthClientToken, if the Secret has one.
	Controller *metav1.OwnerReference
	// StateOf is set when the Secret is a state Secret (it keeps the
	// refresh token of Owner's target Secret StateOf): never a target.
	StateOf string
}

// Claim decides what Self may do with the Secret. The rule between objects
// naming one Secret: the object that writes it keeps it while it names it;
// when none does, the oldest (by creation time, then name) takes it. So
// exactly one writes, the others report SecretConflict, and one of them
// takes over when the writer goes away or moves. A Secret tokensync did
// not create is never taken over: only Merge writes into it, and only the
// keys tokensync adds.
func Claim(in ClaimInput) (Action, error) {
	conflict := func(format string, args ...any) (Action, error) {
		return 0, failure.NewStalled(v1alpha1.ReasonSecretConflict, format, args...)
	}
	if in.StateOf != "" && in.Origin != Foreign {
		return conflict("Secret %s is where tokensync keeps the refresh token of OAuthClientToken %s; choose another target.name", in.Name, in.Owner)
	}
	if in.Origin != Absent && in.Origin != Foreign && in.Owner != in.Self && in.OwnerClaims {
		return conflict("Secret %s is written by OAuthClientToken %s; choose another target.name", in.Name, in.Owner)
	}
	if in.Older != "" && (in.Origin == Absent || in.Owner != in.Self) {
		return conflict("Secret %s is claimed by OAuthClientToken %s, which is older and writes it; choose another target.name", in.Name, in.Older)
	}
	switch in.Origin {
	case Absent:
		if in.Policy == v1alpha1.CreationPolicyMerge {
			return 0, failure.NewStalled(v1alpha1.ReasonTargetSecretNotFound, "Secret %s does not exist; creationPolicy Merge writes into an existing Secret (create it, or use creationPolicy Owner)", in.Name)
		}
		return Create, nil
	case Foreign, Merged:
		if in.Policy != v1alpha1.CreationPolicyMerge {
			return conflict("Secret %s was not created by tokensync; tokensync will not take it over with creationPolicy %s (delete it, choose another target.name, or use creationPolicy Merge)", in.Name, in.Policy)
		}
		return Write, nil
	}
	if c := in.Controller; c != nil && in.Policy == v1alpha1.CreationPolicyOwner {
		return conflict("Secret %s is controlled by %s %s", in.Name, c.Kind, c.Name)
	}
	return Write, nil
}

// controllerOf returns m's controller reference when it is not to an
// OAuthClientToken.
func controllerOf(m metav1.Object) *metav1.OwnerReference {
	if m == nil {
		return nil
	}
	for _, ref := range m.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && !(ref.Kind == "OAuthClientToken" && ref.APIVersion == v1alpha1.GroupVersion.String()) {
			return &ref
		}
	}
	return nil
}

func describe(o Origin, owner string) string {
	switch o {
	case Created, Merged:
		return fmt.Sprintf("%s, written for %s", o, owner)
	}
	return o.String()
}
