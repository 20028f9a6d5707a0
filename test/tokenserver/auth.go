package tokenserver

import (
	"net/http"
	"net/url"
	"slices"
	"time"
)

// jwtBearerType is the client_assertion_type of private_key_jwt.
const jwtBearerType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// credentials are the client credentials a request carries.
type credentials struct {
	method    string // AuthBasic, AuthPost, AuthPrivateKeyJWT, AuthTLSClient or AuthNone
	id        string // claimed client id
	secret    string
	assertion *jws  // decoded client_assertion; header only when assertionErr is set
	assertErr error // why client_assertion does not decode
	certCN    string
	err       *reqError // malformed or ambiguous credentials
}

// credentials finds the client authentication method of a request. It
// checks nothing but the form of Basic credentials and that only one
// method is used.
func (s *Server) credentials(r *http.Request, form url.Values) credentials {
	var c credentials
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c.certCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	id, secret, hasBasic := r.BasicAuth()
	hasAssertion := (s.opts.ClientKeys != nil || s.fed != nil) && (form.Has("client_assertion") || form.Has("client_assertion_type"))
	switch {
	case hasBasic:
		c.method = AuthBasic
		var err1, err2 error
		c.id, err1 = url.QueryUnescape(id)
		c.secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			c.err = unauthorized("malformed Basic credentials")
		}
	case hasAssertion:
		c.method = AuthPrivateKeyJWT
		if _, ok := s.fed.trusts(form.Get("client_assertion")); ok {
			c.method = AuthFederated
		}
		c.assertion, c.assertErr = parseJWS(form.Get("client_assertion"))
		c.id = form.Get("client_id")
		if iss, ok := c.assertion.claims["iss"].(string); ok && c.id == "" {
			c.id = iss
		}
	case form.Has("client_id") && s.opts.TLSClientAuth != nil && !form.Has("client_secret"):
		c.method, c.id = AuthTLSClient, form.Get("client_id")
	case form.Has("client_id"):
		c.method = AuthPost
		c.id, c.secret = form.Get("client_id"), form.Get("client_secret")
	}
	used := 0
	for _, has := range []bool{hasBasic, form.Has("client_secret"), hasAssertion} {
		if has {
			used++
		}
	}
	if c.err == nil && used > 1 {
		c.err = badRequest("invalid_request", "more than one client authentication method")
	}
	return c
}

// authenticate checks the credentials and returns the client id.
func (s *Server) authenticate(r *http.Request, form url.Values, c credentials, verified map[string]verifiedJWT) (string, *reqError) {
	allowBasic := s.opts.AllowBasic || !s.opts.AllowPost
	allowPost := s.opts.AllowPost || !s.opts.AllowBasic
	if s.publicExchange(form, c) {
		return "", nil // no client: only policies for any client apply
	}
	switch c.method {
	case AuthNone:
		return "", unauthorized("no client authentication")
	case AuthFederated:
		if form.Get("client_assertion_type") != jwtBearerType {
			return "", unauthorized("client_assertion_type must be " + jwtBearerType)
		}
		return s.checkFederated(form, verified["client_assertion"])
	case AuthPrivateKeyJWT:
		return s.checkAssertion(r, form, c)
	case AuthTLSClient:
		want, ok := s.opts.TLSClientAuth[c.id]
		switch {
		case !ok:
			return "", unauthorized("client is not registered for tls_client_auth")
		case r.TLS == nil || len(r.TLS.PeerCertificates) == 0:
			return "", unauthorized("no TLS client certificate")
		case c.certCN != want:
			return "", unauthorized("the TLS client certificate subject does not match the client")
		}
		return c.id, nil
	}
	if c.method == AuthBasic && !allowBasic || c.method == AuthPost && !allowPost {
		return "", unauthorized("client authentication method not supported")
	}
	if want, ok := s.clients[c.id]; !ok || want != c.secret {
		return "", unauthorized("Client authentication failed")
	}
	return c.id, nil
}

// checkAssertion authenticates a private_key_jwt client (RFC 7523 section
// 3, OpenID Connect Core section 9). Descriptions name the failed check,
// never the assertion.
func (s *Server) checkAssertion(r *http.Request, form url.Values, c credentials) (string, *reqError) {
	if form.Get("client_assertion_type") != jwtBearerType {
		return "", unauthorized("client_assertion_type must be " + jwtBearerType)
	}
	if form.Get("client_assertion") == "" {
		return "", unauthorized("missing client_assertion")
	}
	if c.assertErr != nil {
		return "", unauthorized("client_assertion: " + c.assertErr.Error())
	}
	claims := c.assertion.claims
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	key, known := s.opts.ClientKeys[iss]
	switch {
	case iss == "":
		return "", unauthorized("assertion has no iss")
	case sub != iss:
		return "", unauthorized("assertion sub is not its iss")
	case !known:
		return "", unauthorized("assertion iss is not a client with a key")
	case form.Has("client_id") && form.Get("client_id") != iss:
		return "", unauthorized("client_id is not the assertion iss")
	}
	if err := c.assertion.verify(key); err != nil {
		return "", unauthorized("assertion signature: " + err.Error())
	}
	base := baseURL(r)
	if !audienceContains(claims["aud"], base+r.URL.EscapedPath(), base) {
		return "", unauthorized("assertion aud names neither the token endpoint nor the issuer")
	}
	now := s.now()
	exp, ok := numericDate(claims, "exp")
	switch {
	case !ok:
		return "", unauthorized("assertion has no numeric exp")
	case !now.Before(exp):
		return "", unauthorized("assertion expired")
	}
	if nbf, ok := numericDate(claims, "nbf"); ok && nbf.After(now.Add(time.Minute)) {
		return "", unauthorized("assertion not valid yet (nbf)")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return "", unauthorized("assertion has no jti")
	}
	seen := iss + "\x00" + jti
	if s.jtis[seen] {
		return "", badRequest("invalid_client", "assertion replayed")
	}
	s.jtis[seen] = true
	return iss, nil
}

// audienceContains reports whether aud, a string or an array of strings,
// holds one of want.
func audienceContains(aud any, want ...string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, v := range a {
			if str, ok := v.(string); ok && slices.Contains(want, str) {
				return true
			}
		}
	}
	return false
}

// numericDate reads a JWT NumericDate claim (seconds since the epoch).
func numericDate(claims map[string]any, name string) (time.Time, bool) {
	f, ok := claims[name].(float64)
	if !ok {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// publicExchange reports whether a request is a token exchange by a public
// client (no credentials, or client_id alone) that a policy allows for any
// client. Which subject it may exchange is checked with the grant.
func (s *Server) publicExchange(form url.Values, c credentials) bool {
	if !s.exchanges() || form.Get("grant_type") != s.exchangeGrantType() || c.err != nil {
		return false
	}
	if c.method != AuthNone && (c.method != AuthPost || form.Has("client_secret")) {
		return false
	}
	if c.method == AuthPost && s.clients[c.id] != "" {
		return false // a confidential client must authenticate
	}
	for _, p := range s.policies {
		if p.Client == "" {
			return true
		}
	}
	return false
}
