package tokenserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"time"
)

// CA is a throw-away certificate authority for tests: an ECDSA P-256
// self-signed certificate valid for one day, issuing server and client
// certificates for TLS and tls_client_auth tests.
type CA struct {
	// CertPEM is the CA certificate, PEM encoded, for clients to trust.
	CertPEM []byte

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA returns a new CA whose subject Common Name is commonName.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tokenserver: CA key: %w", err)
	}
	tmpl, err := template(commonName)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tokenserver: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tokenserver: CA certificate: %w", err)
	}
	return &CA{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert: cert, key: key}, nil
}

// ServerCert issues a server certificate for hosts, each a DNS name or an
// IP address (the first one is also the Common Name).
func (ca *CA) ServerCert(hosts ...string) (tls.Certificate, error) {
	cn := "tokenserver"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl, err := template(cn)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, key, err := ca.issue(tmpl)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// ClientCert issues a client certificate with subject Common Name
// commonName, and returns it and its key (PKCS#8, "PRIVATE KEY") as PEM.
func (ca *CA) ClientCert(commonName string) (certPEM, keyPEM []byte, err error) {
	tmpl, err := template(commonName)
	if err != nil {
		return nil, nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	cert, key, err := ca.issue(tmpl)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = pkcs8PEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), keyPEM, nil
}

// Pool is a certificate pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// issue signs tmpl, with a new P-256 key, by the CA.
func (ca *CA) issue(tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenserver: key: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenserver: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenserver: certificate: %w", err)
	}
	return cert, key, nil
}

// template is a certificate valid from a few minutes ago for one day.
func template(commonName string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tokenserver: serial number: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
	}, nil
}

// StartTLS serves the Server over TLS 1.2 or later with serverCert on a
// loopback httptest server; the token endpoint is url + "/token" (or url +
// Options.Path). When clientCAs is non-nil, client certificates are
// requested and, if given, verified against it: secret-based clients work
// without one, tls_client_auth clients need one. stop closes the server.
func (s *Server) StartTLS(serverCert tls.Certificate, clientCAs *x509.CertPool) (url string, stop func()) {
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		ts.TLS.ClientCAs = clientCAs
		ts.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	}
	// Handshakes that fail on purpose (untrusted server or client) would
	// otherwise be logged to stderr.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	return ts.URL, ts.Close
}

// GenerateClientKey returns a new private key for private_key_jwt tests,
// for alg "RS256" or "PS256" (RSA 2048), "ES256" (P-256), "ES384" (P-384)
// or "EdDSA" (Ed25519), and the key as PKCS#8 PEM ("PRIVATE KEY"). Its
// Public() is the key for Options.ClientKeys.
func GenerateClientKey(alg string) (crypto.Signer, []byte, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("tokenserver: unsupported alg %q (want RS256, PS256, ES256, ES384 or EdDSA)", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tokenserver: %s key: %w", alg, err)
	}
	keyPEM, err := pkcs8PEM(key)
	if err != nil {
		return nil, nil, err
	}
	return key, keyPEM, nil
}

func pkcs8PEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tokenserver: PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
