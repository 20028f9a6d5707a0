#!/usr/bin/env bash
# Builds the images of the test node into OUT (tarballs in `docker save`
# format, which `ctr images import` reads), without a Docker engine or a
# registry (hack/imagebuild):
#
#   manager.tar   MANAGER_IMAGE: the manager binary exactly as the Dockerfile
#                 builds it (hack/verify-dockerfile.sh, from the Dockerfile's
#                 own context and command), on a distroless-static-like base
#                 (CA bundle, /etc/passwd with nonroot, /tmp), as the
#                 Dockerfile's USER, ENTRYPOINT ["/manager"]
#   pause.tar     PAUSE_IMAGE: the pod sandbox, hack/imagebuild/pause
#   consumer.tar  CONSUMER_IMAGE: test/cluster/consumer, the test's workload
#
# and NAME.digest beside each: the image ID (config digest) and the manifest
# digest. Usage: hack/cluster/images.sh OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=env.sh
source hack/cluster/env.sh

out=${1:?usage: $0 <out-dir>}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "images: $*" >&2; }

export CGO_ENABLED=0 GOOS=linux GOARCH=amd64
log "building the manager from the Dockerfile's context"
DOCKERFILE_BINARY_OUT="$out/manager" hack/verify-dockerfile.sh >&2
(cd hack/imagebuild && go build -trimpath -o "$out/imagebuild" . && go build -trimpath -ldflags="-s -w" -o "$out/pause" ./pause)
go build -trimpath -ldflags="-s -w" -o "$out/consumer" ./test/cluster/consumer
for b in pause consumer; do
	go run ./hack/elfcheck "$out/$b" >&2
done

user=$(awk 'toupper($1)=="USER" {u=$2} END {print u}' Dockerfile)
build() { # NAME TAG BINARY [imagebuild flags]
	local n=$1 tag=$2 bin=$3
	shift 3
	"$out/imagebuild" -tag "$tag" -o "$out/$n.tar" -digest-file "$out/$n.digest" \
		-file "/$bin=$out/$bin" -entrypoint "/$bin" "$@"
	log "$tag $(head -1 "$out/$n.digest")"
}
build manager "$MANAGER_IMAGE" manager -user "$user" -ca-bundle /etc/ssl/certs/ca-certificates.crt
build pause "$PAUSE_IMAGE" pause -user 65535:65535
build consumer "$CONSUMER_IMAGE" consumer -user 65532:65532
