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
)

// minRSABits is the smallest RSA key accepted for client assertions.
const minRSABits = 2048

// ParsePrivateKey reads the first PEM block of pemBytes: PKCS#8 ("PRIVATE
// KEY": RSA, ECDSA or Ed25519), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC
// PRIVATE KEY"). Errors never quote key material.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
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
		return nil, fmt.Errorf("%s block does not parse", block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small (at least %d)", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// keyKind names a key's type for messages.
func keyKind(key crypto.Signer) string {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// signingAlgorithm resolves the JWS algorithm for key: the key's default
// when requested is empty, else requested if the key can make it.
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
		switch k.Curve {
		case elliptic.P256():
			def = "ES256"
		case elliptic.P384():
			def = "ES384"
		case elliptic.P521():
			def = "ES512"
		default:
			return "", fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
		}
		ok = func(a string) bool { return a == def }
	case ed25519.PrivateKey:
		def = "EdDSA"
		ok = func(a string) bool { return a == def }
	default:
		return "", fmt.Errorf("unsupported key type %T", key)
	}
	if requested == "" {
		return def, nil
	}
	if !ok(requested) {
		return "", fmt.Errorf("signing algorithm %s cannot be used with an %s key", clean(requested, 16), keyKind(key))
	}
	return requested, nil
}

func hashOf(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

// signJWT returns the JWS compact serialisation (RFC 7515) of a JWT.
func signJWT(key crypto.Signer, alg, keyID string, claims map[string]any) (string, error) {
	header := map[string]string{"alg": alg, "typ": "JWT"}
	if keyID != "" {
		header["kid"] = keyID
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	switch {
	case alg == "EdDSA":
		sig, err = key.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"), strings.HasPrefix(alg, "ES"):
		hf := hashOf(alg)
		d := hf.New()
		d.Write([]byte(input))
		digest := d.Sum(nil)
		switch alg[:2] {
		case "RS":
			sig, err = key.Sign(rand.Reader, digest, hf)
		case "PS":
			sig, err = key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hf})
		case "ES":
			sig, err = ecdsaRaw(key, digest)
		}
	default:
		return "", fmt.Errorf("unsupported signing algorithm %s", clean(alg, 16))
	}
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// ecdsaRaw signs digest and encodes the signature as the fixed-size r||s
// of RFC 7518 section 3.4.
func ecdsaRaw(key crypto.Signer, digest []byte) ([]byte, error) {
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	r, s, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		return nil, err
	}
	size := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// assertionLifetime is how long a client assertion is valid.
const assertionLifetime = 5 * time.Minute

// clientAssertion signs a private_key_jwt client assertion (RFC 7523
// section 3, OpenID Connect Core section 9).
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

// jwtExpiry reads the exp claim of a JWS compact JWT (RFC 9068 access
// tokens) without verifying it: the lifetime only schedules the renewal.
// ok is false for anything else.
func jwtExpiry(token string) (time.Time, bool) {
	if len(token) > maxJWTLength || strings.Count(token, ".") != 2 {
		return time.Time{}, false
	}
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if dec.Decode(&claims) != nil || claims == nil {
		return time.Time{}, false
	}
	var secs float64
	switch v := claims["exp"].(type) {
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
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), true
}
