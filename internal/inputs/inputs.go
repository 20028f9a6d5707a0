// Package inputs reads what a token request needs besides the spec: the
// credentials, the TLS material, and the token endpoint (from the spec or
// the issuer's discovery document). It digests them into the config hash a
// token is recorded with, and digests the versions of the objects they come
// from into the inputs version, which tells whether they can have changed
// without reading them. Inputs live in memory only, for one reconcile.
package inputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/failure"
	"github.com/tokensync/tokensync/internal/oauth"
)

// Inputs are the credentials and TLS material of one object.
type Inputs struct {
	ClientID, ClientSecret string
	Username, Password     string
	PrivateKey             []byte
	TLS                    *oauth.TLSConfig
	// Subject is the token of another OAuthClientToken, the subject of a
	// chained token exchange, and SubjectExpiresAt when it expires.
	Subject          string
	SubjectExpiresAt time.Time
	// ConfigHash digests the provider spec and every value above.
	ConfigHash string
	// Version digests the provider spec, the references and the
	// resourceVersions of the objects read.
	Version string
}

// Kind of object an input is read from.
type Kind string

const (
	SecretKind           Kind = "Secret"
	ConfigMapKind        Kind = "ConfigMap"
	ServiceAccountKind   Kind = "ServiceAccount"
	OAuthClientTokenKind Kind = "OAuthClientToken"
)

// Ref is an object an input is read from.
type Ref struct {
	Kind Kind
	Name string
}

// Versions returns the resourceVersion of an object as last seen by a
// watch, and whether it exists.
type Versions func(kind Kind, key types.NamespacedName) (rv string, exists bool)

// SubjectReader returns the token another OAuthClientToken of namespace
// ns holds (the subject of a chained exchange), when it expires, and the
// version of that token (anything that changes when it does).
type SubjectReader func(ctx context.Context, ns, self, name string) (token string, expiresAt time.Time, version string, err error)

// Reader reads inputs.
type Reader struct {
	// API reads directly from the API server, so that credentials never
	// enter a cache.
	API client.Reader
	// Versions, when set, lets Version answer without reading.
	Versions Versions
	// Subjects reads the subject tokens of chained exchanges.
	Subjects SubjectReader
}

// Refs lists the objects obj's inputs come from: the credentials Secret,
// the ServiceAccount, the subject of a chained exchange, the TLS material.
func Refs(obj *v1alpha1.OAuthClientToken) []Ref {
	var refs []Ref
	if c := obj.Spec.CredentialsRef; c != nil {
		refs = append(refs, Ref{SecretKind, c.Name})
	}
	if sa := obj.Spec.ServiceAccount; sa != nil && UsesServiceAccount(obj) {
		refs = append(refs, Ref{ServiceAccountKind, sa.Name})
	}
	if s := SubjectRef(obj); s != "" {
		refs = append(refs, Ref{OAuthClientTokenKind, s})
	}
	if t := obj.Spec.Provider.TLS; t != nil {
		if ca := t.CABundle; ca != nil {
			switch {
			case ca.SecretRef != nil:
				refs = append(refs, Ref{SecretKind, ca.SecretRef.Name})
			case ca.ConfigMapRef != nil:
				refs = append(refs, Ref{ConfigMapKind, ca.ConfigMapRef.Name})
			}
		}
		if c := t.ClientCertificateSecretRef; c != nil {
			refs = append(refs, Ref{SecretKind, c.Name})
		}
	}
	return refs
}

// Version returns the inputs version of obj from the versions the watch
// saw, without reading anything; ok is false when one of the objects is
// unknown to it.
func (r *Reader) Version(obj *v1alpha1.OAuthClientToken) (string, bool) {
	return r.VersionIn(obj, obj.Namespace)
}

// VersionIn is Version with the credentials Secret and the TLS material
// in namespace ns (a provider's).
func (r *Reader) VersionIn(obj *v1alpha1.OAuthClientToken, ns string) (string, bool) {
	if r.Versions == nil {
		return "", false
	}
	refs := Refs(obj)
	rvs := make([]string, len(refs))
	for i, ref := range refs {
		refNS := obj.Namespace
		if ref.Kind == SecretKind || ref.Kind == ConfigMapKind {
			refNS = ns
		}
		rv, exists := r.Versions(ref.Kind, types.NamespacedName{Namespace: refNS, Name: ref.Name})
		if !exists || rv == "" {
			return "", false
		}
		rvs[i] = rv
	}
	return version(obj, rvs), true
}

