package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// stateSuffix names the state Secret beside a target Secret.
const stateSuffix = "-tokensync-state"

// stateSecretName is the name of the Secret that keeps the refresh token of
// a target Secret: <target>-tokensync-state, shortened with a digest when
// that would exceed the 253 characters of a Secret name.
func stateSecretName(target string) string {
	name := target + stateSuffix
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(target))
	suffix := "-" + hex.EncodeToString(sum[:4]) + stateSuffix
	return target[:253-len(suffix)] + suffix
}

func useRefreshToken(obj *v1alpha1.OAuthClientToken) bool {
	r := obj.Spec.Refresh
	return r == nil || r.UseRefreshToken == nil || *r.UseRefreshToken
}

// secretMeta returns the metadata of a Secret, nil when it does not exist.
func (r *OAuthClientTokenReconciler) secretMeta(ctx context.Context, ns, name string) (*metav1.PartialObjectMetadata, error) {
	meta := &metav1.PartialObjectMetadata{TypeMeta: secretTypeMeta}
	if err := r.SecretMetadata.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Secret %s metadata: %w", name, err)
	}
	return meta, nil
}

// refreshState is a refresh token kept in the state Secret.
type refreshState struct {
	token     string
	expiresAt time.Time // zero when the endpoint gave no lifetime
	exists    bool      // the state Secret exists and is tokensync's
}

// readRefreshState reads the state Secret directly from the API server
// (it is needed once per renewal, and must not be stale). It returns a
// usable refresh token only when the Secret belongs to obj, was written for
// the current inputs and the token has not expired.
func (r *OAuthClientTokenReconciler) readRefreshState(ctx context.Context, obj *v1alpha1.OAuthClientToken, hash string, now time.Time) (refreshState, error) {
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: obj.Namespace, Name: stateSecretName(obj.TargetName())}
	if r.secretAbsent(key) {
		// Most endpoints issue no refresh token: no state Secret to read.
		return refreshState{}, nil
	}
	if err := r.APIReader.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return refreshState{}, nil
		}
		return refreshState{}, fmt.Errorf("reading state Secret %s: %w", key.Name, err)
	}
	if !ownedBy(s, obj.Name) || s.Annotations[v1alpha1.StateOfAnnotation] != obj.TargetName() {
		return refreshState{}, nil
	}
	st := refreshState{exists: true, token: string(s.Data[v1alpha1.RefreshTokenKey])}
	if s.Annotations[v1alpha1.ConfigHashAnnotation] != hash {
		st.token = ""
	}
	if v := s.Annotations[v1alpha1.RefreshExpiresAtAnnotation]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil || !now.Before(t) {
			st.token = ""
		}
		st.expiresAt = t
	}
	return st, nil
}

// obtain requests a new token: with the refresh token when one is kept and
// valid, else (or when the endpoint answers invalid_grant) with the
// primary grant. grant is the grant_type value that succeeded.
func (r *OAuthClientTokenReconciler) obtain(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs, state refreshState) (tok *oauth.Token, grant string, err error) {
	if state.token != "" {
		req := tokenRequest(obj, in, state.token)
		tok, err = r.Tokens.Token(ctx, req)
		if err == nil {
			if tok.RefreshToken == "" {
				// RFC 6749 section 6: the endpoint may keep the refresh
				// token it had issued.
				tok.RefreshToken = state.token
			}
			return tok, req.GrantType, nil
		}
		if !invalidGrant(err) {
			return nil, req.GrantType, err
		}
		logf.FromContext(ctx).V(1).Info("refresh token refused; using the primary grant", "reason", "invalid_grant")
	}
	req := tokenRequest(obj, in, "")
	tok, err = r.Tokens.Token(ctx, req)
	return tok, req.GrantType, err
}

// saveRefreshState keeps the refresh token of tok in the state Secret, or
// deletes a state Secret that holds a token no longer issued.
func (r *OAuthClientTokenReconciler) saveRefreshState(ctx context.Context, obj *v1alpha1.OAuthClientToken, hash string, tok *oauth.Token, prev refreshState) error {
	name := stateSecretName(obj.TargetName())
	if tok.RefreshToken == "" || !useRefreshToken(obj) {
		if !prev.exists {
			return nil
		}
		s := &corev1.Secret{}
		s.Name, s.Namespace = name, obj.Namespace
		if err := r.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting state Secret %s: %w", name, err)
		}
		return nil
	}
	if !prev.exists {
		// Never overwrite a Secret that is not ours.
		meta, err := r.secretMeta(ctx, obj.Namespace, name)
		if err != nil {
			return err
		}
		if meta != nil && !ownedBy(meta, obj.Name) {
			return stalled(v1alpha1.ReasonSecretConflict, "Secret %s exists and was not created by tokensync; it is where tokensync keeps the refresh token of Secret %s (delete it, or set refresh.useRefreshToken: false)", name, obj.TargetName())
		}
	}
	annotations := map[string]string{
		v1alpha1.OwnerAnnotation:      obj.Name,
		v1alpha1.StateOfAnnotation:    obj.TargetName(),
		v1alpha1.ConfigHashAnnotation: hash,
	}
	if tok.RefreshExpiresIn > 0 {
		annotations[v1alpha1.RefreshExpiresAtAnnotation] = formatTime(tok.ReceivedAt.Add(tok.RefreshExpiresIn))
	}
	ac := corev1ac.Secret(name, obj.Namespace).
		WithLabels(map[string]string{v1alpha1.ManagedLabel: "true"}).
		WithAnnotations(annotations).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{v1alpha1.RefreshTokenKey: []byte(tok.RefreshToken)}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind("OAuthClientToken").
			WithName(obj.Name).
			WithUID(obj.UID).
			WithController(true).
			WithBlockOwnerDeletion(true))
	if err := r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return transient(v1alpha1.ReasonSecretWriteFailed, 0, "writing state Secret %s: %v", name, err)
	}
	return nil
}
