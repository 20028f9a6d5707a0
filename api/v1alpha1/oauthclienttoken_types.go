package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthMethod is how the client authenticates to the token endpoint.
// +kubebuilder:validation:Enum=Auto;ClientSecretBasic;ClientSecretPost;PrivateKeyJWT;TLSClientAuth;ServiceAccountAssertion;None
type AuthMethod string

const (
	// AuthMethodAuto tries HTTP Basic first and falls back to credentials in
	// the request body when the endpoint refuses Basic.
	AuthMethodAuto AuthMethod = "Auto"
	// AuthMethodClientSecretBasic sends the URL-encoded client id and secret in
	// an HTTP Basic Authorization header (RFC 6749 section 2.3.1).
	AuthMethodClientSecretBasic AuthMethod = "ClientSecretBasic"
	// AuthMethodClientSecretPost sends client_id and client_secret as form
	// parameters in the request body.
	AuthMethodClientSecretPost AuthMethod = "ClientSecretPost"
	// AuthMethodPrivateKeyJWT authenticates with a client assertion (RFC 7523,
	// OpenID Connect private_key_jwt) signed with the private key held in the
	// credentials Secret. No client secret is sent.
	AuthMethodPrivateKeyJWT AuthMethod = "PrivateKeyJWT"
	// AuthMethodTLSClientAuth authenticates with the TLS client certificate
	// of provider.tls.clientCertificateSecretRef (RFC 8705 tls_client_auth);
	// only client_id is sent in the body.
	AuthMethodTLSClientAuth AuthMethod = "TLSClientAuth"
	// AuthMethodServiceAccountAssertion authenticates with a Kubernetes
	// ServiceAccount token (spec.serviceAccount, from the TokenRequest API)
	// as the client assertion (RFC 7523 section 2.2), for identity
	// providers that trust the cluster's service-account issuer (federated
	// client authentication, workload identity federation). No secret is
	// stored or sent.
	AuthMethodServiceAccountAssertion AuthMethod = "ServiceAccountAssertion"
	// AuthMethodNone sends no client authentication (a public client), only
	// the client id when one is set: for token exchanges whose subject
	// token is all the endpoint needs.
	AuthMethodNone AuthMethod = "None"
)

// HeaderValue is the value of an HTTP request header: one line.
// +kubebuilder:validation:MaxLength=4096
// +kubebuilder:validation:Pattern=`^[^\r\n]*$`
type HeaderValue string

// LabelValue is the value of a label: at most 63 characters of
// [-A-Za-z0-9_.], beginning and ending with a letter or digit, or empty.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
type LabelValue string

// AnnotationValue is the value of an annotation.
// +kubebuilder:validation:MaxLength=4096
type AnnotationValue string

// DataTemplate is a Go template rendering one key of the target Secret.
// +kubebuilder:validation:MaxLength=16384
type DataTemplate string

// Grant is the OAuth 2.0 grant used to obtain a token.
// +kubebuilder:validation:Enum=ClientCredentials;Password;TokenExchange
type Grant string

const (
	// GrantClientCredentials is the client-credentials grant (RFC 6749
	// section 4.4).
	GrantClientCredentials Grant = "ClientCredentials"
	// GrantPassword is the resource-owner password credentials grant (RFC
	// 6749 section 4.3), for providers that require it; username and
	// password come from the credentials Secret.
	GrantPassword Grant = "Password"
	// GrantTokenExchange is the token exchange of RFC 8693: a subject token
	// (the ServiceAccount's, or the token another OAuthClientToken holds)
	// is exchanged for the token written. See provider.tokenExchange.
	GrantTokenExchange Grant = "TokenExchange"
)

// RequestFormat is how the token request body is encoded.
// +kubebuilder:validation:Enum=Form;JSON
type RequestFormat string

const (
	// RequestFormatForm sends application/x-www-form-urlencoded (RFC 6749).
	RequestFormatForm RequestFormat = "Form"
	// RequestFormatJSON sends the same parameters as an application/json
	// object; repeated parameters (resources) become arrays.
	RequestFormatJSON RequestFormat = "JSON"
)

