package secrets

import (
	"encoding/binary"
	"errors"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// The manager's cache holds every Secret tokensync manages, and Inspect
// reads them back from it. Each carries a dozen record annotations and a
// few data keys; as Go maps they cost about 1.4 KiB per Secret (a map of
// more than 8 entries takes two groups of 8 slots, and each value is an
// allocation of its own). The cache keeps them folded instead (Fold, from
// its transform): both maps packed into one byte string, the keys
// tokensync writes spelled as one byte, held as the only data entry under
// foldedKey. read unfolds each Secret it takes from the cache before
// anything looks at it (Unfold); nothing else reads Secrets from the
// cache.

// foldedKey is the data key a folded Secret keeps its annotations and data
// under. It is not a valid data key (the API server allows only
// alphanumerics, '-', '_' and '.'), so no Secret read from the API server
// carries it.
const foldedKey = "tokensync folded annotations and data"

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

// Entry kinds in a fold.
const (
	foldedAnnotation byte = 'a'
	foldedData       byte = 'd'
)

// Fold packs s's annotations and data into one data entry, in place, for
// the manager's cache. A Secret with neither, or one already folded, is
// left as it is.
func Fold(s *corev1.Secret) {
	if len(s.Annotations)+len(s.Data) == 0 {
		return
	}
	if _, ok := s.Data[foldedKey]; ok {
		return
	}
	size := 0
	for k, v := range s.Annotations {
		size += foldedSize(k, len(v))
	}
	for k, v := range s.Data {
		size += foldedSize(k, len(v))
	}
	// One allocation of the exact size: it is what the cache keeps.
	b := make([]byte, 0, size)
	for k, v := range s.Annotations {
		b = appendFolded(b, foldedAnnotation, k, v)
	}
	for k, v := range s.Data {
		b = appendFolded(b, foldedData, k, v)
	}
	s.Annotations, s.Data = nil, map[string][]byte{foldedKey: b}
}

// foldedSize is the bytes appendFolded appends for key k and a value of n
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

func appendFolded[V string | []byte](b []byte, kind byte, k string, v V) []byte {
	b = append(b, kind)
	if c, ok := foldedCode[k]; ok {
		b = append(b, c)
	} else {
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// errFolded is a fold that Fold did not write.
var errFolded = errors.New("malformed folded Secret")

// Unfold restores, in place, the annotations and data of a Secret Fold
// packed. A Secret that is not folded is left as it is. On error (which
// only a fold Fold did not write can cause) s has no annotations and no
// data: it reads as a Secret tokensync knows nothing of.
func Unfold(s *corev1.Secret) error {
	b, ok := s.Data[foldedKey]
	if !ok {
		return nil
	}
	// A first pass checks the fold and counts its entries, so that each
	// map is made once at its size.
	nAnn, nData := 0, 0
	for rest := b; len(rest) > 0; {
		kind, _, _, next, err := nextFolded(rest)
		if err != nil {
			s.Annotations, s.Data = nil, nil
			return err
		}
		if kind == foldedAnnotation {
			nAnn++
		} else {
			nData++
		}
		rest = next
	}
	var ann map[string]string
	var data map[string][]byte
	if nAnn > 0 {
		ann = make(map[string]string, nAnn)
	}
	if nData > 0 {
		data = make(map[string][]byte, nData)
	}
	for len(b) > 0 {
		kind, k, v, rest, _ := nextFolded(b)
		b = rest
		if kind == foldedAnnotation {
			ann[k] = string(v)
		} else {
			data[k] = append([]byte(nil), v...)
		}
	}
	s.Annotations, s.Data = ann, data
	return nil
}

func nextFolded(b []byte) (kind byte, k string, v, rest []byte, err error) {
	if len(b) < 2 || (b[0] != foldedAnnotation && b[0] != foldedData) {
		return 0, "", nil, nil, errFolded
	}
	kind, code, b := b[0], b[1], b[2:]
	switch {
	case code == 0:
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return 0, "", nil, nil, errFolded
		}
		k, b = string(b[w:w+int(n)]), b[w+int(n):]
	case int(code) <= len(foldedKeys):
		k = foldedKeys[code-1]
	default:
		return 0, "", nil, nil, errFolded
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return 0, "", nil, nil, errFolded
	}
	return kind, k, b[w : w+int(n)], b[w+int(n):], nil
}
