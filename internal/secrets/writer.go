// Package secrets owns the Secrets tokensync writes: the target Secret that
// holds a token and the state Secret that holds a refresh token. It decides
// who a Secret belongs to (ownership.go), records and verifies what a
// Secret holds (record.go), and writes with server-side apply under one
// field manager, so that what the spec no longer asks for is removed by
// the API server itself.
package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// FieldManager is the server-side apply field manager tokensync writes
// Secrets under.
const FieldManager = "tokensync"

// TargetIndex is the field index of OAuthClientTokens by target Secret
// name, for the objects whose target is not named after themselves
// (TargetIndexValues). Claimants looks both kinds up.
const TargetIndex = "spec.target.name"

// TargetIndexValues is what TargetIndex holds for obj: the name of its
// target Secret, unless that is obj's own name (the default, and most
// objects), which Claimants finds by name instead. An index value unique
// to one object costs its informer about 320 bytes (a set of one).
func TargetIndexValues(obj *v1alpha1.OAuthClientToken) []string {
	if name := obj.TargetName(); name != obj.Name {
		return []string{name}
	}
	return nil
}

// Claimants returns the objects in namespace ns that name Secret name as
// their target: those TargetIndex holds under name, and the object called
// name when its target is its own name. c is the manager's cache (or any
// reader with TargetIndex).
func Claimants(ctx context.Context, c client.Reader, ns, name string) ([]v1alpha1.OAuthClientToken, error) {
	return claimants(ctx, c, ns, name, nil)
}

// claimants is Claimants, with the object called name taken to be known
// (not read) when it is known.
func claimants(ctx context.Context, c client.Reader, ns, name string, known *v1alpha1.OAuthClientToken) ([]v1alpha1.OAuthClientToken, error) {
	var list v1alpha1.OAuthClientTokenList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{TargetIndex: name}); err != nil {
		return nil, fmt.Errorf("listing OAuthClientTokens: %w", err)
	}
	if known != nil && known.Namespace == ns && known.Name == name {
		if known.TargetName() == name {
			list.Items = append(list.Items, *known)
		}
		return list.Items, nil
	}
	self := v1alpha1.OAuthClientToken{}
	switch err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &self); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reading OAuthClientToken %s: %w", name, err)
	case self.TargetName() == name:
		list.Items = append(list.Items, self)
	}
	return list.Items, nil
}

// noSuchVersion is a resourceVersion no object ever has (etcd revisions
// are int64). Applied with it, a server-side apply can only create: when
// the Secret exists meanwhile, the precondition fails with a Conflict
// instead of merging into a Secret someone else just created.
const noSuchVersion = "18446744073709551615"

// Index tells which Secrets exist and at which resourceVersion, without
// asking the API server, and learns of the Secrets the Writer writes.
type Index interface {
	// Secret returns the resourceVersion of Secret key as last seen, and
	// whether it exists.
	Secret(key types.NamespacedName) (rv string, exists bool)
	// Begin and Wrote bracket each write of Secret key: Wrote records the
	// version written ("" when the write failed).
	Begin(key types.NamespacedName)
	Wrote(key types.NamespacedName, rv string)
}

// applySecret applies ac, bracketed for the index.
func (w *Writer) applySecret(ctx context.Context, ac *corev1ac.SecretApplyConfiguration) error {
	key := types.NamespacedName{Namespace: *ac.Namespace, Name: *ac.Name}
	w.Index.Begin(key)
	err := w.Client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership)
	rv := ""
	if err == nil && ac.ResourceVersion != nil {
		rv = *ac.ResourceVersion
	}
	w.Index.Wrote(key, rv)
	return err
}

// Writer reads and writes target and state Secrets.
type Writer struct {
	// Client writes, and reads OAuthClientTokens and managed Secrets from
	// the manager's cache.
	Client client.Client
	// API reads directly from the API server: Secrets the cache has not
	// caught up with, and Secrets it does not hold.
	API    client.Reader
	Index  Index
	Signer *Signer
}

// Target is a target Secret as Inspect found it.
type Target struct {
	Name   string
	Origin Origin
	// Owner is the object the Secret's owner annotation names.
	Owner string
	// Action is what the object may do with it.
	Action Action
	// Live is the Secret (nil when absent).
	Live *corev1.Secret
	// Held is the token it holds for the object, when its record is intact
	// and signed; nil otherwise.
	Held *Token
}