// ExpiryPolicy says what happens to an expired token that could not be
// renewed.
// +kubebuilder:validation:Enum=Keep;Clear
type ExpiryPolicy string

const (
	// ExpiryPolicyKeep leaves the expired token in the Secret (consumers
	// get the provider's 401 rather than a missing key).
	ExpiryPolicyKeep ExpiryPolicy = "Keep"
	// ExpiryPolicyClear removes the token's keys from the Secret at the
	// first failed renewal after expiry; they come back with the next token.
	ExpiryPolicyClear ExpiryPolicy = "Clear"
)

// CreationPolicy says how tokensync treats the target Secret.
// +kubebuilder:validation:Enum=Owner;Orphan;Merge
type CreationPolicy string

const (
	// CreationPolicyOwner creates the Secret with a controller ownerReference,
	// so it is garbage-collected with the OAuthClientToken. An existing Secret
	// that tokensync did not create is never taken over.
	CreationPolicyOwner CreationPolicy = "Owner"
	// CreationPolicyOrphan creates the Secret without an ownerReference: it
	// outlives the OAuthClientToken.
	CreationPolicyOrphan CreationPolicy = "Orphan"
	// CreationPolicyMerge writes tokensync's keys into an existing Secret
	// created by someone else, leaving its other keys alone.
	CreationPolicyMerge CreationPolicy = "Merge"
)

// Defaults applied by the controller (and, where shown, by the API server).
const (
	DefaultClientIDKey     = "client_id"
	DefaultClientSecretKey = "client_secret"
	DefaultUsernameKey     = "username"
	DefaultPasswordKey     = "password"
	DefaultPrivateKeyKey   = "private_key"
	DefaultCABundleKey     = "ca.crt"
	DefaultTimeoutSeconds  = 10
	DefaultLifetimeSeconds = 3600
)

// Keys written into the target Secret.
const (
	AccessTokenKey = "access_token"
	TokenTypeKey   = "token_type"
	ExpiresAtKey   = "expires_at"
)

// AllowTokenRequestsAnnotation must be "true" on a ServiceAccount for
// tokensync to request tokens for it: naming a ServiceAccount in an
// OAuthClientToken does not by itself let anyone mint its tokens.
const AllowTokenRequestsAnnotation = "oauth.tokensync.io/allow-token-requests"

// ServiceAccountCredential names a ServiceAccount of the object's namespace
// whose tokens, obtained from the TokenRequest API, are the credential: as
// the client assertion (authMethod ServiceAccountAssertion) or the subject
// of a token exchange (grant TokenExchange). The ServiceAccount must carry
// the annotation oauth.tokensync.io/allow-token-requests: "true".
type ServiceAccountCredential struct {
	// name of the ServiceAccount, in the OAuthClientToken's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// audience of the ServiceAccount token (its aud claim). Defaults to
	// provider.tokenURL, or provider.issuerURL when that is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`

	// expirationSeconds is the lifetime asked for the ServiceAccount token:
	// at least 600 (the API server's minimum), at most 86400. Defaults to
	// 600. A token exchanged for it is renewed before it expires.
	// +optional
	// +kubebuilder:validation:Minimum=600
	// +kubebuilder:validation:Maximum=86400
	ExpirationSeconds *int64 `json:"expirationSeconds,omitempty"`
}

// TokenExchangeSpec configures grant TokenExchange (RFC 8693).
type TokenExchangeSpec struct {
	// subjectTokenRef names another OAuthClientToken of this namespace whose
	// token (the access token its target Secret holds) is the subject
	// token: a chained exchange. When unset, the subject token is the
	// ServiceAccount token of spec.serviceAccount.
	// +optional
	SubjectTokenRef *LocalObjectReference `json:"subjectTokenRef,omitempty"`

	// subjectTokenType is sent as subject_token_type. Defaults to
	// urn:ietf:params:oauth:token-type:jwt for a ServiceAccount token and
	// urn:ietf:params:oauth:token-type:access_token for another object's.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[\x21-\x7E]+$`
	SubjectTokenType string `json:"subjectTokenType,omitempty"`

	// requestedTokenType is sent as requested_token_type when set.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[\x21-\x7E]+$`
	RequestedTokenType string `json:"requestedTokenType,omitempty"`
}

