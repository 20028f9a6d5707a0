// Command harness runs an independent RFC 8693 token-exchange server for
// tokensync's token client: the OpenID Provider of github.com/zitadel/oidc
// (its op package and example storage: request parsing, client
// authentication, validation, errors and the response are zitadel's),
// with one addition, VerifyExchangeSubjectToken, which accepts JWT subject
// tokens (Kubernetes ServiceAccount tokens) verified by
// github.com/coreos/go-oidc against the issuer's discovery document and
// JWKS. It listens on loopback only and logs no token.
//
//	harness -addr 127.0.0.1:9998 -sa-issuer https://127.0.0.1:6443 -sa-ca ca.crt \
//	  -audience https://zitadel.test -subject system:serviceaccount:team-a:payments
//
// The confidential client "web" (secret "secret", client_secret_basic) may
// exchange tokens whose sub is -subject; the token endpoint is
// http://ADDR/oauth/token.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// store is zitadel's example storage, with JWT subject tokens of one
// trusted issuer allowed for one subject.
type store struct {
	*storage.Storage
	verifier *gooidc.IDTokenVerifier
	subject  string
}

var _ op.TokenExchangeTokensVerifierStorage = (*store)(nil)

func (s *store) verify(ctx context.Context, token string, tokenType oidc.TokenType) (string, string, map[string]any, error) {
	if tokenType != oidc.JWTTokenType {
		return "", "", nil, errors.New("only JWT subject tokens are verified here")
	}
	t, err := s.verifier.Verify(ctx, token)
	if err != nil {
		return "", "", nil, err
	}
	claims := map[string]any{}
	if err := t.Claims(&claims); err != nil {
		return "", "", nil, err
	}
	return t.Subject, t.Subject, claims, nil
}

// VerifyExchangeSubjectToken verifies a JWT subject token with go-oidc.
func (s *store) VerifyExchangeSubjectToken(ctx context.Context, token string, tokenType oidc.TokenType) (string, string, map[string]any, error) {
	return s.verify(ctx, token, tokenType)
}

// VerifyExchangeActorToken verifies a JWT actor token with go-oidc.
func (s *store) VerifyExchangeActorToken(ctx context.Context, token string, tokenType oidc.TokenType) (string, string, map[string]any, error) {
	return s.verify(ctx, token, tokenType)
}

// ValidateTokenExchangeRequest allows the one subject, for an access token
// (the default here; the example storage's default is a refresh token and
// its policy is about its own users).
func (s *store) ValidateTokenExchangeRequest(ctx context.Context, req op.TokenExchangeRequest) error {
	if req.GetExchangeSubject() != s.subject {
		return oidc.ErrInvalidRequest().WithDescription("this subject may not exchange tokens here")
	}
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	req.SetCurrentScopes(req.GetScopes())
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9998", "listen address (loopback only)")
	saIssuer := flag.String("sa-issuer", "", "issuer of the subject tokens (a kube-apiserver's --service-account-issuer)")
	saCA := flag.String("sa-ca", "", "PEM CA file for the issuer's https endpoints (system roots when empty)")
	audience := flag.String("audience", "", "aud the subject tokens must carry")
	subject := flag.String("subject", "", "sub allowed to exchange tokens")
	flag.Parse()
	if err := run(*addr, *saIssuer, *saCA, *audience, *subject); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run(addr, saIssuer, saCA, audience, subject string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s is not a loopback address", addr)
	}
	if saIssuer == "" || audience == "" || subject == "" {
		return errors.New("-sa-issuer, -audience and -subject are required")
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if saCA != "" {
		pem, err := os.ReadFile(saCA)
		if err != nil {
			return err
		}
		pool.AppendCertsFromPEM(pem)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	ctx := gooidc.ClientContext(context.Background(), hc)
	provider, err := gooidc.NewProvider(ctx, saIssuer)
	if err != nil {
		return fmt.Errorf("discovering %s: %w", saIssuer, err)
	}
	issuer := fmt.Sprintf("http://%s:%s/", host, port)
	storage.RegisterClients(storage.WebClient("web", "secret"))
	st := &store{
		Storage:  storage.NewStorage(storage.NewUserStore(issuer)),
		verifier: provider.Verifier(&gooidc.Config{ClientID: audience}),
		subject:  subject,
	}
	// Warnings and errors only: request logs are not needed, and nothing
	// that could hold a token is logged.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router := exampleop.SetupServer(issuer, st, logger, false, op.WithAllowInsecure())
	srv := &http.Server{Addr: addr, Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "harness: token endpoint %soauth/token\n", issuer)
	return srv.ListenAndServe()
}