// UsesServiceAccount reports whether obj's requests need a ServiceAccount
// token: as the client assertion, or as the subject of an exchange.
func UsesServiceAccount(obj *v1alpha1.OAuthClientToken) bool {
	p := obj.Spec.Provider
	return p.AuthMethod == v1alpha1.AuthMethodServiceAccountAssertion ||
		(p.Grant == v1alpha1.GrantTokenExchange && SubjectRef(obj) == "")
}

// SubjectRef is the OAuthClientToken whose token is the subject of obj's
// chained exchange, "" when there is none.
func SubjectRef(obj *v1alpha1.OAuthClientToken) string {
	p := obj.Spec.Provider
	if p.Grant == v1alpha1.GrantTokenExchange && p.TokenExchange != nil && p.TokenExchange.SubjectTokenRef != nil {
		return p.TokenExchange.SubjectTokenRef.Name
	}
	return ""
}

// specOf is what the inputs of obj depend on in its spec. An object
// resolved from a providerRef adds the reference (the provider spec and
// credentials are already in provider and credentialsRef); inline objects
// digest as before providers existed.
func specOf(obj *v1alpha1.OAuthClientToken) []byte {
	parts := []any{&obj.Spec.Provider, obj.Spec.CredentialsRef, obj.Spec.ServiceAccount}
	if ref := obj.Spec.ProviderRef; ref != nil {
		// Which provider; what the object asks of it is in the resolved
		// provider spec already, so objects that ask the same, in any
		// words, digest the same (and share a Shared provider's token).
		parts = append(parts, []string{string(ref.Kind), ref.Name})
	}
	b, _ := json.Marshal(parts) // strings, maps and slices: cannot fail
	return b
}

