#!/usr/bin/env bash
# Builds test/zitadel/harness, an independent RFC 8693 token-exchange server
# (github.com/zitadel/oidc's OpenID Provider, versions pinned in its own
# go.mod and go.sum), into the given bin directory and prints the binary's
# path. It is a separate module so that its dependencies stay out of
# tokensync's go.mod. make test-e2e builds it; see test/zitadel/README.md.
#
#   ZITADEL_HARNESS=$(hack/install-zitadel-harness.sh bin) go test -tags zitadel ./test/zitadel/
set -euo pipefail

BIN_DIR=${1:?usage: $0 <bin-dir>}
mkdir -p "$BIN_DIR"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
cd "$(dirname "$0")/../test/zitadel/harness"
go build -trimpath -o "$BIN_DIR/zitadel-harness" . >&2
echo "$BIN_DIR/zitadel-harness"