// Policy is obj's creationPolicy, defaulted.
func Policy(obj *v1alpha1.OAuthClientToken) v1alpha1.CreationPolicy {
	if t := obj.Spec.Target; t != nil && t.CreationPolicy != "" {
		return t.CreationPolicy
	}
	return v1alpha1.CreationPolicyOwner
}

func templatesOf(obj *v1alpha1.OAuthClientToken) map[string]v1alpha1.DataTemplate {
	if t := obj.Spec.Target; t != nil && len(t.Data) > 0 {
		return t.Data
	}
	return nil
}

// keysOf lists the data keys tokensync writes for obj.
func keysOf(obj *v1alpha1.OAuthClientToken) []string {
	if tpls := templatesOf(obj); tpls != nil {
		return slices.Sorted(maps.Keys(tpls))
	}
	return []string{v1alpha1.AccessTokenKey, v1alpha1.TokenTypeKey, v1alpha1.ExpiresAtKey}
}

// Inspect reads obj's target Secret, decides what obj may do with it, and
// verifies the token it holds. The error is a Stalled SecretConflict or
// TargetSecretNotFound when obj may not write it (the Target is still
// returned, with what was found), or an API error.
func (w *Writer) Inspect(ctx context.Context, obj *v1alpha1.OAuthClientToken) (*Target, error) {
	t := &Target{Name: obj.TargetName()}
	key := types.NamespacedName{Namespace: obj.Namespace, Name: t.Name}
	live, err := w.read(ctx, key)
	if err != nil {
		return t, err
	}
	t.Live = live
	var meta metav1.Object
	if live != nil {
		meta = live
	}
	t.Origin = originOf(meta, func() bool { return w.legacyCreated(ctx, key) }, func() bool { return w.Signer.intact(live) })
	in := ClaimInput{Name: t.Name, Self: obj.Name, Policy: Policy(obj), Origin: t.Origin, Controller: controllerOf(meta)}
	if live != nil {
		t.Owner = live.Annotations[v1alpha1.OwnerAnnotation]
		in.Owner, in.StateOf = t.Owner, live.Annotations[v1alpha1.StateOfAnnotation]
	}
	if in.Older, err = w.olderClaimant(ctx, obj); err != nil {
		return t, err
	}
	if t.Owner != "" && t.Owner != obj.Name && (t.Origin == Created || t.Origin == Merged) {
		if in.OwnerClaims, err = w.claims(ctx, obj.Namespace, t.Owner, t.Name); err != nil {
			return t, err
		}
	}
	if t.Action, err = Claim(in); err != nil {
		return t, err
	}
	if err := w.checkWritable(obj, t); err != nil {
		return t, err
	}
	if t.Owner == obj.Name {
		t.Held, _ = w.Signer.verify(live, obj.Name, templatesOf(obj))
	}
	return t, nil
}

// Previous returns the token Secret name holds for obj, when its record is
// intact and signed: the Secret obj wrote before it was retargeted.
func (w *Writer) Previous(ctx context.Context, obj *v1alpha1.OAuthClientToken, name string) *Token {
	s, err := w.read(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: name})
	if err != nil || s == nil {
		return nil
	}
	tok, _ := w.Signer.verify(s, obj.Name, templatesOf(obj))
	return tok
}

// checkWritable refuses, before any token is requested, what the API
// server would refuse or what would take over someone else's keys: a
// Secret type other than the one the Secret was created with (immutable),
// and a first merge into a Secret that already holds a key tokensync would
// write.
func (w *Writer) checkWritable(obj *v1alpha1.OAuthClientToken, t *Target) error {
	if t.Live == nil {
		return nil
	}
	if t.Origin == Created && Policy(obj) != v1alpha1.CreationPolicyMerge && t.Live.Type != secretType(obj) {
		return failure.NewStalled(v1alpha1.ReasonSecretRejected, "Secret %s has type %s and a Secret's type cannot change; set target.type to %s, or delete the Secret so that tokensync creates it as %s", t.Name, t.Live.Type, t.Live.Type, secretType(obj))
	}
	if t.Origin == Foreign {
		for _, k := range keysOf(obj) {
			if _, ok := t.Live.Data[k]; ok {
				return failure.NewStalled(v1alpha1.ReasonSecretConflict, "Secret %s already has key %q, which tokensync did not write; tokensync will not overwrite it (remove the key, or name other keys with target.data)", t.Name, k)
			}
		}
	}
	return nil
}

