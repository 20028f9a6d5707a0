// Command tokenserver runs the fake OAuth 2.0 token endpoint of package
// tokenserver over plain HTTP, for demos and manual testing. The token
// endpoint is /token; /healthz answers "ok". It logs one line per request
// (method, path, client id, result), never a secret or a token.
//
//	tokenserver -addr :8080 -client-id demo-client -client-secret demo-secret -expires-in 60
//
// The secret can also come from $TOKENSERVER_CLIENT_SECRET, which keeps it
// out of the process list.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tokensync/tokensync/test/tokenserver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	clientID := flag.String("client-id", "demo-client", "the client id accepted")
	clientSecret := flag.String("client-secret", "", "its secret (default $TOKENSERVER_CLIENT_SECRET, else demo-secret)")
	expiresIn := flag.Int("expires-in", 3600, "token lifetime in seconds; 0 omits expires_in")
	flag.Parse()

	secret := *clientSecret
	if secret == "" {
		secret = os.Getenv("TOKENSERVER_CLIENT_SECRET")
	}
	if secret == "" {
		secret = "demo-secret"
	}
	if *clientID == "" {
		fmt.Fprintln(os.Stderr, "tokenserver: -client-id must not be empty")
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "tokenserver: token endpoint http://%s/token for client %q, tokens live %ds\n", *addr, *clientID, *expiresIn)
	err := tokenserver.ListenAndServe(*addr, tokenserver.Options{
		Clients:   map[string]string{*clientID: secret},
		ExpiresIn: *expiresIn,
	}, os.Stdout)
	fmt.Fprintln(os.Stderr, "tokenserver:", err)
	os.Exit(1)
}