// LocalObjectReference names an object of the OAuthClientToken's namespace.
type LocalObjectReference struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// CredentialsReference names the Secret holding the OAuth client credentials.
// The Secret is always read from the namespace of the OAuthClientToken.
type CredentialsReference struct {
	// name is the name of the Secret, in the OAuthClientToken's namespace,
	// that holds the client id and client secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// clientIDKey is the key of the client id in the Secret's data.
	// +optional
	// +kubebuilder:default=client_id
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	ClientIDKey string `json:"clientIDKey,omitempty"`

	// clientSecretKey is the key of the client secret in the Secret's data.
	// +optional
	// +kubebuilder:default=client_secret
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	ClientSecretKey string `json:"clientSecretKey,omitempty"`

	// usernameKey is the key of the resource owner's username, read only
	// with provider.grant Password.
	// +optional
	// +kubebuilder:default=username
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	UsernameKey string `json:"usernameKey,omitempty"`

	// passwordKey is the key of the resource owner's password, read only
	// with provider.grant Password.
	// +optional
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`

	// privateKeyKey is the key of the PEM private key (PKCS#8, PKCS#1 or
	// SEC1; RSA of at least 2048 bits, ECDSA or Ed25519) that signs client
	// assertions, read only with provider.authMethod PrivateKeyJWT.
	// +optional
	// +kubebuilder:default=private_key
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PrivateKeyKey string `json:"privateKeyKey,omitempty"`
}

// KeySelector selects a key of a Secret or ConfigMap in the
// OAuthClientToken's namespace.
type KeySelector struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the object's data. Defaults to ca.crt.
	// +optional
	// +kubebuilder:default=ca.crt
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// CABundleSource names PEM CA certificates to trust for the token endpoint
// (and discovery), instead of the system roots.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.configMapRef)",message="set exactly one of secretRef and configMapRef"
type CABundleSource struct {
	// secretRef selects the CA bundle from a Secret.
	// +optional
	SecretRef *KeySelector `json:"secretRef,omitempty"`

	// configMapRef selects the CA bundle from a ConfigMap.
	// +optional
	ConfigMapRef *KeySelector `json:"configMapRef,omitempty"`
}

// LocalSecretReference names a Secret in the OAuthClientToken's namespace.
type LocalSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// TLSSpec configures TLS towards the token endpoint. TLS 1.2 is the minimum
// and certificates are always verified.
type TLSSpec struct {
	// caBundle, when set, replaces the system roots with these CAs (for
	// endpoints behind a private CA).
	// +optional
	CABundle *CABundleSource `json:"caBundle,omitempty"`

	// clientCertificateSecretRef names a kubernetes.io/tls Secret (tls.crt,
	// tls.key) whose certificate is presented to the endpoint: mutual TLS,
	// required by authMethod TLSClientAuth and usable with any other method.
	// +optional
	ClientCertificateSecretRef *LocalSecretReference `json:"clientCertificateSecretRef,omitempty"`
}

// ClientAssertionSpec configures the signed client assertion of authMethod
// PrivateKeyJWT.
type ClientAssertionSpec struct {
	// signingAlgorithm is the JWS algorithm. Defaults to the key's: RS256
	// for RSA, ES256/ES384/ES512 for P-256/P-384/P-521, EdDSA for Ed25519.
	// +optional
	// +kubebuilder:validation:Enum=RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
	SigningAlgorithm string `json:"signingAlgorithm,omitempty"`

	// keyID is sent as the kid header, for providers that hold several keys.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	KeyID string `json:"keyID,omitempty"`

	// audience is the aud claim. Defaults to the token endpoint URL; some
	// providers want the issuer URL instead.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`
}