// version digests the spec the inputs depend on and the versions of the
// objects of Refs(obj), in that order.
func version(obj *v1alpha1.OAuthClientToken, rvs []string) string {
	h := sha256.New()
	h.Write([]byte("tokensync/inputs/v3\x00"))
	for _, b := range append([][]byte{specOf(obj)}, toBytes(rvs)...) {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// configHash digests everything a token depends on: the provider spec, the
// credentials and the TLS material. A different digest on the target
// Secret means the token there was obtained with other inputs. SHA-256 is
// one-way; the digest is stored only on the target Secret, whose readers
// already hold the token those inputs produce.
func configHash(obj *v1alpha1.OAuthClientToken, in *Inputs) string {
	h := sha256.New()
	h.Write([]byte("tokensync/config/v3\x00"))
	fields := [][]byte{specOf(obj), []byte(in.ClientID), []byte(in.ClientSecret), []byte(in.Username), []byte(in.Password), in.PrivateKey, []byte(in.Subject)}
	if in.TLS != nil {
		fields = append(fields, in.TLS.CAPEM, in.TLS.CertPEM, in.TLS.KeyPEM)
	}
	for _, b := range fields {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// needsSecret reports whether the auth method sends a client secret.
func needsSecret(m v1alpha1.AuthMethod) bool {
	switch m {
	case v1alpha1.AuthMethodPrivateKeyJWT, v1alpha1.AuthMethodTLSClientAuth, v1alpha1.AuthMethodServiceAccountAssertion, v1alpha1.AuthMethodNone:
		return false
	}
	return true
}

// needsClientID reports whether the auth method must send a client id.
func needsClientID(m v1alpha1.AuthMethod) bool {
	return m != v1alpha1.AuthMethodServiceAccountAssertion && m != v1alpha1.AuthMethodNone
}

// Read reads obj's credentials, ServiceAccount, exchange subject and TLS
// material with direct GETs, in the order of Refs.
func (r *Reader) Read(ctx context.Context, obj *v1alpha1.OAuthClientToken) (*Inputs, error) {
	return r.ReadIn(ctx, obj, obj.Namespace)
}

// ReadIn is Read with the credentials Secret and the TLS material read
// from namespace ns (a provider's).
func (r *Reader) ReadIn(ctx context.Context, obj *v1alpha1.OAuthClientToken, ns string) (*Inputs, error) {
	in := &Inputs{ClientID: obj.Spec.Provider.ClientID}
	var rvs []string
	if obj.Spec.CredentialsRef != nil {
		rv, err := r.readCredentials(ctx, obj, ns, in)
		if err != nil {
			return nil, err
		}
		rvs = append(rvs, rv)
	} else if in.ClientID == "" && needsClientID(obj.Spec.Provider.AuthMethod) {
		return nil, failure.NewStalled(v1alpha1.ReasonInvalidSpec, "set credentialsRef or provider.clientID")
	}
	if UsesServiceAccount(obj) {
		rv, err := r.checkServiceAccount(ctx, obj)
		if err != nil {
			return nil, err
		}
		rvs = append(rvs, rv)
	}
	if name := SubjectRef(obj); name != "" {
		if r.Subjects == nil {
			return nil, failure.NewStalled(v1alpha1.ReasonInvalidSpec, "chained token exchange is not available")
		}
		tok, exp, v, err := r.Subjects(ctx, obj.Namespace, obj.Name, name)
		if err != nil {
			return nil, err
		}
		in.Subject, in.SubjectExpiresAt = tok, exp
		rvs = append(rvs, v)
	}
	tlsRVs, err := r.readTLS(ctx, obj, ns, in)
	if err != nil {
		return nil, err
	}
	in.ConfigHash = configHash(obj, in)
	in.Version = version(obj, append(rvs, tlsRVs...))
	return in, nil
}

// checkServiceAccount reads the ServiceAccount obj names and checks that
// it allows token requests; it returns its resourceVersion.
func (r *Reader) checkServiceAccount(ctx context.Context, obj *v1alpha1.OAuthClientToken) (string, error) {
	name := obj.Spec.ServiceAccount.Name
	sa := &corev1.ServiceAccount{}
	if err := r.API.Get(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: name}, sa); err != nil {
		if apierrors.IsNotFound(err) {
			return "", failure.NewStalled(v1alpha1.ReasonServiceAccountNotFound, "ServiceAccount %s not found", name)
		}
		return "", fmt.Errorf("reading ServiceAccount %s: %w", name, err)
	}
	if sa.Annotations[v1alpha1.AllowTokenRequestsAnnotation] != "true" {
		return "", failure.NewStalled(v1alpha1.ReasonServiceAccountNotAllowed,
			"ServiceAccount %s does not allow tokensync to request its tokens: annotate it with %s=true (whoever may annotate it decides)", name, v1alpha1.AllowTokenRequestsAnnotation)
	}
	return sa.ResourceVersion, nil
}

func keyOr(k, def string) string {
	if k == "" {
		return def
	}
	return k
}

func (r *Reader) readCredentials(ctx context.Context, obj *v1alpha1.OAuthClientToken, ns string, in *Inputs) (string, error) {
	ref := *obj.Spec.CredentialsRef
	p := obj.Spec.Provider
	s := &corev1.Secret{}
	if err := r.API.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", failure.NewStalled(v1alpha1.ReasonCredentialsNotFound, "credentials Secret %s not found", ref.Name)
		}
		return "", fmt.Errorf("reading credentials Secret %s: %w", ref.Name, err)
	}
	type want struct {
		key string
		dst *string
	}
	// The client id: the Secret's when it has one, else provider.clientID.
	var wants []want
	idKey := keyOr(ref.ClientIDKey, v1alpha1.DefaultClientIDKey)
	if _, ok := s.Data[idKey]; ok || (in.ClientID == "" && needsClientID(p.AuthMethod)) {
		wants = append(wants, want{idKey, &in.ClientID})
	}
	if needsSecret(p.AuthMethod) {
		wants = append(wants, want{keyOr(ref.ClientSecretKey, v1alpha1.DefaultClientSecretKey), &in.ClientSecret})
	}
	if p.Grant == v1alpha1.GrantPassword {
		wants = append(wants,
			want{keyOr(ref.UsernameKey, v1alpha1.DefaultUsernameKey), &in.Username},
			want{keyOr(ref.PasswordKey, v1alpha1.DefaultPasswordKey), &in.Password})
	}
	var privateKey string
	if p.AuthMethod == v1alpha1.AuthMethodPrivateKeyJWT {
		wants = append(wants, want{keyOr(ref.PrivateKeyKey, v1alpha1.DefaultPrivateKeyKey), &privateKey})
	}
	for _, w := range wants {
		v, ok := s.Data[w.key]
		if !ok {
			return "", failure.NewStalled(v1alpha1.ReasonCredentialsKeyMissing, "credentials Secret %s has no key %q", ref.Name, w.key)
		}
		if len(v) == 0 {
			return "", failure.NewStalled(v1alpha1.ReasonCredentialsKeyMissing, "credentials Secret %s has an empty value for key %q", ref.Name, w.key)
		}
		*w.dst = string(v)
	}
	if privateKey != "" {
		if _, err := oauth.ParsePrivateKey([]byte(privateKey)); err != nil {
			return "", failure.NewStalled(v1alpha1.ReasonInvalidCredentials, "key %q of credentials Secret %s is not a usable private key: %v",
				keyOr(ref.PrivateKeyKey, v1alpha1.DefaultPrivateKeyKey), ref.Name, err)
		}
		in.PrivateKey = []byte(privateKey)
	}
	return s.ResourceVersion, nil
}

// readTLS reads the CA bundle and client certificate of spec.provider.tls,
// and returns the resourceVersions of the objects read, in Refs order.
func (r *Reader) readTLS(ctx context.Context, obj *v1alpha1.OAuthClientToken, ns string, in *Inputs) ([]string, error) {
	spec := obj.Spec.Provider.TLS
	if spec == nil {
		return nil, nil
	}
	var rvs []string
	cfg := &oauth.TLSConfig{}
	if ca := spec.CABundle; ca != nil {
		var data []byte
		var rv string
		var err error
		switch {
		case ca.SecretRef != nil:
			data, rv, err = r.readKey(ctx, ns, &corev1.Secret{}, ca.SecretRef.Name, keyOr(ca.SecretRef.Key, v1alpha1.DefaultCABundleKey))
		case ca.ConfigMapRef != nil:
			data, rv, err = r.readKey(ctx, ns, &corev1.ConfigMap{}, ca.ConfigMapRef.Name, keyOr(ca.ConfigMapRef.Key, v1alpha1.DefaultCABundleKey))
		}
		if err != nil {
			return nil, err
		}
		cfg.CAPEM = data
		rvs = append(rvs, rv)
	}
	if ref := spec.ClientCertificateSecretRef; ref != nil {
		s := &corev1.Secret{}
		cert, rv, err := r.readKey(ctx, ns, s, ref.Name, corev1.TLSCertKey)
		if err != nil {
			return nil, err
		}
		key, ok := s.Data[corev1.TLSPrivateKeyKey]
		if !ok || len(key) == 0 {
			return nil, failure.NewStalled(v1alpha1.ReasonTLSConfigInvalid, "Secret %s (provider.tls) has no key %q or it is empty", ref.Name, corev1.TLSPrivateKeyKey)
		}
		cfg.CertPEM, cfg.KeyPEM = cert, key
		rvs = append(rvs, rv)
	}
	if err := cfg.Validate(); err != nil {
		return nil, failure.NewStalled(v1alpha1.ReasonTLSConfigInvalid, "provider.tls: %v", err)
	}
	in.TLS = cfg
	return rvs, nil
}

// readKey reads one non-empty key of a Secret or ConfigMap directly from
// the API server, and the object's resourceVersion.
func (r *Reader) readKey(ctx context.Context, ns string, obj client.Object, name, key string) ([]byte, string, error) {
	kind := "Secret"
	if _, ok := obj.(*corev1.ConfigMap); ok {
		kind = "ConfigMap"
	}
	if err := r.API.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", failure.NewStalled(v1alpha1.ReasonTLSConfigInvalid, "%s %s (provider.tls) not found", kind, name)
		}
		return nil, "", fmt.Errorf("reading %s %s: %w", kind, name, err)
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
		return nil, "", failure.NewStalled(v1alpha1.ReasonTLSConfigInvalid, "%s %s (provider.tls) has no key %q or it is empty", kind, name, key)
	}
	return v, obj.GetResourceVersion(), nil
}

