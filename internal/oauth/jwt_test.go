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
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Keys are generated once: RSA generation is slow under -race.
var jtKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	keys := map[string]crypto.Signer{"RSA": rsaKey}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			panic(err)
		}
		keys[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys["Ed25519"] = ed
	return keys
})

func jtKey(t *testing.T, name string) crypto.Signer {
	t.Helper()
	k, ok := jtKeys()[name]
	if !ok {
		t.Fatalf("no test key %s", name)
	}
	return k
}

func jtPEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func jtPKCS8(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return jtPEM("PRIVATE KEY", der)
}

func jtSameKey(a, b crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func TestParsePrivateKeyFormats(t *testing.T) {
	rsaKey := jtKey(t, "RSA").(*rsa.PrivateKey)
	ec256 := jtKey(t, "P-256").(*ecdsa.PrivateKey)
	ec521 := jtKey(t, "P-521").(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec256)
	if err != nil {
		t.Fatal(err)
	}
	sec1P521, err := x509.MarshalECPrivateKey(ec521)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		pem  []byte
		want crypto.Signer
	}{
		{"PKCS#8 RSA", jtPKCS8(t, rsaKey), rsaKey},
		{"PKCS#8 P-256", jtPKCS8(t, ec256), ec256},
		{"PKCS#8 P-384", jtPKCS8(t, jtKey(t, "P-384")), jtKey(t, "P-384")},
		{"PKCS#8 Ed25519", jtPKCS8(t, jtKey(t, "Ed25519")), jtKey(t, "Ed25519")},
		{"PKCS#1 RSA", jtPEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey},
		{"SEC1 P-256", jtPEM("EC PRIVATE KEY", sec1), ec256},
		{"SEC1 P-521", jtPEM("EC PRIVATE KEY", sec1P521), ec521},
		// Text around the block, and a second block, are ignored.
		{"surrounding text", append(append([]byte("key:\n"), jtPKCS8(t, ec256)...), jtPKCS8(t, rsaKey)...), ec256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tc.pem)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if !jtSameKey(got, tc.want) {
				t.Fatalf("got a different key (%T)", got)
			}
		})
	}
}

func TestParsePrivateKeyRefusals(t *testing.T) {
	rsaKey := jtKey(t, "RSA").(*rsa.PrivateKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goodDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   x509.MarshalPKCS1PrivateKey(rsaKey),
	})
	corrupt := bytes.Clone(goodDER[:len(goodDER)/2])
	cert := jtPEM("CERTIFICATE", goodDER)
	pub, err := x509.MarshalPKIXPublicKey(rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		pem  []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"DER without armour", goodDER, "no PEM block"},
		{"PKCS#8 encrypted", jtPEM("ENCRYPTED PRIVATE KEY", goodDER), "encrypted"},
		{"legacy encrypted", legacyEncrypted, "encrypted"},
		{"certificate", cert, `"CERTIFICATE" is not a private key`},
		{"public key", jtPEM("PUBLIC KEY", pub), `"PUBLIC KEY" is not a private key`},
		{"corrupt PKCS#8", jtPEM("PRIVATE KEY", corrupt), "PRIVATE KEY block does not parse"},
		{"PKCS#8 under the PKCS#1 type", jtPEM("RSA PRIVATE KEY", goodDER), "RSA PRIVATE KEY block does not parse"},
		{"PKCS#8 under the SEC1 type", jtPEM("EC PRIVATE KEY", goodDER), "EC PRIVATE KEY block does not parse"},
		{"RSA 1024 PKCS#8", jtPKCS8(t, small), "RSA key of 1024 bits is too small"},
		{"RSA 1024 PKCS#1", jtPEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "RSA key of 1024 bits is too small"},
		{"P-224", jtPKCS8(t, p224), "P-224 is not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePrivateKey(tc.pem)
			if err == nil {
				t.Fatalf("accepted a %T", k)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not contain %q", msg, tc.want)
			}
			// No key material: no base64 run of the body, no PEM text.
			if len(msg) > 200 || strings.Contains(msg, "-----") {
				t.Fatalf("error %q quotes its input", msg)
			}
			if block, _ := pem.Decode(tc.pem); block != nil && len(block.Bytes) > 0 {
				b64 := base64.StdEncoding.EncodeToString(block.Bytes)
				for i := 0; i+16 <= len(b64); i += 16 {
					if strings.Contains(msg, b64[i:i+16]) {
						t.Fatalf("error %q quotes the key's base64", msg)
					}
				}
			}
		})
	}
}

