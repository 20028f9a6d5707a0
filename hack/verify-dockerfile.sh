#!/usr/bin/env bash
# Checks the container image recipe without a Docker engine:
#  - the builder's Go version is the one go.mod asks for;
#  - the runtime base is distroless static and the image runs as a numeric
#    non-root user, with /manager as its entrypoint;
#  - the build context the Dockerfile sees (.dockerignore + COPY lines) holds
#    every package the manager imports, proved by building the binary the
#    Dockerfile builds, with its command, from a copy of only that context;
#  - that binary is static (no ELF interpreter) and starts.
# When a Docker engine is available (CONTAINER_TOOL, default docker), it also
# builds the image. With DOCKERFILE_BINARY_OUT=FILE it copies the binary
# there instead (hack/cluster/images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "verify-dockerfile: $*" >&2; exit 1; }

df=Dockerfile
[[ -f $df ]] || fail "no Dockerfile"

# 1. Builder Go version matches go.mod's go directive (major.minor).
gomod=$(awk '/^go /{print $2; exit}' go.mod)
want=${gomod%.*}
[[ $gomod == *.*.* ]] || want=$gomod
builder=$(awk 'toupper($1)=="FROM" && $2 ~ /^golang:/ {print $2; exit}' "$df")
[[ -n $builder ]] || fail "no golang builder stage"
tag=${builder#golang:}
[[ $tag == "$want" || $tag == "$want".* || $tag == "$want"-* ]] ||
	fail "builder $builder does not match go $gomod in go.mod"

# 2. Runtime base, user and entrypoint (the last stage).
last_from=$(awk 'toupper($1)=="FROM" {img=$2} END {print img}' "$df")
[[ $last_from == gcr.io/distroless/static:nonroot || $last_from == gcr.io/distroless/static-debian*:nonroot ]] ||
	fail "runtime base is $last_from, want gcr.io/distroless/static:nonroot"
user=$(awk 'toupper($1)=="USER" {u=$2} END {print u}' "$df")
[[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] || fail "USER $user is not numeric (Kubernetes runAsNonRoot needs a numeric UID)"
[[ ${user%%:*} != 0 ]] || fail "the image runs as root"
grep -qE '^ENTRYPOINT \["/manager"\]' "$df" || fail "ENTRYPOINT is not [\"/manager\"]"
grep -q 'runAsNonRoot: true' config/manager/manager.yaml || fail "config/manager/manager.yaml does not set runAsNonRoot"

# 3. Build from exactly the context the Dockerfile copies.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/src"
while read -r src; do
	for p in $src; do
		[[ -e $p ]] || fail "Dockerfile copies $p, which does not exist"
		grep -qxF "!$p" .dockerignore || grep -qxF "!${p%/}" .dockerignore ||
			fail "Dockerfile copies $p but .dockerignore excludes it"
		mkdir -p "$ctx/src/$(dirname "$p")"
		cp -R "$p" "$ctx/src/$p"
	done
done < <(awk 'toupper($1)=="COPY" && $2 !~ /^--from/ {for (i=2; i<NF; i++) printf "%s ", $i; print ""}' "$df")

run=$(awk 'toupper($1)=="RUN" && /go build/ {sub(/^RUN +/, ""); print; exit}' "$df")
[[ -n $run ]] || fail "no RUN go build line"
[[ $run == *CGO_ENABLED=0* ]] || fail "the build does not set CGO_ENABLED=0"
# The Dockerfile's own command, with the build args a linux/amd64 build sets.
(cd "$ctx/src" && TARGETOS=linux TARGETARCH=amd64 GOFLAGS=-mod=readonly bash -ec "$run") ||
	fail "the manager does not build from the Dockerfile's context (a COPY or .dockerignore entry is missing?)"
bin="$ctx/src/manager"
[[ -x $bin ]] || fail "the build did not write ./manager"

# 4. Static and runnable.
go run ./hack/elfcheck "$bin" || fail "the manager binary is not static"
"$bin" --help >/dev/null 2>&1 || fail "the manager binary does not start (--help)"

echo "verify-dockerfile: $builder -> $last_from, USER $user, static binary $(du -h "$bin" | cut -f1) built from the Dockerfile's context"

# hack/cluster/images.sh packs this very binary into the image that
# make test-cluster runs.
if [[ -n ${DOCKERFILE_BINARY_OUT:-} ]]; then
	cp "$bin" "$DOCKERFILE_BINARY_OUT"
	exit 0
fi

tool=${CONTAINER_TOOL:-docker}
if command -v "$tool" >/dev/null 2>&1 && "$tool" info >/dev/null 2>&1; then
	"$tool" build -t tokensync-verify:dev .
	echo "verify-dockerfile: $tool build succeeded"
else
	echo "verify-dockerfile: no $tool engine here; image build skipped (make docker-build where one exists)"
fi
