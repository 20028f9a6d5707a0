#!/usr/bin/env bash
# Provides envtest's control plane (kube-apiserver, etcd, kubectl) in
# setup-envtest's store and prints the directory to use as KUBEBUILDER_ASSETS.
#
#   KUBEBUILDER_ASSETS=$(hack/install-envtest.sh bin)
#
# It tries setup-envtest's normal download first. Machines without internet
# access (CI here reaches only the Go module proxy) cannot download the
# release tarballs, so the binaries are then built from source fetched through
# the module proxy, with version ldflags so that --version tells the truth.
# Results are cached in the store (and the Go build cache): a second run is
# instant. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

BIN_DIR=${1:?usage: $0 <bin-dir>}
mkdir -p "$BIN_DIR"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
K8S_VERSION=${ENVTEST_K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}
STORE=${ENVTEST_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
ASSETS="$STORE/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"

log() { echo "install-envtest: $*" >&2; }

have_assets() {
	[[ -x "$ASSETS/kube-apiserver" && -x "$ASSETS/etcd" && -x "$ASSETS/kubectl" ]]
}

# Fast path: already in the store.
if have_assets; then
	echo "$ASSETS"
	exit 0
fi

if [[ ! -x "$BIN_DIR/setup-envtest" ]]; then
	log "installing setup-envtest $SETUP_ENVTEST_VERSION"
	GOBIN="$BIN_DIR" go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" >&2
fi

# The normal way, where the release tarballs can be downloaded.
if path=$(timeout 60 "$BIN_DIR/setup-envtest" use "$K8S_VERSION" --bin-dir "$STORE" -p path 2>/dev/null) && [[ -x "$path/kube-apiserver" ]]; then
	echo "$path"
	exit 0
fi

log "cannot download envtest $K8S_VERSION; building kube-apiserver, kubectl and etcd $ETCD_VERSION from the Go module proxy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
staging="$work/assets"
mkdir -p "$staging"

# kube-apiserver and kubectl: k8s.io/kubernetes replaces its staging modules
# with ./staging/... paths, which do not exist outside its repository; a
# throwaway module replaces each of them with its published v0.x release.
minor=${K8S_VERSION#*.}
minor=${minor%%.*}
staging_version="v0.${K8S_VERSION#*.}"
gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
mkdir -p "$work/k8s"
{
	echo "module envtestbuild"
	echo
	echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
	echo
	echo "require k8s.io/kubernetes v$K8S_VERSION"
	echo
	sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
} >"$work/k8s/go.mod"
cat >"$work/k8s/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
(
	cd "$work/k8s"
	log "resolving k8s.io/kubernetes v$K8S_VERSION dependencies"
	GOFLAGS=-mod=mod go mod tidy -e >&2 2>&1 || true
	for cmd in kube-apiserver kubectl; do
		log "building $cmd (kube-apiserver takes about 5 minutes on 2 cores the first time)"
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$staging/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
	done
)

# etcd: the server module's main package.
mkdir -p "$work/etcd"
(
	cd "$work/etcd"
	cat >go.mod <<EOF
module etcdbuild

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
	cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
	GOFLAGS=-mod=mod go mod tidy -e >&2 2>&1 || true
	log "building etcd $ETCD_VERSION"
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
		-o "$staging/etcd" go.etcd.io/etcd/server/v3 >&2
)

"$staging/kube-apiserver" --version >&2
"$staging/kubectl" version --client >&2
"$staging/etcd" --version >&2

# Move into place only when all three built, so an interrupted run never
# leaves a half-filled store.
mkdir -p "$(dirname "$ASSETS")"
rm -rf "$ASSETS.tmp"
mv "$staging" "$ASSETS.tmp"
rm -rf "$ASSETS"
mv "$ASSETS.tmp" "$ASSETS"

# setup-envtest must find them as a regular install.
if ! path=$("$BIN_DIR/setup-envtest" use -i "$K8S_VERSION" --bin-dir "$STORE" -p path); then
	log "setup-envtest does not see the built binaries in $STORE"
	exit 1
fi
echo "$path"