func TestSigningAlgorithm(t *testing.T) {
	defaults := map[string]string{"RSA": "RS256", "P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"}
	allowed := map[string][]string{
		"RSA":     {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
		"P-256":   {"ES256"},
		"P-384":   {"ES384"},
		"P-521":   {"ES512"},
		"Ed25519": {"EdDSA"},
	}
	all := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
		"HS256", "none", "rs256", "ES256K", "Ed25519", " RS256", "RS", "R"}
	for name, def := range defaults {
		key := jtKey(t, name)
		got, err := signingAlgorithm(key, "")
		if err != nil || got != def {
			t.Errorf("%s default = %q, %v; want %s", name, got, err, def)
		}
		for _, alg := range all {
			got, err := signingAlgorithm(key, alg)
			ok := false
			for _, a := range allowed[name] {
				ok = ok || a == alg
			}
			switch {
			case ok && (err != nil || got != alg):
				t.Errorf("%s with %s = %q, %v", name, alg, got, err)
			case !ok && err == nil:
				t.Errorf("%s with %s accepted", name, alg)
			case !ok:
				msg := err.Error()
				kind := map[string]string{"RSA": "RSA", "Ed25519": "Ed25519"}[name]
				if kind == "" {
					kind = "ECDSA " + name
				}
				if !strings.Contains(msg, strings.TrimSpace(alg)) || !strings.Contains(msg, kind) {
					t.Errorf("%s with %s: error %q does not name both the algorithm and the key type", name, alg, msg)
				}
			}
		}
	}
	if _, err := signingAlgorithm(jtOtherSigner{}, ""); err == nil {
		t.Error("accepted an unknown key type")
	}
	if _, err := signingAlgorithm(jtOtherSigner{}, "RS256"); err == nil || !strings.Contains(err.Error(), "RS256") {
		t.Errorf("unknown key type with RS256: %v", err)
	}
}

// jtOtherSigner is a crypto.Signer of no supported type.
type jtOtherSigner struct{}

func (jtOtherSigner) Public() crypto.PublicKey { return nil }
func (jtOtherSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, nil
}

// jtDecode splits and decodes a compact JWS, failing the test on any
// malformation.
func jtDecode(t *testing.T, token string) (header map[string]any, claims map[string]any, input, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, p := range parts {
		if strings.ContainsAny(p, "=+/") {
			t.Fatalf("part %d is not unpadded base64url", i)
		}
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64url: %v", err)
		}
		return b
	}
	if err := json.Unmarshal(dec(parts[0]), &header); err != nil {
		t.Fatalf("header: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(dec(parts[1])))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return header, claims, []byte(parts[0] + "." + parts[1]), dec(parts[2])
}

func jtVerify(t *testing.T, key crypto.Signer, alg string, input, sig []byte) {
	t.Helper()
	digest := func(h crypto.Hash) []byte {
		d := h.New()
		d.Write(input)
		return d.Sum(nil)
	}
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		h := hashes[alg[2:]]
		var err error
		if alg[:2] == "RS" {
			err = rsa.VerifyPKCS1v15(k, h, digest(h), sig)
		} else {
			err = rsa.VerifyPSS(k, h, digest(h), sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
		}
		if err != nil {
			t.Fatalf("%s signature does not verify: %v", alg, err)
		}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s signature is %d bytes, want %d", alg, len(sig), 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest(hashes[alg[2:]]), r, s) {
			t.Fatalf("%s signature does not verify", alg)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, input, sig) {
			t.Fatalf("%s signature does not verify", alg)
		}
	default:
		t.Fatalf("unexpected public key %T", k)
	}
}

