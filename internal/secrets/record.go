package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// Token is what a target Secret records of the token it holds. Its record
// (the oauth.tokensync.io/* annotations) is signed with a key only the
// manager holds, so that someone who may edit the Secret cannot make
// tokensync trust a token, a time or a set of inputs it did not write.
type Token struct {
	// AccessToken is the token, written under the default keys; empty with
	// target.data templates, where Data holds what they rendered.
	AccessToken string
	Data        map[string][]byte
	TokenType   string
	IssuedAt    time.Time
	// ExpiresAt is the expiry the endpoint gave (or IssuedAt plus the
	// default lifetime when LifetimeDefaulted: the endpoint said nothing,
	// and the expiry follows refresh.defaultLifetime).
	ExpiresAt         time.Time
	LifetimeDefaulted bool
	// RenewAt is recorded for people reading the Secret; tokensync
	// recomputes it from the spec and never reads it back.
	RenewAt time.Time
	// ConfigHash digests the inputs the token was obtained with.
	ConfigHash string
	// InputsVersion digests the versions of the objects those inputs were
	// read from (see inputs.Version).
	InputsVersion string
	// NotAfter, when set, is when what the token was obtained with expires
	// (the subject of a token exchange): it is renewed before then.
	NotAfter time.Time
	// IssuedTokenType is the issued_token_type of a token exchange.
	IssuedTokenType string
}

// Signer signs and verifies the records on target Secrets with HMAC-SHA256.
type Signer struct{ key []byte }

// NewSigner returns a Signer for key, which must be at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("the signing key must be at least 32 bytes")
	}
	return &Signer{key: slices.Clone(key)}, nil
}

// expiry sources recorded in ExpirySourceAnnotation.
const (
	sourceEndpoint = "endpoint"
	sourceDefault  = "default"
)

// recordAnnotations returns the annotations recording tok on Secret
// ns/name written for owner, signature included. contentHash is the digest
// of what the Secret's data holds (tokenHash or dataHash).
func (s *Signer) recordAnnotations(ns, name, owner string, created bool, tok *Token, contentHash string) map[string]string {
	a := map[string]string{
		v1alpha1.OwnerAnnotation:         owner,
		v1alpha1.ConfigHashAnnotation:    tok.ConfigHash,
		v1alpha1.TokenTypeAnnotation:     tok.TokenType,
		v1alpha1.IssuedAtAnnotation:      stamp(tok.IssuedAt),
		v1alpha1.ExpiresAtAnnotation:     stamp(tok.ExpiresAt),
		v1alpha1.ExpirySourceAnnotation:  sourceEndpoint,
		v1alpha1.InputsVersionAnnotation: tok.InputsVersion,
	}
	if tok.LifetimeDefaulted {
		a[v1alpha1.ExpirySourceAnnotation] = sourceDefault
	}
	if created {
		a[v1alpha1.OriginAnnotation] = OriginCreated
	}
	if tok.Data != nil {
		a[v1alpha1.DataHashAnnotation] = contentHash
	} else {
		a[v1alpha1.TokenHashAnnotation] = contentHash
	}
	if !tok.RenewAt.IsZero() {
		a[v1alpha1.RenewAtAnnotation] = stamp(tok.RenewAt)
	}
	if !tok.NotAfter.IsZero() {
		a[v1alpha1.NotAfterAnnotation] = stamp(tok.NotAfter)
	}
	a[v1alpha1.SignatureAnnotation] = s.mac(ns, name, a)
	return a
}

// signed lists the annotations the signature covers, in order. renew-at is
// not among them: it is never read back. The origin is: it decides who may
// take the Secret over.
var signed = []string{
	v1alpha1.OwnerAnnotation, v1alpha1.ConfigHashAnnotation, v1alpha1.InputsVersionAnnotation,
	v1alpha1.TokenHashAnnotation, v1alpha1.DataHashAnnotation, v1alpha1.TokenTypeAnnotation,
	v1alpha1.IssuedAtAnnotation, v1alpha1.ExpiresAtAnnotation, v1alpha1.ExpirySourceAnnotation,
	v1alpha1.NotAfterAnnotation, v1alpha1.OriginAnnotation,
}

