package testutil

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensync/tokensync/test/tokenserver"
)

// ServiceAccountIssuer is the ServiceAccount token issuer of an envtest
// kube-apiserver, as ConfigureServiceAccountIssuer set it up: tokens from
// the TokenRequest API carry iss URL, and the API server serves URL +
// /.well-known/openid-configuration and /openid/v1/jwks, so that the test
// token server (or any identity provider) can verify them.
type ServiceAccountIssuer struct {
	// URL is --service-account-issuer: https://127.0.0.1:<secure port>.
	URL string
	// Audiences are --api-audiences: URL and the extra audiences given.
	Audiences []string
}

// ConfigureServiceAccountIssuer sets the flags of env's kube-apiserver
// that ServiceAccount tokens depend on, before env.Start: it fixes the
// secure port (so that the issuer URL is known and reachable: the API
// server itself), writes a new RSA signing key to dir, and sets
// --service-account-issuer, --service-account-key-file,
// --service-account-signing-key-file, --service-account-jwks-uri (on
// loopback too) and --api-audiences (the issuer and audiences). After Start, call AllowAnonymousIssuerDiscovery when the
// verifier reads the documents without credentials, and TrustedIssuer for
// the token server's configuration.
//
//	env := &envtest.Environment{...}
//	issuer, err := testutil.ConfigureServiceAccountIssuer(env, dir, "https://tokenserver.test")
//	cfg, err := env.Start()
//	err = testutil.AllowAnonymousIssuerDiscovery(ctx, cfg)
//	trusted := issuer.TrustedIssuer(cfg.CAData, "https://tokenserver.test")
//	srv := tokenserver.New(tokenserver.Options{TrustedIssuers: []tokenserver.TrustedIssuer{trusted}, ...})
//	token, err := testutil.ServiceAccountToken(ctx, cfg, "team-a", "payments", "https://tokenserver.test", 10*time.Minute)
func ConfigureServiceAccountIssuer(env *envtest.Environment, dir string, audiences ...string) (*ServiceAccountIssuer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	keyFile, pubFile := filepath.Join(dir, "sa-signing.key"), filepath.Join(dir, "sa-signing.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return nil, err
	}
	api := env.ControlPlane.GetAPIServer()
	api.SecureServing.Address, api.SecureServing.Port = "127.0.0.1", strconv.Itoa(port)
	iss := &ServiceAccountIssuer{URL: fmt.Sprintf("https://127.0.0.1:%d", port)}
	iss.Audiences = append([]string{iss.URL}, audiences...)
	api.Configure().
		Set("service-account-issuer", iss.URL).
		Set("service-account-key-file", pubFile).
		Set("service-account-signing-key-file", keyFile).
		// Else the document names the advertise address (the machine's
		// first non-loopback address): keep every request on loopback.
		Set("service-account-jwks-uri", iss.URL+"/openid/v1/jwks").
		Set("api-audiences", strings.Join(iss.Audiences, ","))
	return iss, nil
}

// TrustedIssuer is the token server's configuration for the issuer:
// caData is the API server's CA (rest.Config.CAData), audience the aud the
// server wants. The documents are read anonymously (see
// AllowAnonymousIssuerDiscovery); set BearerToken otherwise.
func (i *ServiceAccountIssuer) TrustedIssuer(caData []byte, audience string) tokenserver.TrustedIssuer {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caData)
	return tokenserver.TrustedIssuer{Issuer: i.URL, Audience: audience, RootCAs: pool}
}

// AllowAnonymousIssuerDiscovery binds the ClusterRole
// system:service-account-issuer-discovery to system:unauthenticated, as
// a cluster does whose issuer an outside identity provider reads: the API
// server then serves its discovery document and JWKS without credentials.
func AllowAnonymousIssuerDiscovery(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tokensync-test-anonymous-issuer-discovery"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:unauthenticated"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// ServiceAccountToken creates the namespace and ServiceAccount when
// missing and returns a token for audience from the TokenRequest API,
// valid for lifetime (the API server's minimum is 10 minutes). The token
// is a secret: do not log it.
func ServiceAccountToken(ctx context.Context, cfg *rest.Config, namespace, name, audience string, lifetime time.Duration) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	secs := int64(lifetime / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}
