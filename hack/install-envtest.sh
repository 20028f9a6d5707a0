#!/usr/bin/env bash
# Provides envtest's control plane (kube-apiserver, etcd, kubectl) in
# setup-envtest's store and prints the directory to use as KUBEBUILDER_ASSETS:
#
#   KUBEBUILDER_ASSETS=$(hack/install-envtest.sh bin)
#
# setup-envtest normally downloads release tarballs from GitHub. Machines here
# (CI included) reach only the Go module proxy, so when the download fails the
# binaries are built from source fetched through the proxy, with version
# ldflags so that --version tells the truth, and put in the store exactly where
# setup-envtest would have unpacked them. A later run finds them there (and the
# Go build cache keeps rebuilds fast). Progress goes to stderr; stdout carries
# only the path.
#
# Environment:
#   ENVTEST_K8S_VERSION    Kubernetes version (default 1.37.2)
#   ETCD_VERSION           etcd version built when downloading fails (default v3.6.16)
#   SETUP_ENVTEST_VERSION  sigs.k8s.io/controller-runtime/tools/setup-envtest version
#                          (default v0.25.1, controller-runtime's release-0.25 branch)
#   ENVTEST_STORE          setup-envtest's store (default: setup-envtest's own default)
set -euo pipefail

BIN_DIR=${1:?usage: $0 <bin-dir>}
K8S_VERSION=${ENVTEST_K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}
STORE=${ENVTEST_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}

log() { echo "install-envtest: $*" >&2; }

# shellcheck source=lib/k8s-build.sh
source "$(dirname "$0")/lib/k8s-build.sh"
k8s_version "$K8S_VERSION" || exit 2

mkdir -p "$BIN_DIR" "$STORE"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
STORE=$(cd "$STORE" && pwd)
SETUP_ENVTEST="$BIN_DIR/setup-envtest"

has_binaries() {
	[[ -x "$1/kube-apiserver" && -x "$1/etcd" && -x "$1/kubectl" ]]
}

# Prints the store's directory for K8S_VERSION if it holds all three binaries.
# --bin-dir is redundant for the default store but required for any other.
installed() {
	local path
	path=$("$SETUP_ENVTEST" use -i "$K8S_VERSION" --bin-dir "$STORE" -p path 2>/dev/null) &&
		has_binaries "$path" && echo "$path"
}

# 1. setup-envtest itself comes from the module proxy, which is reachable.
if [[ ! -x "$SETUP_ENVTEST" ]]; then
	log "installing setup-envtest $SETUP_ENVTEST_VERSION into $BIN_DIR"
	GOBIN="$BIN_DIR" go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" >&2
fi

# 2. Already in the store (downloaded or built earlier): nothing to do.
if installed; then
	exit 0
fi

# Serialise concurrent runs (parallel make targets) on the store; whoever
# waited rechecks, as the other run may have filled it meanwhile.
exec 9>"$STORE/.install-envtest.lock"
flock 9
if installed; then
	exit 0
fi

# 3. The normal way, where GitHub is reachable. Bounded, so that a network
# that drops packets rather than refusing them does not stall the build.
if path=$(timeout 60 "$SETUP_ENVTEST" use "$K8S_VERSION" --bin-dir "$STORE" -p path 2>/dev/null) &&
	has_binaries "$path"; then
	echo "$path"
	exit 0
fi

# 4. No internet: build from source fetched through the Go module proxy.
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
ASSETS="$STORE/k8s/$K8S_VERSION-$GOOS-$GOARCH"
log "cannot download envtest $K8S_VERSION; building kube-apiserver, kubectl and etcd $ETCD_VERSION from the Go module proxy into $ASSETS"

# The work tree lives in the store so that the final move is a rename on one
# file system, and outside its k8s/ directory, which setup-envtest scans.
# Leftovers of runs killed outright are removed; the lock makes that safe.
rm -rf "$STORE"/.build-*
work=$(mktemp -d "$STORE/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$work/$K8S_VERSION-$GOOS-$GOARCH"
mkdir -p "$out" "$work/etcd"
# Static binaries, like the released ones; no go.work may interfere.
export CGO_ENABLED=0 GOOS GOARCH GOWORK=off

# kube-apiserver and kubectl, from k8s.io/kubernetes (hack/lib/k8s-build.sh).
log "building kube-apiserver and kubectl (kube-apiserver takes 5+ minutes on 2 cores with a cold build cache)"
k8s_build "$work/k8s" "$out" kube-apiserver kubectl

# etcd. go.etcd.io/etcd/server/v3 is itself the etcd main package, but its
# go.mod replaces the sibling modules with ../ paths, so `go install ...@v` is
# refused as well; a throwaway module builds it instead.
(
	cd "$work/etcd"
	cat >go.mod <<EOF
module etcdbuild

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
	cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
	log "resolving etcd $ETCD_VERSION dependencies"
	go mod tidy >&2
	log "building etcd $ETCD_VERSION"
	go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 >&2
)

# Check that what was built is what was asked for, before it enters the store.
k8s_expect "Kubernetes v$K8S_VERSION" "$out/kube-apiserver" --version
k8s_expect "Client Version: v$K8S_VERSION" "$out/kubectl" version --client
k8s_expect "etcd Version: ${ETCD_VERSION#v}" "$out/etcd" --version

# Move into place only once all three are built and checked, so that an
# interrupted run never leaves a half-filled version directory behind.
mkdir -p "$STORE/k8s"
if [[ -e $ASSETS ]]; then
	# An incomplete leftover (e.g. from an older tool); set it aside first.
	mv "$ASSETS" "$work/old"
fi
mv "$out" "$ASSETS"

# setup-envtest must now find them as a regular install.
if ! installed; then
	log "setup-envtest does not see the built binaries in $STORE"
	exit 1
fi
