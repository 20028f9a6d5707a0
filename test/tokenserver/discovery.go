package tokenserver

import (
	"encoding/json"
	"net/http"
	"strings"
)

// isDiscoveryPath reports whether path is a metadata document location
// while Options.Discovery is set.
func (s *Server) isDiscoveryPath(path string) bool {
	return s.opts.Discovery != "" && (path == wellKnownOpenID || path == wellKnownOAuth)
}

// serveDiscovery answers a request for a metadata document and returns the
// log result. Only the document Options.Discovery selects exists.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discovery++
	served := wellKnownOpenID
	if s.opts.Discovery == "oauth" {
		served = wellKnownOAuth
	}
	if r.URL.Path != served {
		http.NotFound(w, r)
		return "not found"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return "method not allowed"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_ = json.NewEncoder(w).Encode(s.metadata(baseURL(r)))
	}
	return "discovery"
}

// metadata is the discovery document of the server at base (OpenID
// Connect Discovery 1.0 section 3, RFC 8414 section 2), limited to what a
// client-credentials client needs.
func (s *Server) metadata(base string) map[string]any {
	path := s.opts.Path
	if path == "" {
		path = "/token"
	} else if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var methods []string
	if s.opts.AllowBasic || !s.opts.AllowPost {
		methods = append(methods, "client_secret_basic")
	}
	if s.opts.AllowPost || !s.opts.AllowBasic {
		methods = append(methods, "client_secret_post")
	}
	if s.opts.ClientKeys != nil || s.fed != nil {
		methods = append(methods, AuthPrivateKeyJWT)
	}
	if s.opts.TLSClientAuth != nil {
		methods = append(methods, AuthTLSClient)
	}
	md := map[string]any{
		"issuer":                                base,
		"token_endpoint":                        base + path,
		"grant_types_supported":                 s.grantTypes(),
		"token_endpoint_auth_methods_supported": methods,
	}
	if s.opts.ClientKeys != nil {
		md["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"}
	}
	if s.opts.AllowedScopes != nil {
		md["scopes_supported"] = s.opts.AllowedScopes
	}
	return md
}
