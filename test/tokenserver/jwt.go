package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// jws is a decoded JWS compact serialization (RFC 7515) with a JSON
// payload, as in a JWT.
type jws struct {
	header       map[string]any
	claims       map[string]any
	signingInput string // header.payload, as received
	signature    []byte
}

// parseJWS decodes a compact JWS without verifying it. It never returns
// nil: on error the header is set if it decoded. Errors never quote the
// input.
func parseJWS(compact string) (*jws, error) {
	j := &jws{}
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return j, errors.New("not a JWS compact serialization (three dot-separated parts)")
	}
	if err := decodeSegment(parts[0], &j.header); err != nil || j.header == nil {
		j.header = nil
		return j, errors.New("the JWS header is not a base64url JSON object")
	}
	if err := decodeSegment(parts[1], &j.claims); err != nil || j.claims == nil {
		return j, errors.New("the JWS payload is not a base64url JSON object")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return j, errors.New("the JWS signature is not base64url")
	}
	j.signingInput, j.signature = parts[0]+"."+parts[1], sig
	return j, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// verify checks the signature with the client's public key: RS256, PS256
// (RSA), ES256, ES384 (ECDSA, r||s as in RFC 7518 section 3.4) or EdDSA
// (Ed25519). The alg of the header must fit the key.
func (j *jws) verify(key crypto.PublicKey) error {
	alg, _ := j.header["alg"].(string)
	input := []byte(j.signingInput)
	switch alg {
	case "RS256", "PS256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s does not fit the client's key", alg)
		}
		digest := sha256.Sum256(input)
		var err error
		if alg == "RS256" {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.signature)
		} else {
			err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], j.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			return errors.New("does not verify")
		}
		return nil
	case "ES256":
		digest := sha256.Sum256(input)
		return verifyECDSA(key, elliptic.P256(), alg, digest[:], j.signature)
	case "ES384":
		digest := sha512.Sum384(input)
		return verifyECDSA(key, elliptic.P384(), alg, digest[:], j.signature)
	case "EdDSA", "Ed25519":
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s does not fit the client's key", alg)
		}
		if !ed25519.Verify(pub, input, j.signature) {
			return errors.New("does not verify")
		}
		return nil
	default:
		return fmt.Errorf("alg %q is not supported", alg)
	}
}

// verifyECDSA checks a raw r||s ECDSA signature on curve.
func verifyECDSA(key crypto.PublicKey, curve elliptic.Curve, alg string, digest, sig []byte) error {
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != curve {
		return fmt.Errorf("alg %s does not fit the client's key", alg)
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return fmt.Errorf("an %s signature is r||s, %d bytes", alg, 2*size)
	}
	r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
	if !ecdsa.Verify(pub, digest, r, s) {
		return errors.New("does not verify")
	}
	return nil
}

// signJWT returns an HS256 JWT of claims with the server's key.
func (s *Server) signJWT(typ string, claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": typ})
	payload, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.jwtKey)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// jwtExpiry is the exp claim of a JWT, unverified.
func jwtExpiry(token string) (time.Time, bool) {
	j, err := parseJWS(token)
	if err != nil {
		return time.Time{}, false
	}
	return numericDate(j.claims, "exp")
}