func TestSignJWTVerifies(t *testing.T) {
	cases := []struct{ key, alg string }{
		{"RSA", "RS256"}, {"RSA", "RS384"}, {"RSA", "RS512"},
		{"RSA", "PS256"}, {"RSA", "PS384"}, {"RSA", "PS512"},
		{"P-256", "ES256"}, {"P-384", "ES384"}, {"P-521", "ES512"},
		{"Ed25519", "EdDSA"},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			key := jtKey(t, tc.key)
			claims := map[string]any{"iss": "me", "n": 42, "nested": map[string]any{"a": []string{"x"}}}
			// Several rounds so that ECDSA r or s with leading zero bytes
			// (and so the left padding) is likely exercised for P-521.
			rounds := 1
			if strings.HasPrefix(tc.alg, "ES") {
				rounds = 20
			}
			for range rounds {
				tok, err := signJWT(key, tc.alg, "kid-1", claims)
				if err != nil {
					t.Fatalf("signJWT: %v", err)
				}
				header, got, input, sig := jtDecode(t, tok)
				if len(header) != 3 || header["alg"] != tc.alg || header["typ"] != "JWT" || header["kid"] != "kid-1" {
					t.Fatalf("header = %v", header)
				}
				if got["iss"] != "me" || got["n"] != json.Number("42") {
					t.Fatalf("claims = %v", got)
				}
				jtVerify(t, key, tc.alg, input, sig)
			}
			// No kid: the header has alg and typ only.
			tok, err := signJWT(key, tc.alg, "", nil)
			if err != nil {
				t.Fatalf("signJWT: %v", err)
			}
			header, got, input, sig := jtDecode(t, tok)
			if _, has := header["kid"]; has || len(header) != 2 {
				t.Fatalf("header = %v", header)
			}
			if got == nil || len(got) != 0 {
				t.Fatalf("nil claims encoded as %v, want {}", got)
			}
			jtVerify(t, key, tc.alg, input, sig)
		})
	}
}

func TestSignJWTRefusesMismatch(t *testing.T) {
	cases := []struct{ key, alg string }{
		{"RSA", "ES256"}, {"RSA", "EdDSA"}, {"RSA", ""}, {"RSA", "RS1"}, {"RSA", "HS256"},
		{"P-256", "ES512"}, {"P-256", "RS256"}, {"P-521", "ES256"},
		{"Ed25519", "ES256"}, {"Ed25519", "RS256"}, {"Ed25519", "none"},
	}
	for _, tc := range cases {
		if tok, err := signJWT(jtKey(t, tc.key), tc.alg, "", map[string]any{"a": 1}); err == nil {
			t.Errorf("%s key signed %q: %s", tc.key, tc.alg, tok)
		}
	}
	if _, err := signJWT(jtKey(t, "P-256"), "ES256", "", map[string]any{"bad": make(chan int)}); err == nil {
		t.Error("signed unencodable claims")
	}
}

