package secrets

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SigningKeyKey is the data key of the signing key in its Secret.
const SigningKeyKey = "key"

// LoadSigningKey reads the key that signs target Secret records from
// Secret key, creating it with 32 random bytes when it does not exist (two
// replicas starting together agree: the second create fails and reads the
// first's). Replicas and shards share it; deleting it makes every record
// untrusted, so each object gets one new token.
func LoadSigningKey(ctx context.Context, c client.Client, key types.NamespacedName) (*Signer, error) {
	for range 3 {
		s := &corev1.Secret{}
		err := c.Get(ctx, key, s)
		if err == nil {
			return NewSigner(s.Data[SigningKeyKey])
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the signing key Secret %s: %w", key, err)
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "tokensync"},
				Annotations: map[string]string{"oauth.tokensync.io/purpose": "signs the records tokensync writes on target Secrets; deleting it makes every object get a new token"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SigningKeyKey: b},
		}
		if err := c.Create(ctx, s); err == nil {
			return NewSigner(b)
		} else if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the signing key Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("the signing key Secret %s keeps disappearing", key)
}
