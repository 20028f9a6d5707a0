#!/usr/bin/env bash
# Generates docs/api-reference.md from the Go types in api/ (doc comments,
# defaults, OpenAPI validation and CEL rules from the kubebuilder markers) with
# crd-ref-docs, a pinned version installed from the Go module proxy into the
# local bin directory when it is missing or another version.
#
#   hack/gen-api-docs.sh           write docs/api-reference.md
#   hack/gen-api-docs.sh --check   fail (exit 1, with a diff) when
#                                  docs/api-reference.md is not what the
#                                  types generate; changes nothing
#
# The output depends only on api/, hack/api-docs/ and the pinned version: two
# runs give the same file byte for byte.
#
# Environment:
#   CRD_REF_DOCS_VERSION  github.com/elastic/crd-ref-docs version (default v0.3.0)
#   LOCALBIN              where tools are installed (default ./bin, as in the Makefile)
#   GO                    the go command (default go)
set -euo pipefail
cd "$(dirname "$0")/.."

CRD_REF_DOCS_VERSION=${CRD_REF_DOCS_VERSION:-v0.3.0}
LOCALBIN=${LOCALBIN:-$(pwd)/bin}
GO=${GO:-go}
OUT=docs/api-reference.md

log() { echo "gen-api-docs: $*" >&2; }

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Install the pinned generator unless bin/ already has that version (read
# from the binary's build information, not from its name).
bin=$LOCALBIN/crd-ref-docs
have=""
if [[ -x $bin ]]; then
  have=$("$GO" version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/elastic/crd-ref-docs" { print $3 }') || have=""
fi
if [[ $have != "$CRD_REF_DOCS_VERSION" ]]; then
  log "installing github.com/elastic/crd-ref-docs@$CRD_REF_DOCS_VERSION into $LOCALBIN"
  mkdir -p "$LOCALBIN"
  GOBIN=$LOCALBIN "$GO" install "github.com/elastic/crd-ref-docs@$CRD_REF_DOCS_VERSION"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" \
  --source-path=./api \
  --config=hack/api-docs/config.yaml \
  --renderer=markdown \
  --templates-dir=hack/api-docs/templates \
  --template-value="generatorVersion=$CRD_REF_DOCS_VERSION" \
  --output-path="$tmp/raw.md" \
  --log-level=WARN

# The templates leave runs of blank lines and trailing spaces; drop them so
# the file is lint-clean: no trailing whitespace, at most one blank line in a
# row, none at the start or the end.
awk '
  { sub(/[ \t]+$/, "") }
  /^$/ { blank = 1; next }
  { if (blank && printed) print ""; print; blank = 0; printed = 1 }
' "$tmp/raw.md" >"$tmp/api-reference.md"

if $check; then
  if [[ ! -f $OUT ]]; then
    log "$OUT does not exist: run 'make api-docs' (hack/gen-api-docs.sh) and commit it"
    exit 1
  fi
  if ! diff -u "$OUT" "$tmp/api-reference.md" >"$tmp/diff"; then
    cat "$tmp/diff" >&2
    log "$OUT is stale: run 'make api-docs' (hack/gen-api-docs.sh) and commit it"
    exit 1
  fi
  log "$OUT is up to date"
  exit 0
fi

cp "$tmp/api-reference.md" "$OUT"
log "wrote $OUT"
