#!/usr/bin/env bash
# Writes docs/helm.md from docs/helm.md.gotmpl with helm-docs, whose values
# table comes from the `# --` comments of charts/tokensync/values.yaml: a
# value cannot be missing from the table, nor documented with a stale
# default.
#
#   HELM_DOCS=bin/helm-docs-vX hack/helm-docs.sh          write docs/helm.md
#   HELM_DOCS=bin/helm-docs-vX hack/helm-docs.sh --check  exit 1 if docs/helm.md is stale
#                                                         or a value has no description
# (make helm-docs-gen and make verify-helm set HELM_DOCS.)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HELM_DOCS:?set HELM_DOCS to the helm-docs binary (make helm-docs prints nothing; see the Makefile)}"

doc=docs/helm.md
# The template is found from here, the output from the chart's directory.
args=(--chart-search-root charts --chart-to-generate charts/tokensync
	--template-files docs/helm.md.gotmpl --output-file "../../$doc" --log-level warning)
case ${1:-} in
--check)
	out=$(mktemp)
	trap 'rm -f "$out"' EXIT
	"$HELM_DOCS" "${args[@]}" --dry-run >"$out"
	# --dry-run prints the document followed by a blank line.
	if ! diff <(sed -e '$!b' -e '/^$/d' "$out") "$doc" >&2; then
		echo "helm-docs: $doc is stale: run 'make helm-docs-gen' and commit" >&2
		exit 1
	fi
	if undocumented=$(grep -E '^\| [^ ]+ \| [a-z]+ \| .* \|  \|$' "$doc"); then
		echo "helm-docs: values without a '# --' description in charts/tokensync/values.yaml:" >&2
		echo "$undocumented" >&2
		exit 1
	fi
	echo "helm-docs: $doc is up to date; its table documents every value of charts/tokensync/values.yaml"
	;;
"") "$HELM_DOCS" "${args[@]}" ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac
