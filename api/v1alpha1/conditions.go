package v1alpha1

// Condition types, following the kstatus conventions
// (https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md).
const (
	// ConditionReady is True while the target Secret holds an unexpired token
	// obtained for the current spec and credentials.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the controller is working towards
	// Ready: the first token request, or retries after transient errors.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the controller cannot make progress
	// without a human: wrong credentials, a refused scope, a conflicting
	// Secret. Ready is then False with the same reason.
	ConditionStalled = "Stalled"
)

// Condition reasons. They are part of the API: alerts and runbooks key on them.
const (
	// ReasonTokenReady (Ready=True): the Secret holds a valid token.
	ReasonTokenReady = "TokenReady"
	// ReasonTokenExpired (Ready=False, with Reconciling=True): renewal kept
	// failing until the token in the Secret expired. The stale token is kept
	// in the Secret; recovery is automatic once the endpoint answers.
	ReasonTokenExpired = "TokenExpired"

	// ReasonCredentialsNotFound (Stalled): the credentials Secret does not exist.
	ReasonCredentialsNotFound = "CredentialsNotFound"
	// ReasonCredentialsKeyMissing (Stalled): a key is missing or empty in the
	// credentials Secret. The message names the key.
	ReasonCredentialsKeyMissing = "CredentialsKeyMissing"
	// ReasonInvalidCredentials (Stalled): a value in the credentials Secret
	// cannot be used, such as a private key that does not parse.
	ReasonInvalidCredentials = "InvalidCredentials"
	// ReasonInvalidClient (Stalled): the endpoint answered invalid_client.
	ReasonInvalidClient = "InvalidClient"
	// ReasonInvalidScope (Stalled): the endpoint answered invalid_scope.
	ReasonInvalidScope = "InvalidScope"
	// ReasonUnauthorizedClient (Stalled): the endpoint answered
	// unauthorized_client (the client may not use this grant).
	ReasonUnauthorizedClient = "UnauthorizedClient"
	// ReasonTokenRequestRejected (Stalled): the endpoint refused the request
	// with another OAuth error or 4xx status (invalid_request,
	// unsupported_grant_type, invalid_grant, a redirect...).
	ReasonTokenRequestRejected = "TokenRequestRejected"
	// ReasonSecretConflict (Stalled): the target Secret exists and belongs to
	// someone else (a Secret tokensync did not create, with creationPolicy
	// Owner or Orphan), or another OAuthClientToken already writes it.
	ReasonSecretConflict = "SecretConflict"
	// ReasonTargetSecretNotFound (Stalled): creationPolicy is Merge and the
	// Secret to merge into does not exist yet.
	ReasonTargetSecretNotFound = "TargetSecretNotFound"
	// ReasonInsecureTokenURL (Stalled): the token URL uses plain http and the
	// manager was not started with --allow-insecure-http.
	ReasonInsecureTokenURL = "InsecureTokenURL"
	// ReasonTokenURLNotAllowed (Stalled): the token, issuer or discovered
	// URL names a host outside the manager's --token-url-allowlist, or a
	// link-local or cloud metadata address.
	ReasonTokenURLNotAllowed = "TokenURLNotAllowed"
	// ReasonInvalidSpec (Stalled): the spec cannot be used as written (a
	// check the API server could not make at admission).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInvalidTemplate (Stalled): a target.data template does not parse
	// or does not render (an unknown field). The message has the error.
	ReasonInvalidTemplate = "InvalidTemplate"
	// ReasonInteractionRequired (Stalled): the endpoint answered 401 with a
	// WWW-Authenticate challenge that asks for an interactive step (e.g.
	// Paysafe's SCA), or an OpenID Connect interaction_required error. A
	// person must complete it; tokensync does not retry in a loop.
	ReasonInteractionRequired = "InteractionRequired"
	// ReasonTLSConfigInvalid (Stalled): the CA bundle or client certificate
	// of provider.tls is missing or unusable.
	ReasonTLSConfigInvalid = "TLSConfigInvalid"
	// ReasonServiceAccountNotFound (Stalled): the ServiceAccount of
	// spec.serviceAccount does not exist.
	ReasonServiceAccountNotFound = "ServiceAccountNotFound"
	// ReasonServiceAccountNotAllowed (Stalled): the ServiceAccount does not
	// carry the annotation oauth.tokensync.io/allow-token-requests: "true",
	// or the TokenRequest API refused its token.
	ReasonServiceAccountNotAllowed = "ServiceAccountNotAllowed"
	// ReasonSubjectTokenNotReady (Reconciling): the OAuthClientToken whose
	// token is the subject of a chained exchange holds no valid token yet.
	// Retried when it gets one.
	ReasonSubjectTokenNotReady = "SubjectTokenNotReady"

	// ReasonTokenEndpointUnavailable (Reconciling): a transient failure
	// reaching the endpoint (timeout, connection refused, 5xx, 429). Retried
	// with exponential backoff that honours Retry-After.
	ReasonTokenEndpointUnavailable = "TokenEndpointUnavailable"
	// ReasonDiscoveryFailed (Reconciling or Stalled): the issuer's discovery
	// document could not be fetched or has no usable token_endpoint.
	// Reconciling and retried with backoff when transient (5xx, timeouts);
	// Stalled when it cannot succeed without a change (404, issuer
	// mismatch).
	ReasonDiscoveryFailed = "DiscoveryFailed"
	// ReasonInvalidTokenResponse (Reconciling): the endpoint answered 2xx with
	// a body that is not a usable token response. Retried with backoff.
	ReasonInvalidTokenResponse = "InvalidTokenResponse"
	// ReasonSecretWriteFailed (Reconciling): writing the target Secret failed.
	// Retried with backoff.
	ReasonSecretWriteFailed = "SecretWriteFailed"
	// ReasonSecretRejected (Stalled): the API server refuses the target
	// Secret the spec describes (for example a target.type other than the
	// existing Secret's, which is immutable, or labels it does not accept).
	// No token is requested until the spec changes; a token already
	// obtained is kept in memory and written once the spec is fixed.
	ReasonSecretRejected = "SecretRejected"
)

