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

if [[ ! $K8S_VERSION =~ ^1\.([0-9]+)\.([0-9]+)$ ]]; then
	log "ENVTEST_K8S_VERSION must look like 1.37.2, got '$K8S_VERSION'"
	exit 2
fi
K8S_MINOR=${BASH_REMATCH[1]}
# The staging modules (k8s.io/api, k8s.io/client-go, ...) of Kubernetes 1.y.z
# are published as v0.y.z.
STAGING_VERSION="v0.$K8S_MINOR.${BASH_REMATCH[2]}"

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
mkdir -p "$out" "$work/k8s" "$work/etcd"
# Static binaries, like the released ones; no go.work may interfere.
export CGO_ENABLED=0 GOOS GOARCH GOWORK=off

# kube-apiserver and kubectl. k8s.io/kubernetes replaces its staging modules
# with ./staging/... directories that exist only in its own repository, so
# `go install k8s.io/kubernetes/cmd/...@v1.y.z` is refused. A throwaway module
# requires k8s.io/kubernetes and replaces every such module with its published
# v0.y.z release, which is the same code. It also takes k8s.io/kubernetes's go
# and godebug lines, so that the binaries get the same runtime defaults.
k8s_gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
if [[ ! -f $k8s_gomod ]]; then
	log "cannot download k8s.io/kubernetes v$K8S_VERSION from the module proxy"
	exit 1
fi
replaces=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s.io/[A-Za-z0-9._-]*\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\./staging/.*#\2#p' "$k8s_gomod")
if [[ -z $replaces ]]; then
	log "found no ./staging replacements in $k8s_gomod"
	exit 1
fi
{
	echo "module envtestbuild"
	echo
	grep -E '^(go|godebug) ' "$k8s_gomod"
	echo
	echo "require k8s.io/kubernetes v$K8S_VERSION"
	echo
	for m in $replaces; do
		echo "replace $m => $m $STAGING_VERSION"
	done
} >"$work/k8s/go.mod"
# Lets `go mod tidy` see which packages are needed.
cat >"$work/k8s/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF

# Kubernetes's own build (hack/lib/version.sh) stamps these; without them
# --version reports v0.0.0-master. kubectl reports client-go's copy.
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

(
	cd "$work/k8s"
	log "resolving k8s.io/kubernetes v$K8S_VERSION dependencies"
	go mod tidy >&2
	for cmd in kube-apiserver kubectl; do
		log "building $cmd (kube-apiserver takes 5+ minutes on 2 cores with a cold build cache)"
		go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
	done
)

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
# expect LINE COMMAND...: runs COMMAND, shows its output, fails unless LINE is
# one of its lines.
expect() {
	local want=$1 got
	shift
	got=$("$@")
	echo "$got" >&2
	if ! grep -qxF "$want" <<<"$got"; then
		log "$* did not print '$want'"
		return 1
	fi
}
if [[ $GOOS == "$(go env GOHOSTOS)" && $GOARCH == "$(go env GOHOSTARCH)" ]]; then
	expect "Kubernetes v$K8S_VERSION" "$out/kube-apiserver" --version
	expect "Client Version: v$K8S_VERSION" "$out/kubectl" version --client
	expect "etcd Version: ${ETCD_VERSION#v}" "$out/etcd" --version
fi

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