// ResponseFields locate the token fields in a non-standard response body.
// Each is a dot-separated path of object keys from the top of the JSON body,
// e.g. data.access_token. Unset fields use the RFC 6749 name at the top.
type ResponseFields struct {
	// accessToken is the path of the access token.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	AccessToken string `json:"accessToken,omitempty"`

	// tokenType is the path of the token type.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	TokenType string `json:"tokenType,omitempty"`

	// expiresIn is the path of the lifetime in seconds.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	ExpiresIn string `json:"expiresIn,omitempty"`

	// refreshToken is the path of the refresh token.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	RefreshToken string `json:"refreshToken,omitempty"`

	// refreshExpiresIn is the path of the refresh token's lifetime in seconds.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	RefreshExpiresIn string `json:"refreshExpiresIn,omitempty"`

	// scope is the path of the granted scope.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	Scope string `json:"scope,omitempty"`

	// idToken is the path of the ID token.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	IDToken string `json:"idToken,omitempty"`
}

// ProviderSpec describes the token endpoint and the dialect it speaks.
// +kubebuilder:validation:XValidation:rule="has(self.tokenURL) != has(self.issuerURL)",message="set exactly one of tokenURL and issuerURL"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAssertion) || self.authMethod == 'PrivateKeyJWT'",message="clientAssertion is only used with authMethod PrivateKeyJWT"
// +kubebuilder:validation:XValidation:rule="self.authMethod != 'TLSClientAuth' || (has(self.tls) && has(self.tls.clientCertificateSecretRef))",message="authMethod TLSClientAuth needs tls.clientCertificateSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.tokenExchange) || self.grant == 'TokenExchange'",message="tokenExchange is only used with grant TokenExchange"
type ProviderSpec struct {
	// tokenURL is the absolute URL of the token endpoint, path parameters
	// included (e.g. https://api.example.com/auth/brands/liberty/token); it
	// is used exactly as written. It must use https; plain http is accepted
	// by the API but refused by a manager that was not started with
	// --allow-insecure-http (meant for local testing only). Exactly one of
	// tokenURL and issuerURL is set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHost() != ''",message="tokenURL must be an absolute https URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[^:/?#]+://[^/?#]*@')",message="tokenURL must not contain user information; put credentials in the credentials Secret"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="tokenURL must not contain a fragment"
	TokenURL string `json:"tokenURL,omitempty"`

	// issuerURL is the issuer whose discovery document names the token
	// endpoint: {issuerURL}/.well-known/openid-configuration (OpenID Connect
	// Discovery), then the RFC 8414 /.well-known/oauth-authorization-server
	// document. The document is cached for an hour and the endpoint found is
	// shown in status.tokenEndpoint. Exactly one of tokenURL and issuerURL is
	// set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHost() != ''",message="issuerURL must be an absolute https URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[^:/?#]+://[^/?#]*@')",message="issuerURL must not contain user information; put credentials in the credentials Secret"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="issuerURL must not contain a fragment"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?')",message="issuerURL must not contain a query"
	IssuerURL string `json:"issuerURL,omitempty"`

	// grant is the OAuth 2.0 grant: ClientCredentials (default) or Password
	// (resource-owner password credentials, with usernameKey and passwordKey
	// read from the credentials Secret).
	// +optional
	// +kubebuilder:default=ClientCredentials
	Grant Grant `json:"grant,omitempty"`

	// grantType is the literal grant_type value sent. Defaults to the
	// standard value of grant (client_credentials or password); set it for
	// providers that document another spelling, e.g. CLIENT_CREDENTIALS.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[\x21-\x7E]+$`
	GrantType string `json:"grantType,omitempty"`

	// refreshGrantType is the literal grant_type value sent when renewing
	// with a refresh token. Defaults to refresh_token.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[\x21-\x7E]+$`
	RefreshGrantType string `json:"refreshGrantType,omitempty"`

	// requestFormat is how the request body is encoded: Form
	// (application/x-www-form-urlencoded, the default) or JSON
	// (application/json with the same parameters).
	// +optional
	// +kubebuilder:default=Form
	RequestFormat RequestFormat `json:"requestFormat,omitempty"`

	// authMethod is how the client authenticates: Auto (Basic first, then
	// body credentials if the endpoint refuses Basic), ClientSecretBasic,
	// ClientSecretPost, PrivateKeyJWT (a client assertion signed with the
	// private key in the credentials Secret) or TLSClientAuth (the client
	// certificate of tls.clientCertificateSecretRef).
	// +optional
	// +kubebuilder:default=Auto
	AuthMethod AuthMethod `json:"authMethod,omitempty"`

	// clientAssertion configures authMethod PrivateKeyJWT.
	// +optional
	ClientAssertion *ClientAssertionSpec `json:"clientAssertion,omitempty"`

	// scopes are requested in the space-delimited scope parameter. When empty,
	// no scope parameter is sent and the endpoint grants its default scopes.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// audience is sent as the audience form parameter when set.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`

	// resources are sent as repeated resource parameters (RFC 8707 resource
	// indicators): absolute URIs without a fragment.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:XValidation:rule="isURL(self) && !self.contains('#')",message="each resource must be an absolute URI without a fragment"
	Resources []string `json:"resources,omitempty"`

	// extraParams are extra form parameters sent with every token request.
	// They must not carry secrets (they are visible to anyone who can read
	// this object) and must not override the parameters tokensync sets.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() > 0 && !(k in ['grant_type', 'client_id', 'client_secret', 'scope', 'audience', 'resource', 'username', 'password', 'refresh_token', 'client_assertion', 'client_assertion_type']))",message="extraParams must not set grant_type, client_id, client_secret, scope, audience, resource, username, password, refresh_token or client assertions; use the dedicated fields"
	ExtraParams map[string]string `json:"extraParams,omitempty"`

	// headers are extra HTTP headers sent with every token (and discovery)
	// request. They must not carry secrets (they are visible to anyone who
	// can read this object) and must not replace the headers tokensync sets.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[!#$%&\\'*+.^_|~0-9A-Za-z-]+$'))",message="header names must be HTTP tokens"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k.lowerAscii() in ['authorization', 'proxy-authorization', 'cookie', 'content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'host', 'connection', 'accept', 'te', 'upgrade', 'expect', 'keep-alive', 'trailer', 'dpop']))",message="headers must not set Authorization, Cookie, Content-Type, Content-Length, Host, Accept or hop-by-hop headers"
	Headers map[string]HeaderValue `json:"headers,omitempty"`

	// responseFields locate the token in non-standard response bodies, e.g.
	// accessToken: data.access_token.
	// +optional
	ResponseFields *ResponseFields `json:"responseFields,omitempty"`

	// tls configures a private CA and a client certificate (mutual TLS).
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// clientID is the client id, for clients with no credentials Secret
	// (authMethod ServiceAccountAssertion or None). It is not a secret. A
	// credentials Secret's client id, when there is one, takes precedence.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[\x20-\x7E]+$`
	ClientID string `json:"clientID,omitempty"`

	// tokenExchange configures grant TokenExchange.
	// +optional
	TokenExchange *TokenExchangeSpec `json:"tokenExchange,omitempty"`

	// timeout bounds each token request. Defaults to 10s; at most 5m.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('5m')",message="timeout must be positive and at most 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// TargetSpec describes the Secret the token is written to.
type TargetSpec struct {
	// name of the Secret, in the OAuthClientToken's namespace. Defaults to
	// the OAuthClientToken's name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`

	// creationPolicy is Owner (create the Secret with a controller
	// ownerReference so it is deleted with this object; never take over a
	// Secret tokensync did not create), Orphan (create it without an
	// ownerReference) or Merge (write tokensync's keys into an existing
	// Secret owned by someone else).
	// +optional
	// +kubebuilder:default=Owner
	CreationPolicy CreationPolicy `json:"creationPolicy,omitempty"`

	// type of the Secret when tokensync creates it. Defaults to Opaque.
	// Ignored with creationPolicy Merge.
	// +optional
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=253
	Type corev1.SecretType `json:"type,omitempty"`

	// labels are copied onto the Secret. Keys under oauth.tokensync.io/ are
	// tokensync's own and refused. Labels removed from the spec are removed
	// from the Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && k.size() <= 317)",message="label keys must be qualified names"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('oauth.tokensync.io/'))",message="label keys under oauth.tokensync.io/ are reserved for tokensync"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// annotations are copied onto the Secret. Keys under
	// oauth.tokensync.io/ are tokensync's own and refused. Annotations
	// removed from the spec are removed from the Secret.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && k.size() <= 317)",message="annotation keys must be qualified names"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('oauth.tokensync.io/'))",message="annotation keys under oauth.tokensync.io/ are reserved for tokensync"
	Annotations map[string]AnnotationValue `json:"annotations,omitempty"`

	// expiryPolicy is what happens when the token expires and renewal keeps
	// failing: Keep (default) leaves the stale token in the Secret, Clear
	// removes the token's keys until a new token is obtained. Ready is
	// False with reason TokenExpired either way.
	// +optional
	// +kubebuilder:default=Keep
	ExpiryPolicy ExpiryPolicy `json:"expiryPolicy,omitempty"`

	// data, when set, replaces the default keys (access_token, token_type,
	// expires_at) with these keys, each rendered from a Go template over the
	// token: {{ .AccessToken }}, {{ .TokenType }}, {{ .ExpiresAt }} (RFC
	// 3339), {{ .ExpiresIn }} (seconds), {{ .Scope }}, {{ .IDToken }},
	// {{ .RefreshExpiresIn }} (seconds) and {{ .RefreshToken }} (the
	// refresh token is written only where a template asks for it).
	// Functions: b64enc, b64dec, json (a JSON string literal), quote, trim,
	// lower, upper, and text/template's printf, print, if, with, eq and the
	// like. A template renders one token: range, template, define, block
	// and variables are refused. Each key renders at most 256 KiB and all
	// keys together 512 KiB. A template that does not parse, names an
	// unknown field or renders too much sets Stalled with reason
	// InvalidTemplate. Editing a rendered key gets a new token, since the
	// token itself is not kept elsewhere.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[-._a-zA-Z0-9]+$') && k.size() <= 253)",message="data keys must be valid Secret keys"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].split('{{').size() == self[k].split('}}').size())",message="unbalanced template delimiters: every {{ needs a matching }}"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !self[k].matches('[{][{]-?[[:space:]]*(range|template|define|block|break|continue)([^A-Za-z0-9_]|$)|[{][{][^}]*[$][A-Za-z0-9_]*[[:space:]]*:?='))",message="templates render one token: range, template, define, block and variables are not allowed"
	Data map[string]DataTemplate `json:"data,omitempty"`
}

// RefreshSpec controls when a token is renewed.
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore) < (has(self.defaultLifetime) ? duration(self.defaultLifetime) : duration('1h'))",message="renewBefore must be smaller than defaultLifetime"
type RefreshSpec struct {
	// renewBefore is how long before expiry the token is renewed. When unset,
	// the token is renewed once 2/3 of its lifetime has passed. When it is not
	// smaller than a token's actual lifetime, the 2/3 rule applies instead.
	// At most 8760h (a year).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('8760h')",message="renewBefore must be positive and at most 8760h"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// defaultLifetime is assumed when the token endpoint does not say how long
	// a token lives (no expires_in). Defaults to 1h; at most 8760h (a year).
	// Editing it moves the expiry and renewal time of a token whose
	// lifetime it set, with no new token unless the new renewal time has
	// passed.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('8760h')",message="defaultLifetime must be positive and at most 8760h"
	DefaultLifetime *metav1.Duration `json:"defaultLifetime,omitempty"`

	// useRefreshToken, when the endpoint returns a refresh_token, renews with
	// the refresh_token grant while the refresh token is valid. A refresh
	// token the endpoint refuses, for any reason, is dropped and never sent
	// again, and the primary grant is used in the same reconcile. The
	// refresh token is kept in a tokensync-owned state Secret named
	// <target>-tokensync-state, not in the target Secret. Defaults to true
	// with provider.grant Password and to false with ClientCredentials (RFC
	// 6749 section 4.4.3: that grant should issue none, and keeping one
	// adds a long-lived credential for nothing).
	// +optional
	UseRefreshToken *bool `json:"useRefreshToken,omitempty"`
}

