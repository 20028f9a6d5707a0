package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a stand-in for a kube-apiserver's ServiceAccount token issuer
// in unit tests: it serves /.well-known/openid-configuration and
// /openid/v1/jwks on a loopback httptest server, as the API server does,
// and mints ServiceAccount-shaped JWTs (ES256) with its key.
type Issuer struct {
	// URL is the issuer identifier (iss) and where it serves.
	URL string

	mu          sync.Mutex
	keys        []jose.JSONWebKey      // private keys; the last one signs
	requireAuth atomic.Pointer[string] // bearer token the documents need, if any
	fetches     atomic.Int32
	close       func()
}

// NewIssuer starts an Issuer with one signing key.
func NewIssuer() (*Issuer, error) {
	i := &Issuer{}
	if err := i.RotateKey(); err != nil {
		return nil, err
	}
	ts := httptest.NewServer(http.HandlerFunc(i.serve))
	i.URL, i.close = ts.URL, ts.Close
	return i, nil
}

// Close stops the Issuer.
func (i *Issuer) Close() { i.close() }

// RotateKey adds a new signing key (with a new key ID); earlier keys stay
// published, as the API server does with several --service-account-key-file.
func (i *Issuer) RotateKey() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tokenserver: issuer key: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, jose.JSONWebKey{Key: key, KeyID: fmt.Sprintf("key-%d", len(i.keys)+1), Algorithm: string(jose.ES256), Use: "sig"})
	return nil
}

// RequireBearer makes the documents readable only with this bearer token
// ("" serves them anonymously again).
func (i *Issuer) RequireBearer(token string) { i.requireAuth.Store(&token) }

// Fetches is the number of discovery and JWKS requests served.
func (i *Issuer) Fetches() int { return int(i.fetches.Load()) }

// ServiceAccountSubject is the sub of a Kubernetes ServiceAccount token.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Claims shape a minted token; zero fields get defaults.
type Claims struct {
	Subject  string
	Audience []string
	// IssuedAt defaults to now; Expiry to IssuedAt + 1h; NotBefore to
	// IssuedAt.
	IssuedAt, NotBefore, Expiry time.Time
	// Issuer overrides iss (to mint a token another issuer would).
	Issuer string
}

// Mint signs a JWT with the newest key, as the TokenRequest API would.
func (i *Issuer) Mint(c Claims) (string, error) {
	i.mu.Lock()
	key := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	return mintWith(key.Key.(crypto.Signer), key.KeyID, i.URL, c)
}

// MintForeign signs a JWT like Mint but with a key the Issuer does not
// publish, to test that its signature is refused.
func (i *Issuer) MintForeign(c Claims) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	kid := i.keys[len(i.keys)-1].KeyID
	i.mu.Unlock()
	return mintWith(key, kid, i.URL, c)
}

func mintWith(key crypto.Signer, kid, iss string, c Claims) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(time.Hour)
	}
	if c.Issuer != "" {
		iss = c.Issuer
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: iss, Subject: c.Subject, Audience: c.Audience,
		IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.NotBefore), Expiry: jwt.NewNumericDate(c.Expiry),
		ID: newToken(""),
	}).Serialize()
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if want := i.requireAuth.Load(); want != nil && *want != "" && r.Header.Get("Authorization") != "Bearer "+*want {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	var doc any
	switch r.URL.Path {
	case wellKnownOpenID:
		doc = map[string]any{
			"issuer": i.URL, "jwks_uri": i.URL + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		}
	case "/openid/v1/jwks":
		set := jose.JSONWebKeySet{}
		for _, k := range i.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		doc = set
	default:
		http.NotFound(w, r)
		return
	}
	i.fetches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}
