package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthMethod is how the client authenticates to the token endpoint.
// +kubebuilder:validation:Enum=Auto;ClientSecretBasic;ClientSecretPost
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
	DefaultTimeoutSeconds  = 10
	DefaultLifetimeSeconds = 3600
)

// Keys written into the target Secret.
const (
	AccessTokenKey = "access_token"
	TokenTypeKey   = "token_type"
	ExpiresAtKey   = "expires_at"
)

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
}

// ProviderSpec describes the token endpoint and the dialect it speaks.
type ProviderSpec struct {
	// tokenURL is the absolute URL of the token endpoint. It must use https;
	// plain http is accepted by the API but refused by a manager that was not
	// started with --allow-insecure-http (meant for local testing only).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHost() != ''",message="tokenURL must be an absolute https URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[^:/?#]+://[^/?#]*@')",message="tokenURL must not contain user information; put credentials in the credentials Secret"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="tokenURL must not contain a fragment"
	TokenURL string `json:"tokenURL"`

	// authMethod is how the client authenticates: Auto (Basic first, then
	// body credentials if the endpoint refuses Basic), ClientSecretBasic or
	// ClientSecretPost.
	// +optional
	// +kubebuilder:default=Auto
	AuthMethod AuthMethod `json:"authMethod,omitempty"`

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

	// extraParams are extra form parameters sent with every token request.
	// They must not carry secrets (they are visible to anyone who can read
	// this object) and must not override the parameters tokensync sets.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() > 0 && !(k in ['grant_type', 'client_id', 'client_secret', 'scope', 'audience', 'client_assertion', 'client_assertion_type']))",message="extraParams must not set grant_type, client_id, client_secret, scope, audience or client assertions; use the dedicated fields"
	ExtraParams map[string]string `json:"extraParams,omitempty"`

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

	// labels are copied onto the Secret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are copied onto the Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RefreshSpec controls when a token is renewed.
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore) < (has(self.defaultLifetime) ? duration(self.defaultLifetime) : duration('1h'))",message="renewBefore must be smaller than defaultLifetime"
type RefreshSpec struct {
	// renewBefore is how long before expiry the token is renewed. When unset,
	// the token is renewed once 2/3 of its lifetime has passed. When it is not
	// smaller than a token's actual lifetime, the 2/3 rule applies instead.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="renewBefore must be positive"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// defaultLifetime is assumed when the token endpoint does not say how long
	// a token lives (no expires_in). Defaults to 1h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="defaultLifetime must be positive"
	DefaultLifetime *metav1.Duration `json:"defaultLifetime,omitempty"`
}

// OAuthClientTokenSpec defines the desired state of OAuthClientToken.
type OAuthClientTokenSpec struct {
	// credentialsRef names the Secret holding the client credentials.
	// +required
	CredentialsRef CredentialsReference `json:"credentialsRef"`

	// provider describes the token endpoint.
	// +required
	Provider ProviderSpec `json:"provider"`

	// target describes the Secret the token is written to.
	// +optional
	Target *TargetSpec `json:"target,omitempty"`

	// refresh controls renewal timing.
	// +optional
	Refresh *RefreshSpec `json:"refresh,omitempty"`
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

	// lastFailureTime is when the last failed attempt happened. Cleared on
	// success.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// failedAttempts counts consecutive failed attempts. Cleared on success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`
}

// OAuthClientToken keeps an OAuth 2.0 access token, obtained with the
// client-credentials grant, fresh in a Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oct,categories=tokensync
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renew At",type=string,JSONPath=`.status.renewAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:validation:XValidation:rule="self.spec.credentialsRef.name != (has(self.spec.target) && has(self.spec.target.name) ? self.spec.target.name : self.metadata.name)",message="the target Secret must not be the credentials Secret"
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