// ProviderReference names the OAuthProvider (of the object's namespace) or
// ClusterOAuthProvider whose endpoint and credentials obtain the token, and
// what to ask it for, within what the provider allows.
type ProviderReference struct {
	// kind is OAuthProvider (in the object's namespace) or
	// ClusterOAuthProvider.
	// +required
	Kind ProviderKind `json:"kind"`

	// name of the provider.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// scopes replace the provider's scopes; each must be in the provider's
	// allowed.scopes (by default, its own scopes). Defaults to the
	// provider's scopes.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// audience replaces the provider's audience; it must be in the
	// provider's allowed.audiences (by default, its own audience).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`

	// resources replace the provider's resources; each must be in the
	// provider's allowed.resources (by default, its own resources).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=2048
	Resources []string `json:"resources,omitempty"`
}

// OAuthClientTokenSpec defines the desired state of OAuthClientToken.
// +kubebuilder:validation:XValidation:rule="has(self.provider) != has(self.providerRef)",message="set exactly one of provider and providerRef"
// +kubebuilder:validation:XValidation:rule="!has(self.providerRef) || (!has(self.credentialsRef) && !has(self.serviceAccount))",message="with providerRef, the credentials are the provider's: credentialsRef and serviceAccount must not be set"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || has(self.credentialsRef) || self.provider.authMethod in ['ServiceAccountAssertion', 'None']",message="credentialsRef is required, except with authMethod ServiceAccountAssertion or None"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || has(self.serviceAccount) || (self.provider.authMethod != 'ServiceAccountAssertion' && (self.provider.grant != 'TokenExchange' || (has(self.provider.tokenExchange) && has(self.provider.tokenExchange.subjectTokenRef))))",message="serviceAccount is required with authMethod ServiceAccountAssertion, and with grant TokenExchange unless tokenExchange.subjectTokenRef is set"
type OAuthClientTokenSpec struct {
	// credentialsRef names the Secret holding the client credentials.
	// Required, except with authMethod ServiceAccountAssertion or None.
	// +optional
	CredentialsRef *CredentialsReference `json:"credentialsRef,omitempty"`

	// serviceAccount names a ServiceAccount whose tokens are the
	// credential, with no secret stored: the client assertion of authMethod
	// ServiceAccountAssertion, or the subject of grant TokenExchange.
	// +optional
	ServiceAccount *ServiceAccountCredential `json:"serviceAccount,omitempty"`

	// provider describes the token endpoint, inline. Exactly one of
	// provider and providerRef is set; a manager started with
	// --require-provider-ref refuses inline providers (in all namespaces
	// or outside a list).
	// +optional
	Provider ProviderSpec `json:"provider,omitzero"`

	// providerRef names an OAuthProvider or ClusterOAuthProvider that
	// holds the endpoint and the client credentials, instead of provider
	// and credentialsRef. Exactly one of provider and providerRef is set.
	// +optional
	ProviderRef *ProviderReference `json:"providerRef,omitempty"`

	// target describes the Secret the token is written to.
	// +optional
	Target *TargetSpec `json:"target,omitempty"`

	// refresh controls renewal timing.
	// +optional
	Refresh *RefreshSpec `json:"refresh,omitempty"`

	// rolloutRestartTargets names workloads in this namespace that read the
	// token from environment variables, which do not change in a running
	// pod. After each token rotation tokensync sets the
	// oauth.tokensync.io/restarted-at annotation of their pod template to
	// the new token's issue time, so they roll out new pods. The first token
	// restarts nothing. Needs RBAC that the default install does not grant:
	// patch on deployments, statefulsets and daemonsets (see
	// config/rollout-restart).
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	RolloutRestartTargets []RolloutRestartTarget `json:"rolloutRestartTargets,omitempty"`
}

