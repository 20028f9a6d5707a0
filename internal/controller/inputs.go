package controller

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

// inputs are what a token request needs besides the spec: the credentials
// and TLS material read from Secrets and ConfigMaps, and the token
// endpoint. They only live in memory for the duration of a reconcile.
type inputs struct {
	clientID     string
	clientSecret string
	username     string
	password     string
	privateKey   []byte
	tls          *oauth.TLSConfig
	// endpoint is the token URL in use: spec.provider.tokenURL or the one
	// discovered from issuerURL.
	endpoint string
	// read is set once the credentials were read.
	read bool
	// version is the inputs version (inputsVersion) of the credentials
	// Secret read, or of the one the Secret index knows when the target
	// Secret showed that the credentials need not be read.
	version string
}

// needsSecret reports whether the auth method sends a client secret.
func needsSecret(m v1alpha1.AuthMethod) bool {
	return m != v1alpha1.AuthMethodPrivateKeyJWT && m != v1alpha1.AuthMethodTLSClientAuth
}

// readCredentials reads the keys the spec needs from the credentials
// Secret, with a direct GET so that credentials Secrets never enter a cache.
func (r *OAuthClientTokenReconciler) readCredentials(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs) error {
	ref := obj.Spec.CredentialsRef
	p := obj.Spec.Provider
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return stalled(v1alpha1.ReasonCredentialsNotFound, "credentials Secret %s not found", ref.Name)
		}
		return fmt.Errorf("reading credentials Secret %s: %w", ref.Name, err)
	}
	type want struct {
		key string
		dst *string
	}
	wants := []want{{keyOr(ref.ClientIDKey, v1alpha1.DefaultClientIDKey), &in.clientID}}
	if needsSecret(p.AuthMethod) {
		wants = append(wants, want{keyOr(ref.ClientSecretKey, v1alpha1.DefaultClientSecretKey), &in.clientSecret})
	}
	if p.Grant == v1alpha1.GrantPassword {
		wants = append(wants,
			want{keyOr(ref.UsernameKey, v1alpha1.DefaultUsernameKey), &in.username},
			want{keyOr(ref.PasswordKey, v1alpha1.DefaultPasswordKey), &in.password})
	}
	var privateKey string
	if p.AuthMethod == v1alpha1.AuthMethodPrivateKeyJWT {
		wants = append(wants, want{keyOr(ref.PrivateKeyKey, v1alpha1.DefaultPrivateKeyKey), &privateKey})
	}
	for _, w := range wants {
		v, ok := s.Data[w.key]
		if !ok {
			return stalled(v1alpha1.ReasonCredentialsKeyMissing, "credentials Secret %s has no key %q", ref.Name, w.key)
		}
		if len(v) == 0 {
			return stalled(v1alpha1.ReasonCredentialsKeyMissing, "credentials Secret %s has an empty value for key %q", ref.Name, w.key)
		}
		*w.dst = string(v)
	}
	if privateKey != "" {
		if _, err := oauth.ParsePrivateKey([]byte(privateKey)); err != nil {
			return stalled(v1alpha1.ReasonInvalidCredentials, "key %q of credentials Secret %s is not a usable private key: %v",
				keyOr(ref.PrivateKeyKey, v1alpha1.DefaultPrivateKeyKey), ref.Name, err)
		}
		in.privateKey = []byte(privateKey)
	}
	in.read = true
	in.version = inputsVersion(obj, s.ResourceVersion)
	return nil
}

// configHashOf returns the config hash of obj's inputs. When the target
// Secret live records the inputs version of the credentials Secret at the
// resourceVersion the Secret index saw last, the credentials have not
// changed since its config hash was computed: that hash is returned and
// the credentials are not read (a reconcile with nothing to do, or a
// restart, then costs no API request). Otherwise the credentials are read
// into in and hashed. A change the index has not seen yet queues another
// reconcile when it arrives.
func (r *OAuthClientTokenReconciler) configHashOf(ctx context.Context, obj *v1alpha1.OAuthClientToken, live *corev1.Secret, in *inputs) (string, error) {
	if live != nil {
		key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Spec.CredentialsRef.Name}
		if rv := r.secretVersion(key); rv != "" {
			if v := inputsVersion(obj, rv); live.Annotations[v1alpha1.InputsVersionAnnotation] == v {
				in.version = v
				return live.Annotations[v1alpha1.ConfigHashAnnotation], nil
			}
		}
	}
	if err := r.readCredentials(ctx, obj, in); err != nil {
		return "", err
	}
	return configHash(&obj.Spec.Provider, in), nil
}

