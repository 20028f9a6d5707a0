package inputs

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/tokensync/tokensync/api/v1alpha1"
	"github.com/tokensync/tokensync/internal/oauth"
)

func object() *v1alpha1.OAuthClientToken {
	o := &v1alpha1.OAuthClientToken{}
	o.Namespace = "ns"
	o.Spec.CredentialsRef = &v1alpha1.CredentialsReference{Name: "creds"}
	o.Spec.Provider.TokenURL = "https://auth.example.com/token"
	o.Spec.Provider.TLS = &v1alpha1.TLSSpec{
		CABundle:                   &v1alpha1.CABundleSource{ConfigMapRef: &v1alpha1.KeySelector{Name: "ca"}},
		ClientCertificateSecretRef: &v1alpha1.LocalSecretReference{Name: "tls"},
	}
	return o
}

// Every object an input is read from counts: credentials, CA bundle and
// client certificate.
func TestRefsAndVersion(t *testing.T) {
	o := object()
	refs := Refs(o)
	want := []Ref{{SecretKind, "creds"}, {ConfigMapKind, "ca"}, {SecretKind, "tls"}}
	if len(refs) != len(want) {
		t.Fatalf("refs %v", refs)
	}
	for i := range want {
		if refs[i] != want[i] {
			t.Fatalf("refs %v, want %v", refs, want)
		}
	}
	rvs := map[string]string{"Secret/creds": "1", "ConfigMap/ca": "2", "Secret/tls": "3"}
	r := &Reader{Versions: func(kind Kind, key types.NamespacedName) (string, bool) {
		rv, ok := rvs[string(kind)+"/"+key.Name]
		return rv, ok
	}}
	v1, ok := r.Version(o)
	if !ok {
		t.Fatal("no version with every object known")
	}
	for _, k := range []string{"Secret/creds", "ConfigMap/ca", "Secret/tls"} {
		rvs[k] += "0"
		v2, _ := r.Version(o)
		if v2 == v1 {
			t.Fatalf("a new version of %s leaves the inputs version unchanged", k)
		}
		rvs[k] = rvs[k][:len(rvs[k])-1]
	}
	delete(rvs, "Secret/tls")
	if _, ok := r.Version(o); ok {
		t.Fatal("a version with an object unknown")
	}
	o2 := object()
	o2.Spec.Provider.Scopes = []string{"read"}
	rvs["Secret/tls"] = "3"
	if v3, _ := r.Version(o2); v3 == v1 {
		t.Fatal("the provider spec is not in the inputs version")
	}
}

// The config hash covers the credentials and the TLS material.
func TestConfigHash(t *testing.T) {
	o := object()
	base := &Inputs{ClientID: "id", ClientSecret: "secret", TLS: &oauth.TLSConfig{CAPEM: []byte("ca"), CertPEM: []byte("cert"), KeyPEM: []byte("key")}}
	h := configHash(o, base)
	for name, change := range map[string]func(*Inputs){
		"client id":     func(in *Inputs) { in.ClientID = "other" },
		"client secret": func(in *Inputs) { in.ClientSecret = "other" },
		"CA":            func(in *Inputs) { in.TLS.CAPEM = []byte("other") },
		"certificate":   func(in *Inputs) { in.TLS.CertPEM = []byte("other") },
		"key":           func(in *Inputs) { in.TLS.KeyPEM = []byte("other") },
		"boundary":      func(in *Inputs) { in.ClientID, in.ClientSecret = "ids", "ecret" },
		"subject":       func(in *Inputs) { in.Subject = "another subject token" },
	} {
		in := *base
		tls := *base.TLS
		in.TLS = &tls
		change(&in)
		if configHash(o, &in) == h {
			t.Errorf("a change of the %s leaves the config hash unchanged", name)
		}
	}
}

func TestURLPolicy(t *testing.T) {
	for _, tc := range []struct {
		url    string
		policy URLPolicy
		ok     bool
	}{
		{"https://auth.example.com/token", URLPolicy{}, true},
		{"http://auth.example.com/token", URLPolicy{}, false},
		{"http://auth.example.com/token", URLPolicy{AllowInsecureHTTP: true}, true},
		{"https://169.254.169.254/token", URLPolicy{}, false},
		{"https://169.254.169.254/token", URLPolicy{AllowLinkLocal: true}, true},
		{"https://10.0.0.1/token", URLPolicy{}, true},
		{"https://10.0.0.1/token", URLPolicy{DenyPrivateNetworks: true}, false},
		{"https://127.0.0.1/token", URLPolicy{DenyPrivateNetworks: true}, false},
		{"https://[fd00::1]/token", URLPolicy{DenyPrivateNetworks: true}, false},
	} {
		if err := tc.policy.Check("tokenURL", tc.url); (err == nil) != tc.ok {
			t.Errorf("%s with %+v: %v", tc.url, tc.policy, err)
		}
	}
}