// RolloutKind is a kind of workload rolloutRestartTargets can restart.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
type RolloutKind string

// Workload kinds rolloutRestartTargets can name.
const (
	RolloutKindDeployment  RolloutKind = "Deployment"
	RolloutKindStatefulSet RolloutKind = "StatefulSet"
	RolloutKindDaemonSet   RolloutKind = "DaemonSet"
)

// RolloutRestartTarget names a workload (apps/v1) in the object's namespace.
type RolloutRestartTarget struct {
	// kind is Deployment, StatefulSet or DaemonSet.
	// +required
	Kind RolloutKind `json:"kind"`

	// name is the workload's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// OAuthClientTokenStatus defines the observed state of OAuthClientToken.
// It never contains a token or a client secret.
type OAuthClientTokenStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// It is -1 until the controller has reconciled the object once.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions follow the kstatus conventions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// secretName is the name of the Secret holding the token.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// tokenEndpoint is the token endpoint in use: tokenURL, or the endpoint
	// discovered from issuerURL.
	// +optional
	TokenEndpoint string `json:"tokenEndpoint,omitempty"`

	// lastGrant is the grant_type value of the last successful token
	// request, e.g. client_credentials or refresh_token.
	// +optional
	LastGrant string `json:"lastGrant,omitempty"`

	// issuedTokenType is the issued_token_type of the last token exchange
	// (RFC 8693), e.g. urn:ietf:params:oauth:token-type:access_token.
	// +optional
	IssuedTokenType string `json:"issuedTokenType,omitempty"`

	// tokenType is the token type the endpoint returned, e.g. Bearer.
	// +optional
	TokenType string `json:"tokenType,omitempty"`

	// scopes are the scopes the endpoint granted, when it said.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`

	// issuedAt is when the current token was obtained.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is when the current token expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// renewAt is when the controller will request the next token.
	// +optional
	RenewAt *metav1.Time `json:"renewAt,omitempty"`

	// lastHandledRefreshRequest is the value of the
	// oauth.tokensync.io/refresh-requested-at annotation that last forced a
	// new token. A new value forces one more.
	// +optional
	LastHandledRefreshRequest string `json:"lastHandledRefreshRequest,omitempty"`

	// lastFailureTime is when the last failed attempt happened. Cleared on
	// success.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// failedAttempts counts consecutive failed attempts. Cleared on success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// rolloutRestartedFor is the issue time of the token the
	// rolloutRestartTargets were last restarted for (or found running with
	// when they were first named). A rotation to a token issued at another
	// time restarts them.
	// +optional
	RolloutRestartedFor *metav1.Time `json:"rolloutRestartedFor,omitempty"`

	// lastRolloutRestart is when the rolloutRestartTargets were last
	// restarted. They are restarted at most once per the manager's
	// --min-rollout-restart-interval, however often the token rotates.
	// +optional
	LastRolloutRestart *metav1.Time `json:"lastRolloutRestart,omitempty"`
}