// read returns Secret key (nil when it does not exist): from the manager's
// cache, unfolded (Fold), when it is a managed Secret the cache holds at
// the version the index saw; not at all when the index knows no such
// Secret; else from the API server.
func (w *Writer) read(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	rv, exists := w.Index.Secret(key)
	if !exists {
		return nil, nil
	}
	s := &corev1.Secret{}
	err := w.Client.Get(ctx, key, s)
	if err == nil && s.ResourceVersion == rv && Unfold(s) == nil {
		return s, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	s = &corev1.Secret{}
	if err := w.API.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	return s, nil
}

// legacyCreated reports whether tokensync's field manager owns the type of
// Secret key: only a Secret tokensync created has its type applied.
func (w *Writer) legacyCreated(ctx context.Context, key types.NamespacedName) bool {
	m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	if err := w.API.Get(ctx, key, m); err != nil {
		return false
	}
	for _, f := range m.ManagedFields {
		if f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply && f.FieldsV1 != nil &&
			strings.Contains(string(f.FieldsV1.Raw), `"f:type"`) {
			return true
		}
	}
	return false
}

// olderClaimant returns the oldest object other than obj, not being
// deleted, that names obj's target Secret and is older than obj.
func (w *Writer) olderClaimant(ctx context.Context, obj *v1alpha1.OAuthClientToken) (string, error) {
	// When obj's target is its own name, the object of that name is obj.
	peers, err := claimants(ctx, w.Client, obj.Namespace, obj.TargetName(), obj)
	if err != nil {
		return "", err
	}
	var oldest *v1alpha1.OAuthClientToken
	for i := range peers {
		p := &peers[i]
		if p.UID == obj.UID || !p.DeletionTimestamp.IsZero() || !olderThan(p, obj) {
			continue
		}
		if oldest == nil || olderThan(p, oldest) {
			oldest = p
		}
	}
	if oldest == nil {
		return "", nil
	}
	return oldest.Name, nil
}

// claims reports whether object name exists, is not being deleted and
// names Secret secret.
func (w *Writer) claims(ctx context.Context, ns, name, secret string) (bool, error) {
	other := &v1alpha1.OAuthClientToken{}
	if err := w.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, other); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading OAuthClientToken %s: %w", name, err)
	}
	return other.DeletionTimestamp.IsZero() && other.TargetName() == secret, nil
}

func olderThan(a, b *v1alpha1.OAuthClientToken) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func secretType(obj *v1alpha1.OAuthClientToken) corev1.SecretType {
	if t := obj.Spec.Target; t != nil && t.Type != "" {
		return t.Type
	}
	return corev1.SecretTypeOpaque
}

