package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TokenSharing says whether the objects that use a provider with the same
// client, grant, scopes, audience and resources share one token.
// +kubebuilder:validation:Enum=PerObject;Shared
type TokenSharing string

const (
	// TokenSharingPerObject obtains a token for each OAuthClientToken.
	TokenSharingPerObject TokenSharing = "PerObject"
	// TokenSharingShared obtains one token for all the OAuthClientTokens
	// that resolve to the same provider, client, grant, scopes, audience
	// and resources, and writes it into each of their Secrets: one token
	// request per lifetime, whatever their number. Every namespace that
	// shares it holds the same token.
	TokenSharingShared TokenSharing = "Shared"
)

// ProviderKind is the kind of provider an OAuthClientToken references.
// +kubebuilder:validation:Enum=OAuthProvider;ClusterOAuthProvider
type ProviderKind string

const (
	// ProviderKindNamespaced is an OAuthProvider of the object's namespace.
	ProviderKindNamespaced ProviderKind = "OAuthProvider"
	// ProviderKindCluster is a ClusterOAuthProvider.
	ProviderKindCluster ProviderKind = "ClusterOAuthProvider"
)

// AllowedRequests is what an OAuthClientToken referencing a provider may ask
// for. Each list, when unset, allows only what the provider's own spec
// requests.
type AllowedRequests struct {
	// scopes an object may request (providerRef.scopes must be a subset).
	// Defaults to the provider's scopes.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// audiences an object may request as providerRef.audience. Defaults to
	// the provider's audience.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=2048
	Audiences []string `json:"audiences,omitempty"`

	// resources an object may request (providerRef.resources must be a
	// subset). Defaults to the provider's resources.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=2048
	Resources []string `json:"resources,omitempty"`
}

// OAuthProviderSpec is a token endpoint, its dialect, TLS and client
// credentials, defined once by a platform team. It carries every field of
// an OAuthClientToken's spec.provider (the same Go type, inlined), plus the
// credentials and the policy of who may ask for what. The rules of
// ProviderSpec apply as they do inline.
// +kubebuilder:validation:XValidation:rule="self.grant != 'TokenExchange' && !has(self.tokenExchange) && self.authMethod != 'ServiceAccountAssertion'",message="providers support grants ClientCredentials and Password and no ServiceAccount credentials; use an inline spec.provider for token exchange and ServiceAccountAssertion"
// +kubebuilder:validation:XValidation:rule="has(self.credentialsRef) || self.authMethod == 'None'",message="credentialsRef is required, except with authMethod None"
type OAuthProviderSpec struct {
	ProviderSpec `json:",inline"`

	// credentialsRef names the Secret holding the client credentials: in
	// the OAuthProvider's namespace, or, for a ClusterOAuthProvider, in the
	// manager's --cluster-provider-namespace (by default the manager's own
	// namespace), which only the platform team controls.
	// +optional
	CredentialsRef *CredentialsReference `json:"credentialsRef,omitempty"`

	// allowed is what a referencing OAuthClientToken may ask for in
	// providerRef.scopes, audience and resources. By default, only what
	// this spec requests.
	// +optional
	Allowed *AllowedRequests `json:"allowed,omitempty"`

	// tokenSharing is PerObject (default: a token per OAuthClientToken) or
	// Shared (one token for every object that resolves to this provider
	// with the same scopes, audience and resources, written into each of
	// their Secrets, so one token request per lifetime). With Shared,
	// every sharing namespace holds the same token, and refresh tokens
	// are not used.
	// +optional
	// +kubebuilder:default=PerObject
	TokenSharing TokenSharing `json:"tokenSharing,omitempty"`
}

// NamespaceCondition selects namespaces: those matching namespaceSelector
// or named in namespaces.
type NamespaceCondition struct {
	// namespaceSelector selects namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// namespaces names namespaces.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`
}

// ClusterOAuthProviderSpec is an OAuthProviderSpec usable from the
// namespaces its conditions select.
type ClusterOAuthProviderSpec struct {
	OAuthProviderSpec `json:",inline"`

	// conditions say which namespaces may reference this provider: a
	// namespace is allowed when it matches one of them (a condition
	// matches the namespaces its namespaceSelector selects and those it
	// names). When unset, every namespace may. A namespace whose labels
	// change is judged again at its objects' next reconcile.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:XValidation:rule="has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)",message="a condition needs a namespaceSelector or namespaces"
	Conditions []NamespaceCondition `json:"conditions,omitempty"`
}

// OAuthProviderStatus is the observed state of a provider. It never
// contains a secret.
type OAuthProviderStatus struct {
	// observedGeneration is the generation of the spec the status
	// describes. It is -1 until the controller has looked at the object.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions follow the kstatus conventions: Ready, Reconciling,
	// Stalled. Ready is True when the token endpoint is known (discovery
	// succeeded) and the credentials Secret exists with the keys needed.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// tokenEndpoint is the token endpoint: tokenURL, or the one discovered
	// from issuerURL.
	// +optional
	TokenEndpoint string `json:"tokenEndpoint,omitempty"`
}

// OAuthProvider is a token endpoint with its client credentials, defined
// once in a namespace and referenced by the OAuthClientTokens of that
// namespace (spec.providerRef).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=oap,categories=tokensync
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.tokenEndpoint`
// +kubebuilder:printcolumn:name="Sharing",type=string,JSONPath=`.spec.tokenSharing`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
type OAuthProvider struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec OAuthProviderSpec `json:"spec"`

	// status is the observed state.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status OAuthProviderStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// OAuthProviderList contains a list of OAuthProvider.
type OAuthProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthProvider `json:"items"`
}

// ClusterOAuthProvider is a token endpoint with its client credentials,
// defined once for the cluster by a platform team and referenced by the
// OAuthClientTokens of the namespaces its conditions select. Its
// credentials Secret lives in the manager's --cluster-provider-namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=coap,categories=tokensync
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.tokenEndpoint`
// +kubebuilder:printcolumn:name="Sharing",type=string,JSONPath=`.spec.tokenSharing`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
type ClusterOAuthProvider struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec ClusterOAuthProviderSpec `json:"spec"`

	// status is the observed state.
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status OAuthProviderStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterOAuthProviderList contains a list of ClusterOAuthProvider.
type ClusterOAuthProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterOAuthProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&OAuthProvider{}, &OAuthProviderList{}, &ClusterOAuthProvider{}, &ClusterOAuthProviderList{})
}

// GetConditions returns the status conditions.
func (p *OAuthProvider) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions sets the status conditions.
func (p *OAuthProvider) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// GetConditions returns the status conditions.
func (p *ClusterOAuthProvider) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions sets the status conditions.
func (p *ClusterOAuthProvider) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }
