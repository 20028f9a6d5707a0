package oauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// minRSABits is the smallest RSA key accepted for client assertions.
const minRSABits = 2048

// ParsePrivateKey reads the first PEM block of pemBytes: PKCS#8 ("PRIVATE
// KEY": RSA, ECDSA or Ed25519), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC
// PRIVATE KEY"). Encrypted keys, other block types, RSA keys under 2048 bits
// and ECDSA curves other than P-256, P-384 and P-521 are refused. Errors
// never quote key material.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	_, procType := block.Headers["Proc-Type"]
	_, dekInfo := block.Headers["DEK-Info"]
	if procType || dekInfo || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("encrypted private keys are not supported; store the key unencrypted in the Secret")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block type %q is not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", clean(block.Type, 40))
	}
	if err != nil {
		// The parser's error is not quoted: keep the message free of
		// anything derived from the key bytes.
		return nil, fmt.Errorf("%s block does not parse", block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small (at least %d)", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if ecdsaAlgorithm(k) == "" {
			return nil, fmt.Errorf("ECDSA curve %s is not supported (want P-256, P-384 or P-521)", curveName(k))
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T (want RSA, ECDSA or Ed25519)", key)
}

func curveName(k *ecdsa.PrivateKey) string {
	if k.Curve == nil || k.Curve.Params() == nil {
		return "unknown"
	}
	return k.Curve.Params().Name
}

// ecdsaAlgorithm is the only JWS algorithm an ECDSA key can make, "" for an
// unsupported curve.
func ecdsaAlgorithm(k *ecdsa.PrivateKey) string {
	switch k.Curve {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// keyKind names a key's type for messages.
func keyKind(key crypto.Signer) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA " + curveName(k)
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// signingAlgorithm resolves the JWS algorithm for key: the key's default
// when requested is empty (RS256, ES256/ES384/ES512 by curve, EdDSA), else
// requested if the key can make it.
func signingAlgorithm(key crypto.Signer, requested string) (string, error) {
	var def string
	var ok func(string) bool
	switch k := key.(type) {
	case *rsa.PrivateKey:
		def = "RS256"
		ok = func(a string) bool {
			switch a {
			case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
				return true
			}
			return false
		}
	case *ecdsa.PrivateKey:
		if def = ecdsaAlgorithm(k); def == "" {
			return "", fmt.Errorf("ECDSA curve %s is not supported (want P-256, P-384 or P-521)", curveName(k))
		}
		ok = func(a string) bool { return a == def }
	case ed25519.PrivateKey:
		def = "EdDSA"
		ok = func(a string) bool { return a == def }
	default:
		if requested != "" {
			return "", fmt.Errorf("signing algorithm %s cannot be used with a %s key", clean(requested, 16), keyKind(key))
		}
		return "", fmt.Errorf("unsupported key type %s", keyKind(key))
	}
	if requested == "" {
		return def, nil
	}
	if !ok(requested) {
		return "", fmt.Errorf("signing algorithm %s cannot be used with an %s key", clean(requested, 16), keyKind(key))
	}
	return requested, nil
}

// signJWT returns the JWS compact serialisation (RFC 7515) of a JWT with
// header {"alg", "typ": "JWT"} and "kid" when keyID is not empty, signed
// by go-jose. alg must be one key can make (see signingAlgorithm).
func signJWT(key crypto.Signer, alg, keyID string, claims map[string]any) (string, error) {
	if alg == "" {
		return "", errors.New("no signing algorithm")
	}
	if _, err := signingAlgorithm(key, alg); err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if keyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), keyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	if claims == nil {
		claims = map[string]any{}
	}
	out, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing the claims: %w", err)
	}
	return out, nil
}

// assertionLifetime is how long a client assertion is valid.
const assertionLifetime = 5 * time.Minute

// clientAssertion signs a private_key_jwt client assertion (RFC 7523
// section 3, OpenID Connect Core section 9): iss = sub = clientID, aud =
// audience, iat = nbf = now, exp = now + 5 minutes and a random jti.
func clientAssertion(key crypto.Signer, alg, keyID, clientID, audience string, now time.Time) (string, error) {
	alg, err := signingAlgorithm(key, alg)
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	iat := now.Unix()
	return signJWT(key, alg, keyID, map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": audience,
		"iat": iat,
		"nbf": iat,
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	})
}

// maxJWTLength bounds the tokens jwtExpiry looks into.
const maxJWTLength = 64 << 10

// maxUnix is the end of year 9999.
const maxUnix = 253402300799

// isBase64URL reports whether s uses only the base64url alphabet, with
// optional trailing padding.
func isBase64URL(s string) bool {
	s = strings.TrimRight(s, "=")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// jwtAlgorithms are the "alg" values whose JWTs jwtExpiry reads: every
// algorithm go-jose knows, and "none" (an unsecured JWT), since nothing is
// verified.
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512,
	"none",
}

// jwtExpiry reads the exp claim of a JWS compact JWT (RFC 9068 access
// tokens), parsed by go-jose, without verifying it: the lifetime only
// schedules the renewal. exp may be a JSON number (integer or fractional
// seconds, kept to the nanosecond) or a numeric string. ok is false for
// anything else, for a missing or non-positive exp and for one after year
// 9999.
func jwtExpiry(token string) (time.Time, bool) {
	if len(token) > maxJWTLength || strings.Count(token, ".") != 2 {
		return time.Time{}, false
	}
	parts := strings.Split(token, ".")
	// The signature may be empty (an unsecured JWT); header and payload not.
	if parts[0] == "" || parts[1] == "" || !isBase64URL(parts[0]) || !isBase64URL(parts[1]) || !isBase64URL(parts[2]) {
		return time.Time{}, false
	}
	sig, err := jose.ParseSignedCompact(token, jwtAlgorithms)
	if err != nil {
		return time.Time{}, false
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(sig.UnsafePayloadWithoutVerification(), &claims) != nil || claims == nil {
		return time.Time{}, false
	}
	raw, found := claims["exp"]
	if !found {
		return time.Time{}, false
	}
	return numericDate(raw)
}

// numericDate reads a JWT NumericDate (RFC 7519 section 2): seconds since
// the epoch as a JSON number or a numeric string. go-jose's own
// jwt.NumericDate drops the fraction and refuses strings.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return time.Time{}, false
	}
	var secs float64
	var err error
	switch v := v.(type) {
	case json.Number:
		secs, err = v.Float64()
	case string:
		secs, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	default:
		return time.Time{}, false
	}
	if err != nil || math.IsNaN(secs) || secs <= 0 || secs > maxUnix {
		return time.Time{}, false
	}
	whole, frac := math.Modf(secs)
	exp := time.Unix(int64(whole), int64(frac*1e9)).UTC()
	if !exp.After(time.Unix(0, 0)) {
		return time.Time{}, false
	}
	return exp, true
}
