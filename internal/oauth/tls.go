package oauth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"
)

// TLSConfig is the TLS material of a request: CAs to trust instead of the
// system roots, and a client certificate for mutual TLS (RFC 8705). TLS 1.2
// is the minimum and server certificates are always verified.
type TLSConfig struct {
	// CAPEM holds PEM CA certificates; the system roots when empty.
	CAPEM []byte
	// CertPEM and KeyPEM are the client certificate chain and its key.
	CertPEM, KeyPEM []byte
}

func (t *TLSConfig) isZero() bool {
	return t == nil || (len(t.CAPEM) == 0 && len(t.CertPEM) == 0 && len(t.KeyPEM) == 0)
}

// digest identifies the material, to share one transport (and its
// connection pool) between requests with the same TLS configuration.
func (t *TLSConfig) digest() [32]byte {
	h := sha256.New()
	for _, b := range [][]byte{t.CAPEM, t.CertPEM, t.KeyPEM} {
		h.Write([]byte{byte(len(b) >> 24), byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))})
		h.Write(b)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// Validate reports whether the material can be used: the CA bundle holds a
// PEM certificate and the client certificate matches its key. The error
// never quotes the material.
func (t *TLSConfig) Validate() error {
	if t.isZero() {
		return nil
	}
	if _, oerr := t.build(); oerr != nil {
		return errors.New(oerr.Description)
	}
	return nil
}

// build returns the crypto/tls configuration, or a KindConfig error that
// never quotes the material.
func (t *TLSConfig) build() (*tls.Config, *Error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(t.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, &Error{Kind: KindConfig, Description: "the CA bundle holds no PEM certificate"}
		}
		cfg.RootCAs = pool
	}
	if len(t.CertPEM) > 0 || len(t.KeyPEM) > 0 {
		cert, err := tls.X509KeyPair(t.CertPEM, t.KeyPEM)
		if err != nil {
			return nil, &Error{Kind: KindConfig, Description: "the client certificate and key cannot be used: " + describeKeyPairError(err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// describeKeyPairError keeps crypto/tls's explanation, which never holds
// key material, but not the wrapped parse errors.
func describeKeyPairError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// maxTransports bounds the transports kept for distinct TLS configurations.
const maxTransports = 256

// transports caches one *http.Transport per TLS configuration.
type transports struct {
	mu sync.Mutex
	m  map[[32]byte]*http.Transport
}

// get returns the transport for t, derived from base (which must be an
// *http.Transport to carry TLS settings).
func (c *transports) get(base http.RoundTripper, t *TLSConfig) (http.RoundTripper, *Error) {
	bt, ok := base.(*http.Transport)
	if !ok {
		return nil, &Error{Kind: KindConfig, Err: errors.New("custom TLS needs an *http.Transport")}
	}
	key := t.digest()
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr, ok := c.m[key]; ok {
		return tr, nil
	}
	cfg, oerr := t.build()
	if oerr != nil {
		return nil, oerr
	}
	tr := bt.Clone()
	if tr.TLSClientConfig != nil {
		cfg.MinVersion = max(cfg.MinVersion, tr.TLSClientConfig.MinVersion)
		if cfg.RootCAs == nil {
			cfg.RootCAs = tr.TLSClientConfig.RootCAs
		}
	}
	tr.TLSClientConfig = cfg
	if c.m == nil || len(c.m) >= maxTransports {
		for _, old := range c.m {
			old.CloseIdleConnections()
		}
		c.m = map[[32]byte]*http.Transport{}
	}
	c.m[key] = tr
	return tr, nil
}
