package secrets

import (
	"encoding/binary"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// The manager's cache holds every Secret tokensync manages, and Inspect
// reads them back from it. Each carries a dozen record annotations, a few
// data keys, a UID and an owner reference. As Go maps, a slice and their
// strings, a Secret with an 800-byte token costs its informer 3,038 bytes,
// and folded 1,893 (TestCachedSecretCostsFewBytes): a Go map takes a group
// of 8 slots even for one entry, and each value is an allocation of its
// own.
// The cache keeps them folded instead (Fold, from its transform): all of
// them packed into one string, the keys tokensync writes spelled as one
// byte, held in the Secret's generateName behind foldMark. read unfolds
// each Secret it takes from the cache before anything looks at it
// (Unfold); nothing else reads Secrets from the cache.

// foldMark starts a fold in a Secret's generateName. The API server admits
// only a DNS subdomain prefix there, so no Secret read from it starts
// with a NUL byte (TestAttack7_APIRejectsNULGenerateName). Should one ever
// be admitted, it still could not pass for a fold: every Secret read from
// the API server has a UID, and a folded one has none (folded).
const foldMark = "\x00"

// folded reports whether s holds a fold: its generateName starts with
// foldMark and it has no UID.
func folded(s *corev1.Secret) bool {
	return s.UID == "" && strings.HasPrefix(s.GenerateName, foldMark)
}

// foldedKeys are the keys a fold spells as one byte: the byte is the
// index plus one (0: the key follows, spelled out). Append only: a code
// never changes meaning within a process, and folds never outlive it.
var foldedKeys = []string{
	v1alpha1.OwnerAnnotation, v1alpha1.ConfigHashAnnotation, v1alpha1.InputsVersionAnnotation,
	v1alpha1.TokenHashAnnotation, v1alpha1.DataHashAnnotation, v1alpha1.TokenTypeAnnotation,
	v1alpha1.IssuedAtAnnotation, v1alpha1.ExpiresAtAnnotation, v1alpha1.RenewAtAnnotation,
	v1alpha1.ExpirySourceAnnotation, v1alpha1.NotAfterAnnotation, v1alpha1.OriginAnnotation,
	v1alpha1.SignatureAnnotation, v1alpha1.TargetHashAnnotation, v1alpha1.StateOfAnnotation,
	v1alpha1.RefreshExpiresAtAnnotation,
	v1alpha1.AccessTokenKey, v1alpha1.TokenTypeKey, v1alpha1.ExpiresAtKey, v1alpha1.RefreshTokenKey,
}

var foldedCode = func() map[string]byte {
	m := make(map[string]byte, len(foldedKeys))
	for i, k := range foldedKeys {
		m[k] = byte(i + 1)
	}
	return m
}()

// Entry kinds in a fold. Annotations and data have a key; the others an
// empty one.
const (
	foldedAnnotation   byte = 'a'
	foldedData         byte = 'd'
	foldedGenerateName byte = 'g'
	foldedUID          byte = 'u'
	foldedOwnerRef     byte = 'o' // the reference in protobuf
)

// Fold packs s's annotations, data, UID, owner references and
// generateName into one string, in place, for the manager's cache. A
// Secret with none of them, or one already folded, is left as it is; so
// is one whose owner references do not encode.
func Fold(s *corev1.Secret) {
	if folded(s) || len(s.Annotations)+len(s.Data)+len(s.OwnerReferences) == 0 && s.UID == "" && s.GenerateName == "" {
		return
	}
	refs := make([][]byte, len(s.OwnerReferences))
	for i := range s.OwnerReferences {
		b, err := s.OwnerReferences[i].Marshal()
		if err != nil {
			return
		}
		refs[i] = b
	}
	size := len(foldMark)
	if s.GenerateName != "" {
		size += foldedSize("", len(s.GenerateName))
	}
	if s.UID != "" {
		size += foldedSize("", len(s.UID))
	}
	for k, v := range s.Annotations {
		size += foldedSize(k, len(v))
	}
	for k, v := range s.Data {
		size += foldedSize(k, len(v))
	}
	for _, r := range refs {
		size += foldedSize("", len(r))
	}
	// One allocation of the exact size: it is what the cache keeps.
	var b strings.Builder
	b.Grow(size)
	b.WriteString(foldMark)
	for k, v := range s.Annotations {
		appendFolded(&b, foldedAnnotation, k, v)
	}
	for k, v := range s.Data {
		appendFolded(&b, foldedData, k, v)
	}
	for _, r := range refs {
		appendFolded(&b, foldedOwnerRef, "", r)
	}
	if s.GenerateName != "" {
		appendFolded(&b, foldedGenerateName, "", s.GenerateName)
	}
	if s.UID != "" {
		appendFolded(&b, foldedUID, "", string(s.UID))
	}
	s.Annotations, s.Data, s.OwnerReferences, s.UID = nil, nil, nil, ""
	s.GenerateName = b.String()
}

// foldedSize is the bytes appendFolded writes for key k and a value of n
// bytes.
func foldedSize(k string, n int) int {
	size := 2 + uvarintLen(n) + n
	if _, ok := foldedCode[k]; !ok {
		size += uvarintLen(len(k)) + len(k)
	}
	return size
}

func uvarintLen(n int) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(n))
}

