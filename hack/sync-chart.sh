#!/usr/bin/env bash
# Copies what the Helm chart shares with config/ into charts/tokensync, byte
# for byte, so that the chart cannot drift from what `make manifests`
# generates and kustomize installs:
#   config/crd/bases/*.yaml                 -> charts/tokensync/crds/
#   config/rbac/*.yaml (Roles, ClusterRoles) -> charts/tokensync/files/rbac/
#   config/rollout-restart/role.yaml        -> charts/tokensync/files/rollout-restart/
#   config/namespaced/signing-key/role.yaml -> charts/tokensync/files/namespaced/
# The chart's RBAC templates take the rules (and aggregation labels) of each
# role from those copies (.Files.Get); `make manifests` runs this script.
#
#   hack/sync-chart.sh          copy (and remove copies whose source is gone)
#   hack/sync-chart.sh --check  change nothing; exit 1 if a copy differs
set -euo pipefail
cd "$(dirname "$0")/.."

chart=charts/tokensync
check=false
case ${1:-} in
--check) check=true ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
shopt -s nullglob

# stage SRC_GLOB DST [KIND_REGEX]: put the files of SRC_GLOB (those whose
# kind matches KIND_REGEX, when given) in $stage/DST.
stage() {
	local dst=$stage/$2 f n=0
	mkdir -p "$dst"
	for f in $1; do
		[[ -z ${3:-} ]] || grep -qE "^kind: ($3)$" "$f" || continue
		cp -- "$f" "$dst/"
		n=$((n + 1))
	done
	((n)) || { echo "sync-chart: nothing matches $1" >&2; exit 1; }
}
stage 'config/crd/bases/*.yaml' crds
stage 'config/rbac/*.yaml' files/rbac 'Role|ClusterRole'
stage 'config/rollout-restart/*.yaml' files/rollout-restart 'Role|ClusterRole'
stage 'config/namespaced/signing-key/role.yaml' files/namespaced

for dir in crds files/rbac files/rollout-restart files/namespaced; do
	if $check; then
		# diff -r also reports files present on one side only.
		if ! diff -r "$stage/$dir" "$chart/$dir" >&2; then
			echo "sync-chart: $chart/$dir differs from config/: run hack/sync-chart.sh (or make manifests) and commit" >&2
			exit 1
		fi
		continue
	fi
	mkdir -p "$chart/$dir"
	for f in "$chart/$dir"/*; do
		[[ -e $stage/$dir/$(basename "$f") ]] || { rm -f -- "$f"; echo "sync-chart: removed $f"; }
	done
	cp -- "$stage/$dir"/* "$chart/$dir/"
done
if $check; then
	echo "sync-chart: $chart/crds and $chart/files are up to date with config/"
else
	echo "sync-chart: copied the CRDs and roles of config/ into $chart"
fi
