package oauth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AuthMethod is how the client authenticates to the token endpoint.
type AuthMethod string

const (
	// AuthMethodAuto sends HTTP Basic credentials and, when the endpoint
	// refuses them with a 4xx (or a 2xx carrying an error code), repeats
	// the request once with the credentials in the form body. Unlike
	// x/oauth2's own auto-detection it does not repeat after a transient
	// failure (5xx, 429, timeout), and it caches nothing.
	AuthMethodAuto AuthMethod = "Auto"
	// AuthMethodBasic sends the URL-encoded client id and secret in an HTTP
	// Basic header (RFC 6749 section 2.3.1).
	AuthMethodBasic AuthMethod = "ClientSecretBasic"
	// AuthMethodPost sends client_id and client_secret in the form body.
	AuthMethodPost AuthMethod = "ClientSecretPost"
	// AuthMethodPrivateKeyJWT sends client_id and a client assertion signed
	// with Request.PrivateKeyPEM (RFC 7523 section 2.2, private_key_jwt).
	AuthMethodPrivateKeyJWT AuthMethod = "PrivateKeyJWT"
	// AuthMethodTLSClient sends only client_id; the client is authenticated
	// by the TLS client certificate in Request.TLS (RFC 8705
	// tls_client_auth).
	AuthMethodTLSClient AuthMethod = "TLSClientAuth"
	// AuthMethodServiceAccountAssertion sends Request.ClientAssertion, a
	// ready-made JWT such as a Kubernetes ServiceAccount token, as
	// client_assertion (RFC 7523 section 2.2), and client_id when
	// Request.ClientID is set. No client secret is read or sent.
	AuthMethodServiceAccountAssertion AuthMethod = "ServiceAccountAssertion"
	// AuthMethodNone sends no client credentials, only client_id when
	// Request.ClientID is set: a public client (RFC 6749 section 2.1), as a
	// token exchange (RFC 8693 section 2.1) may be.
	AuthMethodNone AuthMethod = "None"
)

