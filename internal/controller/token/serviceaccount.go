package token

import (
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/inputs"
	"github.com/tokensync/tokensync/internal/secrets"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

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

// Token obtains a token for ServiceAccount ns/name with audience, and
// refuses it when the Kubernetes API server itself accepts it: a token for
// one of the API server's audiences would let whoever receives it (the
// token endpoint the object names) act as the ServiceAccount in the
// cluster. The TokenReview asks the API server with its own audiences.
func (t tokenRequests) Token(ctx context.Context, ns, name, audience string, seconds int64) (string, time.Time, error) {
	token, exp, err := t.request(ctx, ns, name, audience, seconds)
	if err != nil {
		return "", time.Time{}, err
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := t.c.Create(ctx, review); err != nil {
		return "", time.Time{}, failure.NewTransient(v1alpha1.ReasonTokenEndpointUnavailable, 0, "checking that the token of ServiceAccount %s is not one the Kubernetes API server accepts: %s", name, apierrors.ReasonForError(err))
	}
	if review.Status.Authenticated {
		return "", time.Time{}, failure.NewStalled(v1alpha1.ReasonServiceAccountNotAllowed, "audience %q is one the Kubernetes API server accepts: a token for it would let the token endpoint act as ServiceAccount %s in this cluster; set serviceAccount.audience to the identity provider's audience", audience, name)
	}
	return token, exp, nil
}

func (t tokenRequests) request(ctx context.Context, ns, name, audience string, seconds int64) (string, time.Time, error) {
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

// maxExchangeChain bounds how far a chain of exchanges is followed when
// looking for a cycle.
const maxExchangeChain = 16

// subjects reads the token another OAuthClientToken holds, the subject of
// a chained exchange: from its target Secret, when its record is intact
// and signed, and the token has not expired. Its version is the object's
// UID and issue time, which change when it gets a new token. A chain that
// leads back to self (self → a → … → self) is refused: each new token of
// one would renew the next, forever.
func subjects(c client.Reader, w *secrets.Writer, now func() time.Time) func(ctx context.Context, ns, self, name string) (string, time.Time, string, error) {
	return func(ctx context.Context, ns, self, name string) (string, time.Time, string, error) {
		other := &v1alpha1.OAuthClientToken{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, other); err != nil {
			if apierrors.IsNotFound(err) {
				return "", time.Time{}, "", failure.NewTransient(v1alpha1.ReasonSubjectTokenNotReady, 0, "OAuthClientToken %s, whose token is the subject of the exchange, does not exist", name)
			}
			return "", time.Time{}, "", err
		}
		if chain, ok := cycle(ctx, c, ns, self, other); ok {
			return "", time.Time{}, "", failure.NewStalled(v1alpha1.ReasonInvalidSpec, "the chained token exchange forms a cycle (%s): each new token would renew the next forever; make one of them obtain its token without a subjectTokenRef", strings.Join(chain, " → "))
		}
		tok := w.Previous(ctx, other, other.TargetName())
		if tok == nil || tok.AccessToken == "" || !now().Before(tok.ExpiresAt) {
			return "", time.Time{}, "", failure.NewTransient(v1alpha1.ReasonSubjectTokenNotReady, 0, "OAuthClientToken %s, whose token is the subject of the exchange, holds no valid token yet", name)
		}
		return tok.AccessToken, tok.ExpiresAt, fmt.Sprintf("%s/%s", other.UID, tok.IssuedAt.UTC().Format(time.RFC3339)), nil
	}
}

// cycle follows the subjectTokenRefs from first, the subject of self, and
// reports the chain when it comes back to self.
func cycle(ctx context.Context, c client.Reader, ns, self string, first *v1alpha1.OAuthClientToken) ([]string, bool) {
	chain := []string{self}
	cur := first
	for range maxExchangeChain {
		chain = append(chain, cur.Name)
		if cur.Name == self {
			return chain, true
		}
		next := inputs.SubjectRef(cur)
		if next == "" {
			return nil, false
		}
		cur = &v1alpha1.OAuthClientToken{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: next}, cur); err != nil {
			return nil, false
		}
	}
	return nil, false
}

// subjectVersion is the version subjects reports, from the cache alone.
func subjectVersion(c client.Reader, key types.NamespacedName) (string, bool) {
	other := &v1alpha1.OAuthClientToken{}
	if err := c.Get(context.Background(), key, other); err != nil || other.Status.IssuedAt == nil {
		return "", false
	}
	return fmt.Sprintf("%s/%s", other.UID, other.Status.IssuedAt.UTC().Format(time.RFC3339)), true
}