// TargetHash digests what the spec says about the Secret besides the
// token: policy, type, labels and annotations. A Secret recording another
// digest is applied again, so that the API server drops what the spec no
// longer asks for.
func TargetHash(obj *v1alpha1.OAuthClientToken) string {
	var labels map[string]v1alpha1.LabelValue
	var annotations map[string]v1alpha1.AnnotationValue
	if t := obj.Spec.Target; t != nil {
		labels, annotations = t.Labels, t.Annotations
	}
	b, _ := json.Marshal([]any{"tokensync/target/v1", Policy(obj), secretType(obj), labels, annotations}) // strings and maps: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// applyConfig is the whole of what tokensync asks of obj's target Secret
// when it holds tok (nil: the token's keys are to be removed, the record
// kept). Created Secrets keep the type they were created with and, with
// creationPolicy Owner, get obj's controller reference; Merged ones get
// neither.
func (w *Writer) applyConfig(obj *v1alpha1.OAuthClientToken, t *Target, tok *Token, rec map[string]string) *corev1ac.SecretApplyConfiguration {
	labels := map[string]string{}
	annotations := map[string]string{}
	if spec := obj.Spec.Target; spec != nil {
		for k, v := range spec.Labels {
			labels[k] = string(v)
		}
		for k, v := range spec.Annotations {
			annotations[k] = string(v)
		}
	}
	labels[v1alpha1.ManagedLabel] = "true"
	maps.Copy(annotations, rec)
	annotations[v1alpha1.OwnerAnnotation] = obj.Name
	annotations[v1alpha1.TargetHashAnnotation] = TargetHash(obj)
	created := isCreated(t)
	ac := corev1ac.Secret(t.Name, obj.Namespace).WithLabels(labels).WithAnnotations(annotations)
	if tok != nil {
		ac = ac.WithData(dataOf(tok))
	}
	if created {
		typ := secretType(obj)
		if t.Live != nil {
			typ = t.Live.Type
		}
		ac = ac.WithType(typ)
		if Policy(obj) == v1alpha1.CreationPolicyOwner {
			ac = ac.WithOwnerReferences(ownerRef(obj))
		}
	}
	return ac
}

func ownerRef(obj *v1alpha1.OAuthClientToken) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind("OAuthClientToken").
		WithName(obj.Name).
		WithUID(obj.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

func dataOf(tok *Token) map[string][]byte {
	if tok.Data != nil {
		return tok.Data
	}
	return map[string][]byte{
		v1alpha1.AccessTokenKey: []byte(tok.AccessToken),
		v1alpha1.TokenTypeKey:   []byte(tok.TokenType),
		v1alpha1.ExpiresAtKey:   []byte(stamp(tok.ExpiresAt)),
	}
}

// isCreated reports whether t is (or is about to be) a Secret tokensync
// created.
func isCreated(t *Target) bool { return t.Origin == Created || t.Action == Create }

func (w *Writer) record(obj *v1alpha1.OAuthClientToken, t *Target, tok *Token) map[string]string {
	content := tokenHash(tok.AccessToken)
	if tok.Data != nil {
		content = dataHash(templatesOf(obj), tok.Data)
	}
	return w.Signer.recordAnnotations(obj.Namespace, obj.TargetName(), obj.Name, isCreated(t), tok, content)
}

// Write writes tok into obj's target Secret, creating it when Inspect said
// so. A create fails, as SecretConflict, when the Secret appeared since.
func (w *Writer) Write(ctx context.Context, obj *v1alpha1.OAuthClientToken, t *Target, tok *Token) error {
	return w.apply(ctx, obj, t, w.applyConfig(obj, t, tok, w.record(obj, t, tok)), tok)
}

// Sync makes the target Secret match the spec and hold t.Held, which
// Inspect verified: it repairs edited keys and labels and drops what the
// spec no longer asks for (an ownerReference after creationPolicy Owner is
// dropped, a label removed from target.labels), with no token request. It
// writes nothing when nothing differs, and reports whether it wrote.
func (w *Writer) Sync(ctx context.Context, obj *v1alpha1.OAuthClientToken, t *Target) (bool, error) {
	tok := t.Held
	ac := w.applyConfig(obj, t, tok, w.record(obj, t, tok))
	if upToDate(t.Live, ac, obj) {
		return false, nil
	}
	return true, w.apply(ctx, obj, t, ac, tok)
}

// Clear removes the token's keys from the target Secret (expiryPolicy
// Clear) and keeps the record, so that status can still say when it
// expired.
func (w *Writer) Clear(ctx context.Context, obj *v1alpha1.OAuthClientToken, t *Target) error {
	rec := w.record(obj, t, t.Held)
	return w.apply(ctx, obj, t, w.applyConfig(obj, t, nil, rec), nil)
}

func (w *Writer) apply(ctx context.Context, obj *v1alpha1.OAuthClientToken, t *Target, ac *corev1ac.SecretApplyConfiguration, tok *Token) error {
	if t.Action == Create {
		ac = ac.WithResourceVersion(noSuchVersion)
	}
	if err := w.applySecret(ctx, ac); err != nil {
		return writeError(t, err)
	}
	if err := w.dropStaleOwnerRef(ctx, obj, t, ac); err != nil {
		return err
	}
	if t.Action == Create {
		t.Origin, t.Action = Created, Write
	}
	t.Owner = obj.Name
	t.Held = tok
	t.Live = liveOf(ac)
	return nil
}

// dropStaleOwnerRef removes obj's controller reference from a Secret that
// must not carry it (creationPolicy Orphan or Merge) when the apply left it
// there because another field manager holds it.
func (w *Writer) dropStaleOwnerRef(ctx context.Context, obj *v1alpha1.OAuthClientToken, t *Target, ac *corev1ac.SecretApplyConfiguration) error {
	if Policy(obj) == v1alpha1.CreationPolicyOwner && t.Origin != Merged {
		return nil
	}
	refs := ac.OwnerReferences
	for i, ref := range refs {
		if ref.UID == nil || *ref.UID != obj.UID {
			continue
		}
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": fmt.Sprintf("/metadata/ownerReferences/%d/uid", i), "value": string(obj.UID)},
			{"op": "remove", "path": fmt.Sprintf("/metadata/ownerReferences/%d", i)},
		})
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: obj.Namespace}}
		key := client.ObjectKeyFromObject(s)
		w.Index.Begin(key)
		err := w.Client.Patch(ctx, s, client.RawPatch(types.JSONPatchType, patch))
		w.Index.Wrote(key, s.ResourceVersion)
		if err != nil {
			return failure.NewTransient(v1alpha1.ReasonSecretWriteFailed, 0, "removing the ownerReference from Secret %s: %v", t.Name, err)
		}
		return nil
	}
	return nil
}

