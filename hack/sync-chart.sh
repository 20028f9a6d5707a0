#!/usr/bin/env bash
# Copies the generated CRDs (config/crd/bases/*.yaml, written by
# `make manifests`) into the Helm chart's crds/ directory, byte for byte.
#
#   hack/sync-chart-crds.sh          copy (and remove chart CRDs that no longer exist)
#   hack/sync-chart-crds.sh --check  change nothing; exit 1 if the chart's copy differs
set -euo pipefail
cd "$(dirname "$0")/.."

src=config/crd/bases
dst=charts/tokensync/crds

check=false
case ${1:-} in
--check) check=true ;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

shopt -s nullglob
srcs=("$src"/*.yaml)
((${#srcs[@]})) || { echo "sync-chart-crds: no CRDs in $src" >&2; exit 1; }

if $check; then
	# diff -r also reports files present on one side only.
	if ! diff -r "$src" "$dst" >&2; then
		echo "sync-chart-crds: $dst differs from $src: run hack/sync-chart-crds.sh and commit" >&2
		exit 1
	fi
	echo "sync-chart-crds: $dst is up to date (${#srcs[@]} CRD file(s))"
	exit 0
fi

mkdir -p "$dst"
for f in "$dst"/*; do
	[[ -e $src/$(basename "$f") ]] || { rm -f -- "$f"; echo "sync-chart-crds: removed $f"; }
done
for f in "${srcs[@]}"; do
	cp -- "$f" "$dst/"
done
echo "sync-chart-crds: copied ${#srcs[@]} CRD file(s) to $dst"