// URLPolicy is what the manager allows token and issuer URLs to name,
// beyond what admission checks.
type URLPolicy struct {
	AllowInsecureHTTP bool
	Allowlist         *oauth.HostAllowlist
	AllowLinkLocal    bool
	// DenyPrivateNetworks refuses private and special-purpose addresses
	// too (--deny-private-networks).
	DenyPrivateNetworks bool
}

// Check refuses what admission cannot: plain http when the manager does
// not allow it, hosts outside the allowlist, metadata addresses.
func (p URLPolicy) Check(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return failure.NewStalled(v1alpha1.ReasonInvalidSpec, "%s %q is not an absolute URL", field, oauth.RedactedURL(raw))
	}
	if !p.Allowlist.Allows(u.Hostname()) {
		return failure.NewStalled(v1alpha1.ReasonTokenURLNotAllowed, "%s host %q is not in the manager's --token-url-allowlist (%s)", field, u.Hostname(), p.Allowlist)
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := oauth.CheckAddress(addr, oauth.HTTPOptions{AllowLinkLocal: p.AllowLinkLocal, DenyPrivateNetworks: p.DenyPrivateNetworks}); err != nil {
			return failure.NewStalled(v1alpha1.ReasonTokenURLNotAllowed, "%s: %v", field, err)
		}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if p.AllowInsecureHTTP {
			return nil
		}
		return failure.NewStalled(v1alpha1.ReasonInsecureTokenURL, "%s %s uses plain http; use https (the manager accepts http only with --allow-insecure-http, for local testing)", field, oauth.RedactedURL(raw))
	default:
		return failure.NewStalled(v1alpha1.ReasonInvalidSpec, "%s scheme %q is not https", field, u.Scheme)
	}
}
