#!/usr/bin/env bash
# make test-cluster: tokensync on a real single-node Kubernetes, from its
# container image (test/cluster). Needs root and Debian's packages (apt);
# no Docker engine, no registry, no network beyond the package registries.
#
#  1. installs what it needs: envtest's kube-apiserver, etcd and kubectl
#     (hack/install-envtest.sh), the node's packages and binaries
#     (install-node.sh), Django OAuth Toolkit, helm;
#  2. builds the images (images.sh) and the test binary;
#  3. starts the node (up.sh) and, on any exit, tears it down (down.sh);
#  4. runs the test binary inside the node's network namespace.
#
# Environment: LOCALBIN (./bin), KUSTOMIZE (set by make), ENVTEST_K8S_VERSION,
# TEST_ARGS (extra go test flags, e.g. -test.run=TestInstallModes/helm),
# TOKENSYNC_CLUSTER_KEEP_LOGS (a directory that receives the node's logs
# when the test fails).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=env.sh
source hack/cluster/env.sh
repo=$PWD
LOCALBIN=${LOCALBIN:-$repo/bin}
log() { echo "test-cluster: $(date -u +%T) $*" >&2; }
t0=$(date +%s)

[[ $(id -u) -eq 0 ]] || { log "needs root (a kubelet, containerd, network namespaces)"; exit 1; }
: "${KUSTOMIZE:?set KUSTOMIZE to a kustomize binary (make test-cluster does)}"
ASSETS=$(hack/install-envtest.sh "$LOCALBIN")
NODE_BIN=$(hack/cluster/install-node.sh)
hack/install-oauth-server.sh
: "${HELM:?set HELM to a helm v3 binary (make test-cluster does)}"

work=$(mktemp -d /tmp/tokensync-cluster-build-XXXXXX)
# A signal exits, so that the EXIT trap (the one below, later cleanup) runs.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'rm -rf "$work"' EXIT
hack/cluster/images.sh "$work/images"
go test -c -tags cluster -o "$work/cluster.test" ./test/cluster
log "installed and built in $(($(date +%s) - t0))s"

# One node per machine: its cgroups and the kubelet's sysctls are global.
mkdir -p "$(dirname "$CLUSTER_LOCK")"
exec 8>"$CLUSTER_LOCK"
flock 8
cleanup() {
	local rc=$?
	if ((rc != 0)) && [[ -n ${TOKENSYNC_CLUSTER_KEEP_LOGS:-} && -d $CLUSTER_DIR/logs ]]; then
		mkdir -p "$TOKENSYNC_CLUSTER_KEEP_LOGS"
		cp "$CLUSTER_DIR"/logs/*.log "$TOKENSYNC_CLUSTER_KEEP_LOGS"/ 2>/dev/null
		log "node logs kept in $TOKENSYNC_CLUSTER_KEEP_LOGS"
	fi
	"$repo/hack/cluster/down.sh"
	rm -rf "$work"
	log "done in $(($(date +%s) - t0))s"
	exit "$rc"
}
trap cleanup EXIT
t1=$(date +%s)
hack/cluster/up.sh "$ASSETS" "$NODE_BIN" "$work/images"
log "node up in $(($(date +%s) - t1))s; $(hack/cluster/memory.sh)"

cd test/cluster
# shellcheck disable=SC2086
TOKENSYNC_CLUSTER_DIR=$CLUSTER_DIR TOKENSYNC_CLUSTER_IMAGES=$work/images \
	TOKENSYNC_CLUSTER_KUBECTL=$ASSETS/kubectl TOKENSYNC_CLUSTER_KUSTOMIZE=$KUSTOMIZE \
	TOKENSYNC_CLUSTER_HELM=$HELM TOKENSYNC_CLUSTER_NODE_IP=$NODE_IP TOKENSYNC_CLUSTER_NETNS=$CLUSTER_NETNS \
	TOKENSYNC_CLUSTER_MANAGER_IMAGE=$MANAGER_IMAGE TOKENSYNC_CLUSTER_CONSUMER_IMAGE=$CONSUMER_IMAGE \
	TOKENSYNC_CLUSTER_REPO=$repo TOKENSYNC_CLUSTER_HOST_NETNS=/proc/$$/ns/net \
	in_netns "$work/cluster.test" -test.v -test.count=1 -test.timeout=20m ${TEST_ARGS:-}
cd "$repo"
log "after the test: $(hack/cluster/memory.sh)"