// intact reports whether sec's record is signed by this Signer, whatever
// its data holds.
func (s *Signer) intact(sec *corev1.Secret) bool {
	sig := sec.Annotations[v1alpha1.SignatureAnnotation]
	return sig != "" && hmac.Equal([]byte(sig), []byte(s.mac(sec.Namespace, sec.Name, sec.Annotations)))
}

func (s *Signer) mac(ns, name string, a map[string]string) string {
	m := hmac.New(sha256.New, s.key)
	field := func(v string) { fmt.Fprintf(m, "%d:%s", len(v), v) }
	field("tokensync/record/v1")
	field(ns)
	field(name)
	for _, k := range signed {
		field(k)
		field(a[k])
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify returns the token Secret s records for owner when the record is
// intact and signed by this Signer, and the data holds what it says: the
// access token under the default keys or, with templates (tpls non-nil),
// the rendered keys of exactly these templates.
func (s *Signer) verify(sec *corev1.Secret, owner string, tpls map[string]v1alpha1.DataTemplate) (*Token, bool) {
	if sec == nil || sec.DeletionTimestamp != nil {
		return nil, false
	}
	a := sec.Annotations
	if a[v1alpha1.OwnerAnnotation] != owner || a[v1alpha1.SignatureAnnotation] == "" {
		return nil, false
	}
	if !hmac.Equal([]byte(a[v1alpha1.SignatureAnnotation]), []byte(s.mac(sec.Namespace, sec.Name, a))) {
		return nil, false
	}
	tok := &Token{
		TokenType:         a[v1alpha1.TokenTypeAnnotation],
		ConfigHash:        a[v1alpha1.ConfigHashAnnotation],
		InputsVersion:     a[v1alpha1.InputsVersionAnnotation],
		LifetimeDefaulted: a[v1alpha1.ExpirySourceAnnotation] == sourceDefault,
	}
	if tok.TokenType == "" || tok.ConfigHash == "" {
		return nil, false
	}
	for key, t := range map[string]*time.Time{v1alpha1.IssuedAtAnnotation: &tok.IssuedAt, v1alpha1.ExpiresAtAnnotation: &tok.ExpiresAt} {
		v, err := time.Parse(time.RFC3339, a[key])
		if err != nil {
			return nil, false
		}
		*t = v
	}
	if v := a[v1alpha1.NotAfterAnnotation]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, false
		}
		tok.NotAfter = t
	}
	if len(tpls) > 0 {
		tok.Data = map[string][]byte{}
		for k := range tpls {
			v, ok := sec.Data[k]
			if !ok {
				return nil, false
			}
			tok.Data[k] = v
		}
		if a[v1alpha1.DataHashAnnotation] != dataHash(tpls, tok.Data) || a[v1alpha1.TokenHashAnnotation] != "" {
			return nil, false
		}
	} else {
		tok.AccessToken = string(sec.Data[v1alpha1.AccessTokenKey])
		if tok.AccessToken == "" || a[v1alpha1.TokenHashAnnotation] != tokenHash(tok.AccessToken) || a[v1alpha1.DataHashAnnotation] != "" {
			return nil, false
		}
	}
	return tok, true
}

// tokenHash digests an access token so that an edited Secret is detected.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte("tokensync/token/v1\x00" + token))
	return hex.EncodeToString(sum[:])
}

// dataHash digests the templates and what they rendered, so that an edited
// key or a changed template is detected.
func dataHash(tpls map[string]v1alpha1.DataTemplate, data map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte("tokensync/data/v1\x00"))
	for _, k := range slices.Sorted(maps.Keys(tpls)) {
		fmt.Fprintf(h, "%d:%s%d:%s%d:", len(k), k, len(tpls[k]), tpls[k], len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
