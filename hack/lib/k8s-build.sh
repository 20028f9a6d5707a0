# shellcheck shell=bash
# Builds Kubernetes binaries from k8s.io/kubernetes fetched through the Go
# module proxy, for machines that cannot download release binaries. Sourced
# by hack/install-envtest.sh (kube-apiserver, kubectl) and
# hack/cluster/install-node.sh (kubelet, kube-controller-manager,
# kube-scheduler, kube-proxy):
#
#   source hack/lib/k8s-build.sh
#   k8s_version 1.37.2              # checks the version, sets K8S_MINOR and STAGING_VERSION
#   k8s_build "$work" "$out" kube-apiserver kubectl
#   k8s_expect "Kubernetes v1.37.2" "$out/kube-apiserver" --version
#
# The callers set `log` (progress to stderr) and CGO_ENABLED, GOOS, GOARCH
# and GOWORK=off.

# k8s_version VERSION: checks that VERSION looks like 1.y.z and sets
# K8S_VERSION, K8S_MINOR and STAGING_VERSION (the staging modules, k8s.io/api,
# k8s.io/client-go, ..., of Kubernetes 1.y.z are published as v0.y.z).
k8s_version() {
	if [[ ! $1 =~ ^1\.([0-9]+)\.([0-9]+)$ ]]; then
		log "Kubernetes version must look like 1.37.2, got '$1'"
		return 2
	fi
	K8S_VERSION=$1
	K8S_MINOR=${BASH_REMATCH[1]}
	STAGING_VERSION="v0.$K8S_MINOR.${BASH_REMATCH[2]}"
}

# k8s_build WORK OUT CMD...: builds k8s.io/kubernetes/cmd/CMD for each CMD
# into OUT, using WORK (an empty directory) for a throwaway module.
#
# k8s.io/kubernetes replaces its staging modules with ./staging/...
# directories that exist only in its own repository, so `go install
# k8s.io/kubernetes/cmd/...@v1.y.z` is refused. The throwaway module requires
# k8s.io/kubernetes and replaces every such module with its published v0.y.z
# release, which is the same code. It also takes k8s.io/kubernetes's go and
# godebug lines, so that the binaries get the same runtime defaults.
k8s_build() {
	local work=$1 out=$2
	shift 2
	local k8s_gomod replaces m cmd
	k8s_gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	if [[ ! -f $k8s_gomod ]]; then
		log "cannot download k8s.io/kubernetes v$K8S_VERSION from the module proxy"
		return 1
	fi
	replaces=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s.io/[A-Za-z0-9._-]*\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\./staging/.*#\2#p' "$k8s_gomod")
	if [[ -z $replaces ]]; then
		log "found no ./staging replacements in $k8s_gomod"
		return 1
	fi
	mkdir -p "$work" "$out"
	{
		echo "module k8sbuild"
		echo
		grep -E '^(go|godebug) ' "$k8s_gomod"
		echo
		echo "require k8s.io/kubernetes v$K8S_VERSION"
		echo
		for m in $replaces; do
			echo "replace $m => $m $STAGING_VERSION"
		done
	} >"$work/go.mod"
	# Lets `go mod tidy` see which packages are needed.
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for cmd in "$@"; do
			printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"
		done
		printf ')\n'
	} >"$work/tools.go"

	# Kubernetes's own build (hack/lib/version.sh) stamps these; without them
	# --version reports v0.0.0-master. kubectl reports client-go's copy.
	local build_date ldflags="-s -w" pkg
	build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
		ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
	done
	(
		cd "$work"
		log "resolving k8s.io/kubernetes v$K8S_VERSION dependencies"
		go mod tidy >&2
		for cmd in "$@"; do
			log "building $cmd"
			go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
		done
	)
}

# k8s_expect LINE COMMAND...: runs COMMAND, shows its output, fails unless
# LINE is one of its lines. Skipped (success) when cross-building.
k8s_expect() {
	local want=$1 got
	shift
	if [[ ${GOOS:-$(go env GOOS)} != "$(go env GOHOSTOS)" || ${GOARCH:-$(go env GOARCH)} != "$(go env GOHOSTARCH)" ]]; then
		return 0
	fi
	got=$("$@" 2>&1)
	echo "$got" >&2
	if ! grep -qxF "$want" <<<"$got"; then
		log "$* did not print '$want'"
		return 1
	fi
}