// OAuthClientToken keeps an OAuth 2.0 access token, obtained with the
// client-credentials grant (or the password grant), fresh in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oct,categories=tokensync
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renew At",type=string,JSONPath=`.status.renewAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.credentialsRef) || self.spec.credentialsRef.name != (has(self.spec.target) && has(self.spec.target.name) ? self.spec.target.name : self.metadata.name)",message="the target Secret must not be the credentials Secret"
// +kubebuilder:validation:XValidation:rule="!(has(self.spec.target) && has(self.spec.target.name) ? self.spec.target.name : self.metadata.name).endsWith('-tokensync-state')",message="the target Secret's name must not end in -tokensync-state: tokensync keeps refresh tokens in Secrets so named"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.provider) || !has(self.spec.provider.tokenExchange) || !has(self.spec.provider.tokenExchange.subjectTokenRef) || self.spec.provider.tokenExchange.subjectTokenRef.name != self.metadata.name",message="provider.tokenExchange.subjectTokenRef must name another OAuthClientToken: an exchange of its own token would renew itself forever"
type OAuthClientToken struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec OAuthClientTokenSpec `json:"spec"`

	// status is the observed state.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status OAuthClientTokenStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// OAuthClientTokenList contains a list of OAuthClientToken.
type OAuthClientTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClientToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OAuthClientToken{}, &OAuthClientTokenList{})
}

// TargetName is the name of the target Secret, defaulted.
func (o *OAuthClientToken) TargetName() string {
	if o.Spec.Target != nil && o.Spec.Target.Name != "" {
		return o.Spec.Target.Name
	}
	return o.Name
}

// GetConditions returns the status conditions.
func (o *OAuthClientToken) GetConditions() []metav1.Condition { return o.Status.Conditions }

// SetConditions sets the status conditions.
func (o *OAuthClientToken) SetConditions(c []metav1.Condition) { o.Status.Conditions = c }
