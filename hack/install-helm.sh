#!/usr/bin/env bash
# Installs helm HELM_VERSION into LOCALBIN from the Go module proxy, unless
# it is there already, and prints its path. Used by hack/verify-helm.sh and
# make test-cluster.
#
# A `go install` binary reports the version helm's Makefile would stamp only
# with these ldflags; the module version is checked too.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=${HELM_VERSION:-v3.22.0}
LOCALBIN=${LOCALBIN:-$PWD/bin}
GO=${GO:-go}
HELM=$LOCALBIN/helm

helm_ok() {
	[[ -x $HELM ]] &&
		"$GO" version -m "$HELM" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+helm\.sh/helm/v3[[:space:]]+${HELM_VERSION}[[:space:]]" &&
		[[ $("$HELM" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]
}
if ! helm_ok; then
	echo "install-helm: installing helm $HELM_VERSION into $LOCALBIN" >&2
	mkdir -p "$LOCALBIN"
	GOBIN=$LOCALBIN CGO_ENABLED=0 "$GO" install \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
	if ! helm_ok; then
		echo "install-helm: $HELM is not helm $HELM_VERSION after installing it" >&2
		exit 1
	fi
fi
echo "$HELM"