// Event reasons.
const (
	// EventTokenIssued: the first token was written to the Secret.
	EventTokenIssued = "TokenIssued"
	// EventTokenRotated: a new token replaced the previous one.
	EventTokenRotated = "TokenRotated"
	// EventTokenRequestFailed: an attempt failed (emitted when a failure
	// starts or its reason changes, not on every retry).
	EventTokenRequestFailed = "TokenRequestFailed"
	// EventTokenRecovered: a token was obtained after failures.
	EventTokenRecovered = "TokenRecovered"
	// EventRolloutRestarted: the rolloutRestartTargets were restarted after
	// a rotation.
	EventRolloutRestarted = "RolloutRestarted"
	// EventRolloutRestartFailed (Warning): a rolloutRestartTargets workload
	// could not be patched (e.g. RBAC not granted). Retried every minute;
	// the token itself is fine.
	EventRolloutRestartFailed = "RolloutRestartFailed"
	// EventRolloutRestartSkipped (Warning): a rolloutRestartTargets workload
	// does not exist; its pods, when created, read the new token anyway.
	EventRolloutRestartSkipped = "RolloutRestartSkipped"
	// EventRolloutRestartDeferred (Normal): a rolloutRestartTargets workload
	// was restarted less than --min-rollout-restart-interval ago (for this
	// object or another whose Secret it reads); it is restarted when the
	// interval has passed.
	EventRolloutRestartDeferred = "RolloutRestartDeferred"
)

// RestartedAtAnnotation is set on the pod template of each
// rolloutRestartTargets workload to the rotated token's issue time (RFC
// 3339), which rolls out new pods, as `kubectl rollout restart` does.
const RestartedAtAnnotation = "oauth.tokensync.io/restarted-at"

// LastRestartAnnotation is set on each rolloutRestartTargets workload
// itself (not its pod template, so setting it rolls nothing out) to the time
// tokensync last restarted it (RFC 3339). The manager's
// --min-rollout-restart-interval is kept per workload through it: a
// workload that reads the Secrets of several objects is still restarted at
// most once per interval.
const LastRestartAnnotation = "oauth.tokensync.io/last-restart"

// RefreshRequestedAnnotation, set on an OAuthClientToken to a new value
// (e.g. `date +%s`), forces a new token once per value:
//
//	kubectl annotate oct NAME oauth.tokensync.io/refresh-requested-at=$(date +%s) --overwrite
const RefreshRequestedAnnotation = "oauth.tokensync.io/refresh-requested-at"