// writeError classifies a failed write of the target Secret.
func writeError(t *Target, err error) error {
	switch {
	case t.Action == Create && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)):
		return failure.NewStalled(v1alpha1.ReasonSecretConflict, "Secret %s was created by someone else while tokensync was about to create it; tokensync will not take it over", t.Name)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err):
		return failure.NewStalled(v1alpha1.ReasonSecretRejected, "the API server refused Secret %s as the spec describes it: %v", t.Name, apiMessage(err))
	default:
		return failure.NewTransient(v1alpha1.ReasonSecretWriteFailed, 0, "writing Secret %s: %v", t.Name, apiMessage(err))
	}
}

// apiMessage is an API error's message without the object it quotes (an
// Invalid error can quote field values, which for a Secret may be data).
func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		st := s.Status()
		if st.Details != nil && len(st.Details.Causes) > 0 {
			var parts []string
			for _, c := range st.Details.Causes {
				if strings.HasPrefix(c.Field, "data") {
					parts = append(parts, c.Field+": "+string(c.Type))
					continue
				}
				parts = append(parts, c.Field+": "+c.Message)
			}
			return strings.Join(parts, "; ")
		}
		return st.Message
	}
	return err.Error()
}

// upToDate reports whether live already has everything ac asks for and
// nothing of tokensync's that obj's spec no longer asks for.
func upToDate(live *corev1.Secret, ac *corev1ac.SecretApplyConfiguration, obj *v1alpha1.OAuthClientToken) bool {
	if live == nil {
		return false
	}
	for k, v := range ac.Data {
		if string(live.Data[k]) != string(v) {
			return false
		}
	}
	for k, v := range ac.Labels {
		if got, ok := live.Labels[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range ac.Annotations {
		if k == v1alpha1.RenewAtAnnotation {
			continue // informational: not worth a write of its own
		}
		if got, ok := live.Annotations[k]; !ok || got != v {
			return false
		}
	}
	if ac.Type != nil && live.Type != *ac.Type {
		return false
	}
	wantRef := len(ac.OwnerReferences) > 0
	hasRef := false
	for _, ref := range live.OwnerReferences {
		if ref.UID == obj.UID {
			hasRef = ref.Controller != nil && *ref.Controller
		}
	}
	return wantRef == hasRef
}

// liveOf is the Secret an apply returned (controller-runtime fills the
// apply configuration in from the answer): the configuration and the
// Secret share their JSON form.
func liveOf(ac *corev1ac.SecretApplyConfiguration) *corev1.Secret {
	s := &corev1.Secret{}
	if b, err := json.Marshal(ac); err == nil {
		_ = json.Unmarshal(b, s)
	}
	return s
}
