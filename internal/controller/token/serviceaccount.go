package token

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/secrets"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// DefaultServiceAccountTokenSeconds is the lifetime asked for ServiceAccount
// tokens: the API server's minimum.
const DefaultServiceAccountTokenSeconds = 600

// ServiceAccountTokens obtains ServiceAccount tokens from the TokenRequest
// API.
type ServiceAccountTokens interface {
	Token(ctx context.Context, ns, name, audience string, seconds int64) (token string, expiresAt time.Time, err error)
}

// tokenRequests asks the TokenRequest API (serviceaccounts/token create),
// never a mounted file.
type tokenRequests struct{ c client.Client }

func (t tokenRequests) Token(ctx context.Context, ns, name, audience string, seconds int64) (string, time.Time, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &seconds}}
	if err := t.c.SubResource("token").Create(ctx, sa, tr); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return "", time.Time{}, failure.NewStalled(v1alpha1.ReasonServiceAccountNotFound, "ServiceAccount %s not found", name)
		case apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
			return "", time.Time{}, failure.NewStalled(v1alpha1.ReasonServiceAccountNotAllowed, "the TokenRequest API refused a token for ServiceAccount %s: %s", name, apierrors.ReasonForError(err))
		}
		return "", time.Time{}, failure.NewTransient(v1alpha1.ReasonTokenEndpointUnavailable, 0, "requesting a token for ServiceAccount %s: %v", name, err)
	}
	return tr.Status.Token, tr.Status.ExpirationTimestamp.Time, nil
}

// serviceAccountToken obtains the ServiceAccount token obj's request needs.
func (r *Reconciler) serviceAccountToken(ctx context.Context, obj *v1alpha1.OAuthClientToken, endpoint string) (string, time.Time, error) {
	sa := obj.Spec.ServiceAccount
	audience := sa.Audience
	if audience == "" {
		audience = obj.Spec.Provider.IssuerURL
	}
	if audience == "" {
		audience = endpoint
	}
	seconds := int64(DefaultServiceAccountTokenSeconds)
	if sa.ExpirationSeconds != nil {
		seconds = *sa.ExpirationSeconds
	}
	sat := r.ServiceAccounts
	if sat == nil {
		sat = tokenRequests{r.Client}
	}
	return sat.Token(ctx, obj.Namespace, sa.Name, audience, seconds)
}

// subjects reads the token another OAuthClientToken holds, the subject of
// a chained exchange: from its target Secret, when its record is intact
// and signed, and the token has not expired. Its version is the object's
// UID and issue time, which change when it gets a new token.
func subjects(c client.Reader, w *secrets.Writer, now func() time.Time) func(ctx context.Context, ns, name string) (string, time.Time, string, error) {
	return func(ctx context.Context, ns, name string) (string, time.Time, string, error) {
		other := &v1alpha1.OAuthClientToken{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, other); err != nil {
			if apierrors.IsNotFound(err) {
				return "", time.Time{}, "", failure.NewTransient(v1alpha1.ReasonSubjectTokenNotReady, 0, "OAuthClientToken %s, whose token is the subject of the exchange, does not exist", name)
			}
			return "", time.Time{}, "", err
		}
		tok := w.Previous(ctx, other, other.TargetName())
		if tok == nil || tok.AccessToken == "" || !now().Before(tok.ExpiresAt) {
			return "", time.Time{}, "", failure.NewTransient(v1alpha1.ReasonSubjectTokenNotReady, 0, "OAuthClientToken %s, whose token is the subject of the exchange, holds no valid token yet", name)
		}
		return tok.AccessToken, tok.ExpiresAt, fmt.Sprintf("%s/%s", other.UID, tok.IssuedAt.UTC().Format(time.RFC3339)), nil
	}
}

// subjectVersion is the version subjects reports, from the cache alone.
func subjectVersion(c client.Reader, key types.NamespacedName) (string, bool) {
	other := &v1alpha1.OAuthClientToken{}
	if err := c.Get(context.Background(), key, other); err != nil || other.Status.IssuedAt == nil {
		return "", false
	}
	return fmt.Sprintf("%s/%s", other.UID, other.Status.IssuedAt.UTC().Format(time.RFC3339)), true
}