func TestClientAssertion(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)
	for _, name := range []string{"RSA", "P-256", "P-384", "P-521", "Ed25519"} {
		t.Run(name, func(t *testing.T) {
			key := jtKey(t, name)
			want, _ := signingAlgorithm(key, "")
			a1, err := clientAssertion(key, "", "k1", "client-1", "https://as.example/token", now)
			if err != nil {
				t.Fatalf("clientAssertion: %v", err)
			}
			a2, err := clientAssertion(key, "", "", "client-1", "https://as.example/token", now)
			if err != nil {
				t.Fatalf("clientAssertion: %v", err)
			}
			h1, c1, input, sig := jtDecode(t, a1)
			jtVerify(t, key, want, input, sig)
			if h1["alg"] != want || h1["kid"] != "k1" || h1["typ"] != "JWT" {
				t.Fatalf("header = %v", h1)
			}
			h2, c2, _, _ := jtDecode(t, a2)
			if _, has := h2["kid"]; has {
				t.Fatalf("header without key ID = %v", h2)
			}
			for _, c := range []map[string]any{c1, c2} {
				if c["iss"] != "client-1" || c["sub"] != "client-1" || c["aud"] != "https://as.example/token" {
					t.Fatalf("claims = %v", c)
				}
				num := func(k string) int64 {
					n, ok := c[k].(json.Number)
					if !ok {
						t.Fatalf("%s = %v (%T), want an integer", k, c[k], c[k])
					}
					v, err := n.Int64()
					if err != nil {
						t.Fatalf("%s = %v: %v", k, n, err)
					}
					return v
				}
				iat, nbf, exp := num("iat"), num("nbf"), num("exp")
				if iat != now.Unix() || nbf != iat || exp-iat != 300 {
					t.Fatalf("iat %d nbf %d exp %d", iat, nbf, exp)
				}
				jti, _ := c["jti"].(string)
				raw, err := base64.RawURLEncoding.DecodeString(jti)
				if err != nil || len(raw) != 16 {
					t.Fatalf("jti %q is not 16 base64url bytes", jti)
				}
				if len(c) != 7 {
					t.Fatalf("claims = %v", c)
				}
			}
			if c1["jti"] == c2["jti"] {
				t.Fatalf("jti repeated: %v", c1["jti"])
			}
			if exp, ok := jwtExpiry(a1); !ok || !exp.Equal(now.Add(5*time.Minute).Truncate(time.Second)) {
				t.Fatalf("jwtExpiry(assertion) = %v, %v", exp, ok)
			}
		})
	}
	t.Run("explicit PS384", func(t *testing.T) {
		key := jtKey(t, "RSA")
		a, err := clientAssertion(key, "PS384", "", "c", "aud", now)
		if err != nil {
			t.Fatal(err)
		}
		h, _, input, sig := jtDecode(t, a)
		if h["alg"] != "PS384" {
			t.Fatalf("header = %v", h)
		}
		jtVerify(t, key, "PS384", input, sig)
	})
	t.Run("mismatch", func(t *testing.T) {
		_, err := clientAssertion(jtKey(t, "P-256"), "RS256", "", "c", "aud", now)
		if err == nil || !strings.Contains(err.Error(), "RS256") || !strings.Contains(err.Error(), "ECDSA") {
			t.Fatalf("err = %v", err)
		}
	})
}

func jtToken(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + enc.EncodeToString([]byte(payload)) + ".c2lnbmF0dXJl"
}