// readTLS reads the CA bundle and client certificate of spec.provider.tls.
func (r *OAuthClientTokenReconciler) readTLS(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs) error {
	spec := obj.Spec.Provider.TLS
	if spec == nil {
		return nil
	}
	cfg := &oauth.TLSConfig{}
	if ca := spec.CABundle; ca != nil {
		var data []byte
		var err error
		switch {
		case ca.SecretRef != nil:
			data, err = r.readKey(ctx, obj.Namespace, &corev1.Secret{}, ca.SecretRef.Name, keyOr(ca.SecretRef.Key, v1alpha1.DefaultCABundleKey))
		case ca.ConfigMapRef != nil:
			data, err = r.readKey(ctx, obj.Namespace, &corev1.ConfigMap{}, ca.ConfigMapRef.Name, keyOr(ca.ConfigMapRef.Key, v1alpha1.DefaultCABundleKey))
		}
		if err != nil {
			return err
		}
		cfg.CAPEM = data
	}
	if ref := spec.ClientCertificateSecretRef; ref != nil {
		var err error
		if cfg.CertPEM, err = r.readKey(ctx, obj.Namespace, &corev1.Secret{}, ref.Name, corev1.TLSCertKey); err != nil {
			return err
		}
		if cfg.KeyPEM, err = r.readKey(ctx, obj.Namespace, &corev1.Secret{}, ref.Name, corev1.TLSPrivateKeyKey); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return stalled(v1alpha1.ReasonTLSConfigInvalid, "provider.tls: %v", err)
	}
	in.tls = cfg
	return nil
}

// readKey reads one non-empty key of a Secret or ConfigMap directly from
// the API server.
func (r *OAuthClientTokenReconciler) readKey(ctx context.Context, ns string, obj client.Object, name, key string) ([]byte, error) {
	kind := "Secret"
	if _, ok := obj.(*corev1.ConfigMap); ok {
		kind = "ConfigMap"
	}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, stalled(v1alpha1.ReasonTLSConfigInvalid, "%s %s (provider.tls) not found", kind, name)
		}
		return nil, fmt.Errorf("reading %s %s: %w", kind, name, err)
	}
	var v []byte
	switch o := obj.(type) {
	case *corev1.Secret:
		v = o.Data[key]
	case *corev1.ConfigMap:
		if s, ok := o.Data[key]; ok {
			v = []byte(s)
		} else {
			v = o.BinaryData[key]
		}
	}
	if len(v) == 0 {
		return nil, stalled(v1alpha1.ReasonTLSConfigInvalid, "%s %s (provider.tls) has no key %q or it is empty", kind, name, key)
	}
	return v, nil
}

// resolveEndpoint sets in.endpoint: tokenURL, or the token endpoint of the
// issuer's discovery document.
func (r *OAuthClientTokenReconciler) resolveEndpoint(ctx context.Context, obj *v1alpha1.OAuthClientToken, in *inputs) error {
	p := obj.Spec.Provider
	if p.TokenURL != "" {
		in.endpoint = p.TokenURL
		return r.checkTokenURL("tokenURL", p.TokenURL)
	}
	if p.IssuerURL == "" {
		return stalled(v1alpha1.ReasonInvalidSpec, "set provider.tokenURL or provider.issuerURL")
	}
	if err := r.checkTokenURL("issuerURL", p.IssuerURL); err != nil {
		return err
	}
	req := oauth.DiscoveryRequest{IssuerURL: p.IssuerURL, Headers: headers(p.Headers), TLS: in.tls}
	if p.Timeout != nil {
		req.Timeout = p.Timeout.Duration
	}
	md, err := r.discovery().TokenEndpoint(ctx, req)
	if err != nil {
		oe, _ := oauth.AsError(err)
		if oe != nil && oe.Forbidden {
			return stalled(v1alpha1.ReasonTokenURLNotAllowed, "discovering the token endpoint of %s: %v", oauth.RedactedURL(p.IssuerURL), err)
		}
		if oe != nil && oe.Kind == oauth.KindTransient {
			return transient(v1alpha1.ReasonDiscoveryFailed, oe.RetryAfter, "discovering the token endpoint of %s: %v", oauth.RedactedURL(p.IssuerURL), err)
		}
		return stalled(v1alpha1.ReasonDiscoveryFailed, "discovering the token endpoint of %s: %v", oauth.RedactedURL(p.IssuerURL), err)
	}
	in.endpoint = md.TokenEndpoint
	return r.checkTokenURL("the discovered token_endpoint", md.TokenEndpoint)
}

func (r *OAuthClientTokenReconciler) discovery() Discoverer {
	if r.Discovery != nil {
		return r.Discovery
	}
	return defaultDiscovery
}

var defaultDiscovery = &oauth.Discovery{}

// checkTokenURL refuses what admission cannot: plain http when the manager
// does not allow it.
func (r *OAuthClientTokenReconciler) checkTokenURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return stalled(v1alpha1.ReasonInvalidSpec, "%s %q is not an absolute URL", field, oauth.RedactedURL(raw))
	}
	if !r.TokenURLAllowlist.Allows(u.Hostname()) {
		return stalled(v1alpha1.ReasonTokenURLNotAllowed, "%s host %q is not in the manager's --token-url-allowlist (%s)", field, u.Hostname(), r.TokenURLAllowlist)
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil && !r.AllowLinkLocal && oauth.IsForbiddenAddress(addr) {
		return stalled(v1alpha1.ReasonTokenURLNotAllowed, "%s: %v", field, &oauth.ForbiddenAddressError{Addr: addr.Unmap()})
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if r.AllowInsecureHTTP {
			return nil
		}
		return stalled(v1alpha1.ReasonInsecureTokenURL, "%s %s uses plain http; use https (the manager accepts http only with --allow-insecure-http, for local testing)", field, oauth.RedactedURL(raw))
	default:
		return stalled(v1alpha1.ReasonInvalidSpec, "%s scheme %q is not https", field, u.Scheme)
	}
}

func keyOr(k, def string) string {
	if k == "" {
		return def
	}
	return k
}
