#!/usr/bin/env bash
# Provides what a real single-node cluster (hack/cluster/up.sh) needs beyond
# envtest's kube-apiserver, etcd and kubectl, and prints the directory that
# holds the Kubernetes node binaries:
#
#   NODE_BIN=$(hack/cluster/install-node.sh)
#
#  - Debian packages, with apt-get when a command is missing: containerd
#    (1.6), runc, containernetworking-plugins (bridge, host-local, loopback),
#    iptables (kube-proxy's iptables mode), conntrack, iproute2, and what
#    up.sh uses besides: openssl (certificates), procps (sysctl), util-linux;
#  - kubelet, kube-controller-manager, kube-scheduler and kube-proxy of
#    K8S_VERSION, built from k8s.io/kubernetes through the Go module proxy as
#    hack/install-envtest.sh builds kube-apiserver (hack/lib/k8s-build.sh),
#    static (CGO_ENABLED=0) and with version ldflags, and cached in
#    $NODE_STORE/k8s/<version>-<os>-<arch>. A later run finds them there.
#
# Environment:
#   K8S_VERSION  Kubernetes version (default: $ENVTEST_K8S_VERSION, else 1.37.2)
#   NODE_STORE   cache (default ${XDG_DATA_HOME:-~/.local/share}/tokensync-node)
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

log() { echo "install-node: $*" >&2; }

# shellcheck source=../lib/k8s-build.sh
source "$(dirname "$0")/../lib/k8s-build.sh"
k8s_version "${K8S_VERSION:-${ENVTEST_K8S_VERSION:-1.37.2}}" || exit 2
STORE=${NODE_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/tokensync-node}
CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

# 1. Debian packages. Each command names the package that ships it.
declare -A pkg_of=(
	[containerd]=containerd [ctr]=containerd [runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins
	[iptables]=iptables [conntrack]=conntrack [ip]=iproute2 [nsenter]=util-linux [flock]=util-linux
	[openssl]=openssl [sysctl]=procps
)
missing=()
for c in "${!pkg_of[@]}"; do
	if [[ $c == /* ]]; then [[ -x $c ]] && continue; else command -v "$c" >/dev/null && continue; fi
	missing+=("${pkg_of[$c]}")
done
if ((${#missing[@]})); then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		log "missing ${missing[*]}: install them as root with apt-get"
		exit 1
	fi
	log "installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# 2. Node binaries, cached.
export CGO_ENABLED=0 GOWORK=off
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
export GOOS GOARCH
mkdir -p "$STORE/k8s"
STORE=$(cd "$STORE" && pwd)
DIR="$STORE/k8s/$K8S_VERSION-$GOOS-$GOARCH"

installed() {
	local c
	for c in "${CMDS[@]}"; do
		[[ -x $DIR/$c ]] || return 1
	done
	echo "$DIR"
}
installed && exit 0

# Serialise concurrent runs; whoever waited rechecks.
exec 9>"$STORE/.install-node.lock"
flock 9
installed && exit 0

rm -rf "$STORE"/.build-*
work=$(mktemp -d "$STORE/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$work/out"
log "building ${CMDS[*]} v$K8S_VERSION from the Go module proxy into $DIR (2 minutes with a warm Go build cache, 5+ cold)"
k8s_build "$work/k8s" "$out" "${CMDS[@]}"
for c in "${CMDS[@]}"; do
	k8s_expect "Kubernetes v$K8S_VERSION" "$out/$c" --version
done
# Into place only once all are built and checked.
[[ ! -e $DIR ]] || mv "$DIR" "$work/old"
mv "$out" "$DIR"
installed
