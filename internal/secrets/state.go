package secrets

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
)

// stateSuffix names the state Secret beside a target Secret.
const stateSuffix = "-tokensync-state"

// StateName is the name of the Secret that keeps the refresh token of
// target Secret target: <target>-tokensync-state, shortened with a digest
// when that would exceed the 253 characters of a Secret name.
func StateName(target string) string {
	name := target + stateSuffix
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(target))
	suffix := "-" + hex.EncodeToString(sum[:4]) + stateSuffix
	return target[:253-len(suffix)] + suffix
}

// Refresh is a refresh token kept in the state Secret.
type Refresh struct {
	Token     string
	ExpiresAt time.Time // zero when the endpoint gave no lifetime
	// Exists is set when the state Secret exists and is obj's.
	Exists bool
}

// ReadRefresh reads obj's state Secret directly from the API server (it is
// needed once per renewal, and must not be stale). It returns a usable
// refresh token only when the Secret is obj's, its record is signed, it was
// written for the inputs digested in configHash, and the token has not
// expired.
func (w *Writer) ReadRefresh(ctx context.Context, obj *v1alpha1.OAuthClientToken, configHash string, now time.Time) (Refresh, error) {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: StateName(obj.TargetName())}
	if _, exists := w.Index.Secret(key); !exists {
		// Most endpoints issue no refresh token: no state Secret to read.
		return Refresh{}, nil
	}
	s := &corev1.Secret{}
	if err := w.API.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return Refresh{}, nil
		}
		return Refresh{}, fmt.Errorf("reading state Secret %s: %w", key.Name, err)
	}
	if s.Labels[v1alpha1.ManagedLabel] != "true" || s.Annotations[v1alpha1.OwnerAnnotation] != obj.Name || s.Annotations[v1alpha1.StateOfAnnotation] != obj.TargetName() {
		return Refresh{}, nil
	}
	st := Refresh{Exists: true, Token: string(s.Data[v1alpha1.RefreshTokenKey])}
	if s.Annotations[v1alpha1.ConfigHashAnnotation] != configHash ||
		!hmac.Equal([]byte(s.Annotations[v1alpha1.SignatureAnnotation]), []byte(w.stateMAC(s.Namespace, s.Name, s.Annotations, st.Token))) {
		st.Token = ""
	}
	if v := s.Annotations[v1alpha1.RefreshExpiresAtAnnotation]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil || !now.Before(t) {
			st.Token = ""
		}
		st.ExpiresAt = t
	}
	return st, nil
}

func (w *Writer) stateMAC(ns, name string, a map[string]string, token string) string {
	return w.Signer.mac(ns, name, map[string]string{
		v1alpha1.OwnerAnnotation:      a[v1alpha1.OwnerAnnotation] + "\x00" + a[v1alpha1.StateOfAnnotation],
		v1alpha1.ConfigHashAnnotation: a[v1alpha1.ConfigHashAnnotation],
		v1alpha1.ExpiresAtAnnotation:  a[v1alpha1.RefreshExpiresAtAnnotation],
		v1alpha1.TokenHashAnnotation:  tokenHash(token),
	})
}

// SaveRefresh keeps refreshToken in obj's state Secret (deleting the
// Secret when refreshToken is empty and one exists). expiresAt is when the
// refresh token expires (zero: not said). A Secret of that name that is not
// tokensync's is never overwritten.
func (w *Writer) SaveRefresh(ctx context.Context, obj *v1alpha1.OAuthClientToken, configHash, refreshToken string, expiresAt time.Time, prev Refresh) error {
	name := StateName(obj.TargetName())
	if refreshToken == "" {
		if !prev.Exists {
			return nil
		}
		return w.deleteState(ctx, obj, obj.TargetName())
	}
	action := Write
	if !prev.Exists {
		key := types.NamespacedName{Namespace: obj.Namespace, Name: name}
		s, err := w.read(ctx, key)
		if err != nil {
			return err
		}
		switch {
		case s == nil:
			action = Create
		case s.Labels[v1alpha1.ManagedLabel] != "true" || s.Annotations[v1alpha1.OwnerAnnotation] != obj.Name:
			return failure.NewStalled(v1alpha1.ReasonSecretConflict, "Secret %s exists and was not created by tokensync for this object; it is where tokensync keeps the refresh token of Secret %s (delete it, or set refresh.useRefreshToken: false)", name, obj.TargetName())
		}
	}
	annotations := map[string]string{
		v1alpha1.OwnerAnnotation:      obj.Name,
		v1alpha1.StateOfAnnotation:    obj.TargetName(),
		v1alpha1.ConfigHashAnnotation: configHash,
		v1alpha1.OriginAnnotation:     OriginCreated,
	}
	if !expiresAt.IsZero() {
		annotations[v1alpha1.RefreshExpiresAtAnnotation] = stamp(expiresAt)
	}
	annotations[v1alpha1.SignatureAnnotation] = w.stateMAC(obj.Namespace, name, annotations, refreshToken)
	ac := corev1ac.Secret(name, obj.Namespace).
		WithLabels(map[string]string{v1alpha1.ManagedLabel: "true"}).
		WithAnnotations(annotations).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{v1alpha1.RefreshTokenKey: []byte(refreshToken)}).
		WithOwnerReferences(ownerRef(obj))
	if action == Create {
		ac = ac.WithResourceVersion(noSuchVersion)
	}
	if err := w.applySecret(ctx, ac); err != nil {
		if action == Create && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			return failure.NewStalled(v1alpha1.ReasonSecretConflict, "Secret %s was created by someone else while tokensync was about to create it to keep the refresh token of Secret %s", name, obj.TargetName())
		}
		return failure.NewTransient(v1alpha1.ReasonSecretWriteFailed, 0, "writing state Secret %s: %v", name, apiMessage(err))
	}
	return nil
}

// DeleteRefresh deletes obj's state Secret, if it is obj's.
func (w *Writer) DeleteRefresh(ctx context.Context, obj *v1alpha1.OAuthClientToken) error {
	return w.deleteState(ctx, obj, obj.TargetName())
}

// deleteState deletes the state Secret of target Secret target when it is
// obj's.
func (w *Writer) deleteState(ctx context.Context, obj *v1alpha1.OAuthClientToken, target string) error {
	key := types.NamespacedName{Namespace: obj.Namespace, Name: StateName(target)}
	if _, exists := w.Index.Secret(key); !exists {
		return nil
	}
	s := &corev1.Secret{}
	if err := w.API.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading state Secret %s: %w", key.Name, err)
	}
	if s.Labels[v1alpha1.ManagedLabel] != "true" || s.Annotations[v1alpha1.OwnerAnnotation] != obj.Name || s.Annotations[v1alpha1.StateOfAnnotation] != target {
		return nil
	}
	return w.deleteExactly(ctx, s)
}