// Labels and annotations tokensync puts on the Secrets it writes.
const (
	// ManagedLabel marks Secrets written by tokensync. The manager caches
	// only Secrets with this label.
	ManagedLabel = "oauth.tokensync.io/managed"
	// OwnerAnnotation names the OAuthClientToken (same namespace) that
	// writes the Secret.
	OwnerAnnotation = "oauth.tokensync.io/owner"
	// ConfigHashAnnotation is a digest of the inputs the current token was
	// obtained with (provider spec and credentials); a change means a new
	// token is due. It is a one-way SHA-256 digest, never the inputs.
	ConfigHashAnnotation = "oauth.tokensync.io/config-hash"
	// InputsVersionAnnotation is a digest of the provider spec, the
	// credentials reference and the resourceVersion of the credentials
	// Secret that ConfigHashAnnotation was computed from. While the
	// credentials Secret keeps that version, the config hash still holds
	// and a reconcile with nothing to do need not read the credentials.
	InputsVersionAnnotation = "oauth.tokensync.io/inputs-version"
	// TokenHashAnnotation is a SHA-256 digest of the access token written, so
	// that an edited token is detected and repaired.
	TokenHashAnnotation = "oauth.tokensync.io/token-hash"
	// TokenTypeAnnotation, IssuedAtAnnotation, ExpiresAtAnnotation and
	// RenewAtAnnotation record the token's type and timing on the Secret
	// itself, so that a restart or a lost status never forces a new token and
	// edited keys are repaired without one.
	TokenTypeAnnotation = "oauth.tokensync.io/token-type"
	IssuedAtAnnotation  = "oauth.tokensync.io/issued-at"
	ExpiresAtAnnotation = "oauth.tokensync.io/expires-at"
	RenewAtAnnotation   = "oauth.tokensync.io/renew-at"
	// DataHashAnnotation is a SHA-256 digest of the keys rendered from
	// target.data templates (and of the templates), set instead of
	// TokenHashAnnotation when templates are used.
	DataHashAnnotation = "oauth.tokensync.io/data-hash"
	// RefreshExpiresAtAnnotation records, on the state Secret, when the
	// refresh token expires (absent when the endpoint did not say).
	RefreshExpiresAtAnnotation = "oauth.tokensync.io/refresh-expires-at"
	// NotAfterAnnotation records, on a target Secret, the expiry of what a
	// token was obtained with (the subject of a token exchange): it is
	// renewed before then, whatever its own lifetime.
	NotAfterAnnotation = "oauth.tokensync.io/not-after"
	// StateOfAnnotation marks a state Secret with the name of the target
	// Secret it belongs to.
	StateOfAnnotation = "oauth.tokensync.io/state-of"
	// OriginAnnotation is "created" on Secrets tokensync created. Only they
	// may carry an OAuthClientToken's ownerReference; a Secret without it
	// that carries the managed label is one tokensync merged its keys into
	// (creationPolicy Merge), and is never taken over.
	OriginAnnotation = "oauth.tokensync.io/origin"
	// ExpirySourceAnnotation says where the recorded expiry came from:
	// "endpoint" (expires_in or the JWT's exp) or "default" (the endpoint
	// said nothing; the expiry follows refresh.defaultLifetime).
	ExpirySourceAnnotation = "oauth.tokensync.io/expiry-source"
	// SignatureAnnotation signs the record annotations (HMAC-SHA256 with a
	// key only the manager holds), so that editing them cannot make
	// tokensync trust a token, a time or a set of inputs it did not write.
	SignatureAnnotation = "oauth.tokensync.io/signature"
	// TargetHashAnnotation digests what the spec says about the Secret
	// besides the token (policy, type, labels, annotations); another value
	// makes tokensync apply the Secret again.
	TargetHashAnnotation = "oauth.tokensync.io/target-hash"
)

// Keys of the state Secret.
const (
	// RefreshTokenKey holds the refresh token in the state Secret.
	RefreshTokenKey = "refresh_token"
)

// Provider condition reasons (OAuthClientToken, with spec.providerRef).
const (
	// ReasonProviderNotFound (Stalled): the OAuthProvider or
	// ClusterOAuthProvider of spec.providerRef does not exist (or is being
	// deleted). A token already in the Secret is kept until it expires.
	ReasonProviderNotFound = "ProviderNotFound"
	// ReasonProviderNotAllowed (Stalled): the ClusterOAuthProvider's
	// conditions do not select the object's namespace.
	ReasonProviderNotAllowed = "ProviderNotAllowed"
	// ReasonScopeNotAllowed (Stalled): providerRef asks for scopes, an
	// audience or resources outside the provider's allowed list (by
	// default, what the provider itself requests).
	ReasonScopeNotAllowed = "ScopeNotAllowed"
	// ReasonInlineProviderRefused (Stalled): the manager runs with
	// --require-provider-ref and the object has an inline spec.provider in
	// a namespace not exempted from it.
	ReasonInlineProviderRefused = "InlineProviderRefused"
)

// Provider condition reasons (OAuthProvider and ClusterOAuthProvider).
const (
	// ReasonProviderReady (Ready=True): the token endpoint is known and the
	// credentials Secret holds the keys the grant and auth method need.
	// A provider that cannot be used reports the reason an OAuthClientToken
	// with the same spec inline would: CredentialsNotFound,
	// CredentialsKeyMissing, DiscoveryFailed, TokenURLNotAllowed...
	ReasonProviderReady = "ProviderReady"
)