// Standard grant_type values (RFC 6749, RFC 8693).
const (
	GrantTypeClientCredentials = "client_credentials"
	GrantTypePassword          = "password"
	GrantTypeRefreshToken      = "refresh_token"
	GrantTypeTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Token type identifiers of RFC 8693 section 3, for SubjectTokenType,
// ActorTokenType, RequestedTokenType and Token.IssuedTokenType.
const (
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
)

// clientAssertionType is the client_assertion_type of RFC 7523.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DefaultTimeout bounds a token request when Request.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Request describes one token request.
type Request struct {
	// TokenURL is the absolute http(s) URL of the token endpoint, used as
	// it is (path parameters included). It must not contain user
	// information or a fragment.
	TokenURL   string
	AuthMethod AuthMethod // "" means AuthMethodAuto
	// ClientID is required, except with AuthMethodServiceAccountAssertion
	// and AuthMethodNone, which send it only when set.
	ClientID string
	// ClientSecret is never part of an error message. Unused (and not
	// sent) with AuthMethodPrivateKeyJWT, AuthMethodTLSClient,
	// AuthMethodServiceAccountAssertion and AuthMethodNone.
	ClientSecret string
	// GrantType is the literal grant_type sent; client_credentials when
	// empty (GrantTypeTokenExchange when SubjectToken is set). Some
	// endpoints want other spellings (CLIENT_CREDENTIALS, TOKEN_EXCHANGE).
	GrantType string
	// Username and Password are sent as username and password when
	// Username is set (the resource-owner password grant).
	Username, Password string
	// RefreshToken is sent as refresh_token when set (the refresh grant;
	// set GrantType to the refresh literal too).
	RefreshToken string
	// Scopes are space-joined into the scope parameter; none is sent when
	// empty.
	Scopes []string
	// Audience is sent as the audience parameter when non-empty.
	Audience string
	// Resources are sent as repeated resource parameters (RFC 8707).
	Resources []string
	// ExtraParams are added to the form. They must not set a parameter
	// the fields above control.
	ExtraParams map[string]string
	// Headers are added to the HTTP request. They must not set
	// Authorization, Content-Type or Content-Length.
	Headers map[string]string
	// Format encodes the body: FormatForm (default) or FormatJSON.
	Format Format
	// ResponseFields locate the token fields in a nested response.
	ResponseFields ResponseFields
	// PrivateKeyPEM signs the client assertion of AuthMethodPrivateKeyJWT.
	// AssertionAlgorithm ("" for the key's default), AssertionKeyID (the
	// kid header) and AssertionAudience (the aud claim, TokenURL when
	// empty) shape it.
	PrivateKeyPEM                                         []byte
	AssertionAlgorithm, AssertionKeyID, AssertionAudience string
	// ClientAssertion is the JWT sent as client_assertion with
	// AuthMethodServiceAccountAssertion (a ServiceAccount token from the
	// TokenRequest API, say). A secret: never part of a message.
	ClientAssertion string
	// SubjectToken makes the request an RFC 8693 token exchange: it is
	// sent as subject_token, with SubjectTokenType (TokenTypeJWT when
	// empty). ActorToken and ActorTokenType (TokenTypeJWT when empty) are
	// sent when ActorToken is set, RequestedTokenType when set. Audience,
	// Resources and Scopes work as for any grant. SubjectToken and
	// ActorToken are secrets: never part of a message.
	SubjectToken, SubjectTokenType string
	ActorToken, ActorTokenType     string
	RequestedTokenType             string
	// Tenant names who the request is for (the object's namespace, say).
	// With HostLimiter.MaxInFlightPerTenant, one tenant cannot take every
	// in-flight slot of a host. It is not sent.
	Tenant string
	// TLS replaces the default TLS material (CAs, client certificate).
	TLS *TLSConfig
	// Timeout bounds the whole call, including an Auto fallback;
	// DefaultTimeout when zero or negative, and never more than
	// Client.MaxTimeout when that is set.
	Timeout time.Duration
}

func (r *Request) grantType() string {
	switch {
	case r.GrantType != "":
		return r.GrantType
	case r.SubjectToken != "":
		return GrantTypeTokenExchange
	}
	return GrantTypeClientCredentials
}

func (r *Request) authMethod() AuthMethod {
	if r.AuthMethod == "" {
		return AuthMethodAuto
	}
	return r.AuthMethod
}

// secrets lists what must never appear in a message about r.
func (r *Request) secrets() []string {
	return secretsOf(r.ClientSecret, r.Password, r.RefreshToken, r.ClientAssertion, r.SubjectToken, r.ActorToken)
}

// params are the grant parameters of the body, without client
// authentication.
func (r *Request) params() url.Values {
	v := url.Values{}
	for k, x := range r.ExtraParams {
		v.Set(k, x)
	}
	v.Set("grant_type", r.grantType())
	if r.Username != "" {
		v.Set("username", r.Username)
		v.Set("password", r.Password)
	}
	if r.RefreshToken != "" {
		v.Set("refresh_token", r.RefreshToken)
	}
	if r.SubjectToken != "" {
		v.Set("subject_token", r.SubjectToken)
		v.Set("subject_token_type", or(r.SubjectTokenType, TokenTypeJWT))
	}
	if r.ActorToken != "" {
		v.Set("actor_token", r.ActorToken)
		v.Set("actor_token_type", or(r.ActorTokenType, TokenTypeJWT))
	}
	if r.RequestedTokenType != "" {
		v.Set("requested_token_type", r.RequestedTokenType)
	}
	if len(r.Scopes) > 0 {
		v.Set("scope", strings.Join(r.Scopes, " "))
	}
	if r.Audience != "" {
		v.Set("audience", r.Audience)
	}
	for _, res := range r.Resources {
		v.Add("resource", res)
	}
	return v
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// reservedParams are the parameters Request fields control, whether set or
// not; the token-exchange parameters that carry no secret are reserved
// only when their field is set (see validate).
var reservedParams = map[string]bool{
	"grant_type": true, "client_id": true, "client_secret": true,
	"username": true, "password": true, "refresh_token": true, "resource": true,
	"client_assertion": true, "client_assertion_type": true,
	"subject_token": true, "actor_token": true,
}

// validate refuses a request that cannot be sent as configured. Nothing is
// sent for it and its message quotes no secret.
func validate(req Request) *Error {
	if oerr := validateURL(req.TokenURL); oerr != nil {
		return oerr
	}
	m := req.authMethod()
	switch m {
	case AuthMethodAuto, AuthMethodBasic, AuthMethodPost, AuthMethodTLSClient, AuthMethodNone:
	case AuthMethodPrivateKeyJWT:
		if len(req.PrivateKeyPEM) == 0 {
			return configError("PrivateKeyJWT needs a private key")
		}
	case AuthMethodServiceAccountAssertion:
		if req.ClientAssertion == "" {
			return configError("ServiceAccountAssertion needs a client assertion (a ServiceAccount token)")
		}
	default:
		return configError(fmt.Sprintf("unknown auth method %q (want %s, %s, %s, %s, %s, %s or %s)",
			clean(string(m), 64), AuthMethodAuto, AuthMethodBasic, AuthMethodPost, AuthMethodPrivateKeyJWT, AuthMethodTLSClient, AuthMethodServiceAccountAssertion, AuthMethodNone))
	}
	if m == AuthMethodTLSClient && (req.TLS == nil || len(req.TLS.CertPEM) == 0) {
		return configError("TLSClientAuth needs a client certificate")
	}
	switch req.Format {
	case "", FormatForm, FormatJSON:
	default:
		return configError(fmt.Sprintf("unknown request format %q", clean(string(req.Format), 64)))
	}
	if req.ClientID == "" && m != AuthMethodServiceAccountAssertion && m != AuthMethodNone {
		return configError("empty client id")
	}
	if req.grantType() == GrantTypeTokenExchange && req.SubjectToken == "" {
		return configError("a token exchange (RFC 8693) needs a subject token")
	}
	if req.ActorTokenType != "" && req.ActorToken == "" {
		return configError("an actor token type without an actor token")
	}
	for k := range req.ExtraParams {
		switch {
		case k == "":
			return configError("extra parameter with an empty name")
		case reservedParams[k],
			k == "scope" && len(req.Scopes) > 0, k == "audience" && req.Audience != "",
			k == "subject_token_type" && req.SubjectToken != "",
			k == "actor_token_type" && req.ActorToken != "",
			k == "requested_token_type" && req.RequestedTokenType != "":
			return configError(fmt.Sprintf("extra parameter %q would override a parameter set by the client", clean(k, 64)))
		}
	}
	for k := range req.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Content-Type", "Content-Length", "Host":
			return configError(fmt.Sprintf("header %q would override a header set by the client", clean(k, 64)))
		}
	}
	return nil
}

// validateURL checks a token URL.
func validateURL(raw string) *Error {
	u, err := url.Parse(raw)
	if err != nil {
		return configError("token URL cannot be parsed")
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return configError(fmt.Sprintf("token URL %q is not an absolute http(s) URL", RedactedURL(raw)))
	}
	if u.User != nil {
		return configError("token URL must not contain user information")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return configError("token URL must not contain a fragment (RFC 6749 section 3.2)")
	}
	return nil
}

func configError(desc string) *Error { return &Error{Kind: KindConfig, Description: desc} }
