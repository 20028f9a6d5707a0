package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
)

// configHash digests everything a token depends on: the provider spec and
// the credentials. A different digest on the target Secret means the token
// there was obtained with other inputs and a new one is due. SHA-256 is
// one-way; the digest is stored only on the target Secret, whose readers
// already hold the token those inputs produce.
func configHash(spec *v1alpha1.ProviderSpec, in *inputs) string {
	h := sha256.New()
	p, _ := json.Marshal(spec) // a struct of strings, maps and slices: cannot fail
	h.Write([]byte("tokensync/config/v1\x00"))
	h.Write(p)
	for _, v := range []string{in.clientID, in.clientSecret, in.username, in.password, string(in.privateKey)} {
		h.Write([]byte{0})
		h.Write([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// inputsVersion digests what a config hash depends on besides the
// credentials' values: the provider spec, the credentials reference, and
// the resourceVersion of the credentials Secret (which changes with every
// write to it). Equal inputs versions mean equal config hashes.
func inputsVersion(obj *v1alpha1.OAuthClientToken, credentialsVersion string) string {
	h := sha256.New()
	p, _ := json.Marshal(&obj.Spec.Provider) // as in configHash: cannot fail
	ref, _ := json.Marshal(&obj.Spec.CredentialsRef)
	h.Write([]byte("tokensync/inputs/v1\x00"))
	for _, b := range [][]byte{p, ref, []byte(credentialsVersion)} {
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tokenHash digests an access token so that an edited Secret is detected.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte("tokensync/token/v1\x00" + token))
	return hex.EncodeToString(sum[:])
}

// storedToken is what a target Secret records about the token it holds.
type storedToken struct {
	// accessToken is the token, with the default keys; empty with
	// target.data templates, where data holds what they rendered.
	accessToken string
	data        map[string][]byte
	tokenType   string
	issuedAt    time.Time
	expiresAt   time.Time
	renewAt     time.Time
	// inputsVersion is recorded with the config hash (see inputsVersion).
	inputsVersion string
}

// readStoredToken returns the token held by a target Secret written by
// tokensync when it is intact and was obtained with the inputs digested in
// wantHash: the access token (or, with templates, the rendered keys and
// the templates) matches its digest and the timing annotations parse. With
// the default keys, other keys may have been edited; secretApplyConfig
// repairs them from what this returns without a new token request.
func readStoredToken(obj *v1alpha1.OAuthClientToken, s *corev1.Secret, wantHash string) (storedToken, bool) {
	if s == nil || s.DeletionTimestamp != nil {
		return storedToken{}, false
	}
	ann := s.Annotations
	if ann[v1alpha1.ConfigHashAnnotation] != wantHash {
		return storedToken{}, false
	}
	st := storedToken{tokenType: ann[v1alpha1.TokenTypeAnnotation]}
	if st.tokenType == "" {
		return storedToken{}, false
	}
	if usesTemplates(obj) {
		st.data = map[string][]byte{}
		for k := range obj.Spec.Target.Data {
			v, ok := s.Data[k]
			if !ok {
				return storedToken{}, false
			}
			st.data[k] = v
		}
		if ann[v1alpha1.DataHashAnnotation] != dataHash(obj, st.data) {
			return storedToken{}, false
		}
	} else {
		st.accessToken = string(s.Data[v1alpha1.AccessTokenKey])
		if st.accessToken == "" || ann[v1alpha1.TokenHashAnnotation] != tokenHash(st.accessToken) {
			return storedToken{}, false
		}
	}
	for key, t := range map[string]*time.Time{
		v1alpha1.IssuedAtAnnotation:  &st.issuedAt,
		v1alpha1.ExpiresAtAnnotation: &st.expiresAt,
		v1alpha1.RenewAtAnnotation:   &st.renewAt,
	} {
		v, err := time.Parse(time.RFC3339, ann[key])
		if err != nil {
			return storedToken{}, false
		}
		*t = v
	}
	return st, true
}

func usesTemplates(obj *v1alpha1.OAuthClientToken) bool {
	return obj.Spec.Target != nil && len(obj.Spec.Target.Data) > 0
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// secretApplyConfig builds the server-side apply configuration of the target
// Secret: only the fields tokensync owns. With creationPolicy Merge the type
// is left to the Secret's creator and no ownerReference is set.
func secretApplyConfig(obj *v1alpha1.OAuthClientToken, policy v1alpha1.CreationPolicy, st storedToken, hash string) *corev1ac.SecretApplyConfiguration {
	target := obj.Spec.Target
	labels := map[string]string{}
	annotations := map[string]string{}
	secretType := corev1.SecretTypeOpaque
	if target != nil {
		for k, v := range target.Labels {
			labels[k] = v
		}
		for k, v := range target.Annotations {
			annotations[k] = v
		}
		if target.Type != "" {
			secretType = target.Type
		}
	}
	labels[v1alpha1.ManagedLabel] = "true"
	annotations[v1alpha1.OwnerAnnotation] = obj.Name
	annotations[v1alpha1.ConfigHashAnnotation] = hash
	data := st.data
	if usesTemplates(obj) {
		annotations[v1alpha1.DataHashAnnotation] = dataHash(obj, data)
	} else {
		annotations[v1alpha1.TokenHashAnnotation] = tokenHash(st.accessToken)
		data = map[string][]byte{
			v1alpha1.AccessTokenKey: []byte(st.accessToken),
			v1alpha1.TokenTypeKey:   []byte(st.tokenType),
			v1alpha1.ExpiresAtKey:   []byte(formatTime(st.expiresAt)),
		}
	}
	annotations[v1alpha1.TokenTypeAnnotation] = st.tokenType
	annotations[v1alpha1.IssuedAtAnnotation] = formatTime(st.issuedAt)
	annotations[v1alpha1.ExpiresAtAnnotation] = formatTime(st.expiresAt)
	annotations[v1alpha1.RenewAtAnnotation] = formatTime(st.renewAt)
	if st.inputsVersion != "" {
		annotations[v1alpha1.InputsVersionAnnotation] = st.inputsVersion
	}

	ac := corev1ac.Secret(obj.TargetName(), obj.Namespace).
		WithLabels(labels).
		WithAnnotations(annotations).
		WithData(data)
	if policy != v1alpha1.CreationPolicyMerge {
		ac = ac.WithType(secretType)
	}
	if policy == v1alpha1.CreationPolicyOwner {
		ac = ac.WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind("OAuthClientToken").
			WithName(obj.Name).
			WithUID(obj.UID).
			WithController(true).
			WithBlockOwnerDeletion(true))
	}
	return ac
}

// ownedBy reports whether Secret metadata says the Secret was written by
// tokensync for the named OAuthClientToken.
func ownedBy(m metav1.Object, name string) bool {
	return m.GetLabels()[v1alpha1.ManagedLabel] == "true" && m.GetAnnotations()[v1alpha1.OwnerAnnotation] == name
}

// secretUpToDate reports whether the live Secret already has every field of
// the apply configuration, so that applying it would change nothing. The
// inputs version is left out: it only saves reading the credentials, and
// is recorded with the next write rather than by a write of its own (a
// manager upgraded to record it, or a credentials Secret edited without a
// change to the credentials, costs reads until the next token, not a
// write per object).
func secretUpToDate(live *corev1.Secret, ac *corev1ac.SecretApplyConfiguration) bool {
	if live == nil {
		return false
	}
	for k, v := range ac.Data {
		if string(live.Data[k]) != string(v) {
			return false
		}
	}
	for k, v := range ac.Labels {
		if got, ok := live.Labels[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range ac.Annotations {
		if k == v1alpha1.InputsVersionAnnotation {
			continue
		}
		if got, ok := live.Annotations[k]; !ok || got != v {
			return false
		}
	}
	if ac.Type != nil && live.Type != *ac.Type {
		return false
	}
	for _, want := range ac.OwnerReferences {
		found := false
		for _, got := range live.OwnerReferences {
			if got.UID == *want.UID && got.Controller != nil && *got.Controller {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