func TestJWTExpiry(t *testing.T) {
	at := func(sec, nsec int64) time.Time { return time.Unix(sec, nsec).UTC() }
	ok := []struct {
		name  string
		token string
		want  time.Time
	}{
		{"integer", jtToken(`{"sub":"a","exp":1767225600}`), at(1767225600, 0)},
		{"float", jtToken(`{"exp":1767225600.5}`), at(1767225600, 500000000)},
		{"exponent", jtToken(`{"exp":1.7672256e9}`), at(1767225600, 0)},
		{"string", jtToken(`{"exp":"1767225600"}`), at(1767225600, 0)},
		{"string with spaces", jtToken(`{"exp":" 1767225600 "}`), at(1767225600, 0)},
		{"float string", jtToken(`{"exp":"1767225600.25"}`), at(1767225600, 250000000)},
		{"empty signature", strings.TrimSuffix(jtToken(`{"exp":1767225600}`), "c2lnbmF0dXJl"), at(1767225600, 0)},
		{"padded payload", strings.Split(jtToken(`{}`), ".")[0] + "." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1767225600}`)) + ".c2ln", at(1767225600, 0)},
		{"year 9999", jtToken(`{"exp":253402300799}`), at(253402300799, 0)},
		{"one", jtToken(`{"exp":1}`), at(1, 0)},
	}
	for _, tc := range ok {
		got, found := jwtExpiry(tc.token)
		if !found || !got.Equal(tc.want) {
			t.Errorf("%s: jwtExpiry = %v, %v; want %v", tc.name, got, found, tc.want)
		}
	}
	enc := base64.RawURLEncoding.EncodeToString
	huge := jtToken(`{"exp":1767225600,"pad":"` + strings.Repeat("x", 70<<10) + `"}`)
	bad := []struct{ name, token string }{
		{"empty", ""},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA"},
		{"2 parts", enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"exp":1767225600}`))},
		{"4 parts", jtToken(`{"exp":1767225600}`) + ".x"},
		{"JWE-like 5 parts", "a.b.c.d.e"},
		{"bad base64", enc([]byte(`{"alg":"none"}`)) + ".!!!." + "sig"},
		{"standard base64", enc([]byte(`{"alg":"none"}`)) + "." + base64.StdEncoding.EncodeToString([]byte(`{"exp":1767225600,"x":"??>"}`)) + ".sig"},
		{"bad header characters", "a b." + enc([]byte(`{"exp":1767225600}`)) + ".sig"},
		{"bad signature characters", enc([]byte(`{}`)) + "." + enc([]byte(`{"exp":1767225600}`)) + ".s/g"},
		{"empty header", "." + enc([]byte(`{"exp":1767225600}`)) + ".sig"},
		{"empty payload", enc([]byte(`{}`)) + "..sig"},
		{"payload not JSON", jtToken(`exp=1767225600`)},
		{"payload an array", jtToken(`[{"exp":1767225600}]`)},
		{"payload a number", jtToken(`1767225600`)},
		{"payload a string", jtToken(`"exp"`)},
		{"payload null", jtToken(`null`)},
		{"trailing data", jtToken(`{"exp":1767225600} {}`)},
		{"missing exp", jtToken(`{"iat":1767225600}`)},
		{"null exp", jtToken(`{"exp":null}`)},
		{"bool exp", jtToken(`{"exp":true}`)},
		{"object exp", jtToken(`{"exp":{"v":1}}`)},
		{"zero exp", jtToken(`{"exp":0}`)},
		{"negative exp", jtToken(`{"exp":-5}`)},
		{"sub-nanosecond exp", jtToken(`{"exp":4.9e-324}`)},
		{"after year 9999", jtToken(`{"exp":253402300800}`)},
		{"overflowing exp", jtToken(`{"exp":1e400}`)},
		{"non-numeric string", jtToken(`{"exp":"tomorrow"}`)},
		{"NaN string", jtToken(`{"exp":"NaN"}`)},
		{"Inf string", jtToken(`{"exp":"+Inf"}`)},
		{"empty string", jtToken(`{"exp":""}`)},
		{"huge", huge},
		{"many dots", strings.Repeat(".", 1<<20)},
	}
	for _, tc := range bad {
		if got, found := jwtExpiry(tc.token); found {
			t.Errorf("%s: jwtExpiry = %v, true; want false", tc.name, got)
		}
	}
}

func FuzzJWTExpiry(f *testing.F) {
	for _, s := range []string{
		"",
		"..",
		"a.b.c",
		jtToken(`{"exp":1767225600}`),
		jtToken(`{"exp":1767225600.999999999}`),
		jtToken(`{"exp":"1767225600"}`),
		jtToken(`{"exp":"0x1p30"}`),
		jtToken(`{"exp":1e308}`),
		jtToken(`{"exp":-1}`),
		jtToken(`{"exp":4.9e-324}`),
		jtToken(`{"exp":[1]}`),
		jtToken(`[]`),
		jtToken(`{"exp":1,"exp":"2"}`),
		jtToken(`{"a":{"b":{"c":[[[[[[]]]]]]}},"exp":99}`),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		exp, ok := jwtExpiry(token)
		if !ok {
			if !exp.IsZero() {
				t.Fatalf("not ok but time %v", exp)
			}
			return
		}
		if !exp.After(time.Unix(0, 0)) {
			t.Fatalf("ok with non-positive time %v", exp)
		}
		if exp.Year() > 9999 {
			t.Fatalf("ok with time %v after year 9999", exp)
		}
		if len(token) > maxJWTLength || strings.Count(token, ".") != 2 {
			t.Fatalf("ok for a token that is not a 3-part JWS (%d bytes)", len(token))
		}
	})
}