func appendFolded[V string | []byte](b *strings.Builder, kind byte, k string, v V) {
	var n [binary.MaxVarintLen64]byte
	b.WriteByte(kind)
	if c, ok := foldedCode[k]; ok {
		b.WriteByte(c)
	} else {
		b.WriteByte(0)
		b.Write(binary.AppendUvarint(n[:0], uint64(len(k))))
		b.WriteString(k)
	}
	b.Write(binary.AppendUvarint(n[:0], uint64(len(v))))
	b.WriteString(string(v))
}

// errFolded is a fold that Fold did not write.
var errFolded = errors.New("malformed folded Secret")

// Unfold restores, in place, what Fold packed into a Secret. A Secret that
// is not folded is left as it is. On error (which only a fold Fold did not
// write can cause) s has no annotations, data, UID or owner references:
// it reads as a Secret tokensync knows nothing of.
func Unfold(s *corev1.Secret) error {
	if !folded(s) {
		return nil
	}
	f := s.GenerateName[len(foldMark):]
	s.GenerateName = ""
	// A first pass checks the fold and counts its entries, so that each
	// map and slice is made once at its size.
	nAnn, nData, nRefs := 0, 0, 0
	for rest := f; len(rest) > 0; {
		kind, _, _, next, err := nextFolded(rest)
		if err != nil {
			return unfoldFailed(s)
		}
		switch kind {
		case foldedAnnotation:
			nAnn++
		case foldedData:
			nData++
		case foldedOwnerRef:
			nRefs++
		}
		rest = next
	}
	var (
		ann  map[string]string
		data map[string][]byte
		refs []metav1.OwnerReference
		uid  types.UID
		gen  string
	)
	if nAnn > 0 {
		ann = make(map[string]string, nAnn)
	}
	if nData > 0 {
		data = make(map[string][]byte, nData)
	}
	if nRefs > 0 {
		refs = make([]metav1.OwnerReference, 0, nRefs)
	}
	for len(f) > 0 {
		kind, k, v, rest, _ := nextFolded(f)
		f = rest
		switch kind {
		case foldedAnnotation:
			ann[k] = v // strings are immutable: it may share the fold's bytes
		case foldedData:
			data[k] = []byte(v)
		case foldedOwnerRef:
			var r metav1.OwnerReference
			if err := r.Unmarshal([]byte(v)); err != nil {
				return unfoldFailed(s)
			}
			refs = append(refs, r)
		case foldedGenerateName:
			gen = v
		case foldedUID:
			uid = types.UID(v)
		}
	}
	s.Annotations, s.Data, s.OwnerReferences, s.UID, s.GenerateName = ann, data, refs, uid, gen
	return nil
}

func unfoldFailed(s *corev1.Secret) error {
	s.Annotations, s.Data, s.OwnerReferences, s.UID, s.GenerateName = nil, nil, nil, "", ""
	return errFolded
}

func nextFolded(f string) (kind byte, k, v, rest string, err error) {
	if len(f) < 2 {
		return 0, "", "", "", errFolded
	}
	kind, code, f := f[0], f[1], f[2:]
	switch kind {
	case foldedAnnotation, foldedData:
	case foldedGenerateName, foldedUID, foldedOwnerRef:
		if code != 0 {
			return 0, "", "", "", errFolded
		}
	default:
		return 0, "", "", "", errFolded
	}
	switch {
	case code == 0:
		if k, f, err = nextString(f); err != nil {
			return 0, "", "", "", err
		}
	case int(code) <= len(foldedKeys):
		k = foldedKeys[code-1]
	default:
		return 0, "", "", "", errFolded
	}
	if kind != foldedAnnotation && kind != foldedData && k != "" {
		return 0, "", "", "", errFolded
	}
	if v, f, err = nextString(f); err != nil {
		return 0, "", "", "", err
	}
	return kind, k, v, f, nil
}

// nextString reads a uvarint length and that many bytes.
func nextString(f string) (s, rest string, err error) {
	n, w := uvarintString(f)
	if w <= 0 || n > uint64(len(f)-w) {
		return "", "", errFolded
	}
	return f[w : w+int(n)], f[w+int(n):], nil
}

func uvarintString(f string) (uint64, int) {
	var buf [binary.MaxVarintLen64]byte
	return binary.Uvarint(buf[:copy(buf[:], f)])
}
