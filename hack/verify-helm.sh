#!/usr/bin/env bash
# Checks the Helm chart charts/tokensync (kustomize's config/ stays the
# primary install path; the chart must install the same thing):
#  1. helm $HELM_VERSION is in ./bin (installed from the Go module proxy);
#  2. charts/tokensync/crds is an exact copy of config/crd/bases;
#  3. appVersion and image.repository match config/manager/kustomization.yaml;
#  4. helm lint --strict, with the defaults and with each ci/*-values.yaml;
#  5. helm template with those values (and another release name) renders
#     the expected kinds, each decoding strictly into its Kubernetes type,
#     with RBAC rules identical to config/rbac (and config/rollout-restart)
#     and, with defaults, the Deployment and metrics Service of config/
#     (hack/helmcheck render);
#  6. every flag of `go run ./cmd --help` is rendered in the Deployment's
#     args with default values (or is in hack/helmcheck/flags-allowlist.txt),
#     every rendered flag exists, and docs/helm.md names each flag;
#  7. values.schema.json rejects bad values and the templates refuse
#     inconsistent ones;
#  8. every value has a default, a schema entry and a row in docs/helm.md;
#  9. when KUBEBUILDER_ASSETS names envtest binaries (`make envtest`), an
#     envtest API server accepts every rendered object (server-side dry run).
# Needs only Go and the Go module proxy. Writes nothing but ./bin/helm.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=${HELM_VERSION:-v3.22.0}
LOCALBIN=${LOCALBIN:-$PWD/bin}
CHART=charts/tokensync
NS=tokensync-system
GO=${GO:-go}

log() { echo "verify-helm: $*"; }
fail() { echo "verify-helm: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Keep helm away from the user's repositories, plugins and caches.
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data

# 1. helm, pinned (hack/install-helm.sh).
HELM=$(HELM_VERSION=$HELM_VERSION LOCALBIN=$LOCALBIN GO=$GO hack/install-helm.sh) || fail "cannot install helm $HELM_VERSION"
log "using $("$HELM" version --short)"

# 2. The chart's CRDs are those `make manifests` generates.
hack/sync-chart-crds.sh --check

# 3. The default image is the one kustomize deploys.
kust=config/manager/kustomization.yaml
want_tag=$(awk '$1=="newTag:" {print $2; exit}' "$kust")
want_repo=$(awk '$1=="newName:" {print $2; exit}' "$kust")
app_version=$(awk '$1=="appVersion:" {gsub(/"/, "", $2); print $2; exit}' "$CHART/Chart.yaml")
repo=$(awk '/^image:/ {img=1; next} img && $1=="repository:" {print $2; exit}' "$CHART/values.yaml")
[[ -n $want_tag && $app_version == "$want_tag" ]] || fail "Chart.yaml appVersion '$app_version' is not newTag '$want_tag' of $kust"
[[ -n $want_repo && $repo == "$want_repo" ]] || fail "values.yaml image.repository '$repo' is not newName '$want_repo' of $kust"
log "image $repo:$app_version matches $kust"

# 4. Lint.
shopt -s nullglob
ci_values=("$CHART"/ci/*-values.yaml)
((${#ci_values[@]})) || fail "no $CHART/ci/*-values.yaml"
"$HELM" lint --strict "$CHART" >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; fail "helm lint --strict $CHART"; }
for f in "${ci_values[@]}"; do
	"$HELM" lint --strict "$CHART" -f "$f" >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; fail "helm lint --strict $CHART -f $f"; }
done
log "helm lint --strict: defaults and ${#ci_values[@]} ci values file(s) pass"

# 5. Render and check against config/.
"$GO" build -o "$work/helmcheck" ./hack/helmcheck
render() { # render OUT [helm template args...]
	local out=$1
	shift
	"$HELM" template tokensync "$CHART" --namespace "$NS" --include-crds "$@" >"$out" ||
		fail "helm template $CHART $*"
}
render "$work/default.yaml"
"$work/helmcheck" render -rendered "$work/default.yaml" -same-as-kustomize \
	-kinds CustomResourceDefinition,ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Deployment,Service
grep -q '^kind: ServiceMonitor' "$work/default.yaml" && fail "a ServiceMonitor is rendered by default"
grep -qE '^  name: .*rollout-restart' "$work/default.yaml" && fail "rollout restart RBAC is rendered by default"
renders=("$work/default.yaml")
for f in "${ci_values[@]}"; do
	out=$work/$(basename "$f" .yaml).yaml
	render "$out" -f "$f"
	opts=()
	[[ $(basename "$f") == all-enabled-values.yaml ]] &&
		opts=(-all-config-roles -kinds "ServiceMonitor,ClusterRoleBinding,RoleBinding,ServiceAccount,Service")
	"$work/helmcheck" render -rendered "$out" "${opts[@]}"
	renders+=("$out")
done
[[ -f $CHART/ci/all-enabled-values.yaml ]] || fail "no $CHART/ci/all-enabled-values.yaml"
# Another release name: every name carries the fullname prefix.
"$HELM" template prod "$CHART" --namespace other --include-crds >"$work/release-prod.yaml" || fail "helm template with release prod"
"$work/helmcheck" render -rendered "$work/release-prod.yaml" -prefix prod-tokensync-
renders+=("$work/release-prod.yaml")

# 6. Every manager flag is a value. Flags come from the binary itself.
"$GO" run ./cmd --help >"$work/help.txt" 2>&1 || { cat "$work/help.txt" >&2; fail "go run ./cmd --help"; }
flags=$(sed -nE 's/^  -([A-Za-z0-9][A-Za-z0-9._-]*).*/\1/p' "$work/help.txt" | sort -u)
[[ -n $flags ]] || fail "found no flags in 'go run ./cmd --help' output"
allowlist=hack/helmcheck/flags-allowlist.txt
allowed=$(awk '!/^#/ && NF {print $1}' "$allowlist" | sort -u)
awk '!/^#/ && NF && NF < 2 {bad=1} END {exit bad}' "$allowlist" || fail "$allowlist: every flag needs a reason"
# args: the Deployment's container args, one per line, quotes removed.
deploy_args() {
	"$HELM" template tokensync "$CHART" --namespace "$NS" --show-only templates/deployment.yaml "$@" |
		awk '/^ *args:/ {a=1; next} a && /^ *- / {sub(/^ *- /, ""); gsub(/"/, ""); print; next} a && !/^ *#/ {a=0}'
}
deploy_args >"$work/args.txt"
missing=()
undocumented=()
for fl in $flags; do
	grep -qF -- "--$fl" docs/helm.md || undocumented+=("--$fl")
	if grep -qxF "$fl" <<<"$allowed"; then
		grep -qE "^--$fl(=|$)" "$work/args.txt" && fail "--$fl is in $allowlist but rendered: remove it from the allow-list"
		continue
	fi
	grep -qE "^--$fl(=|$)" "$work/args.txt" || missing+=("--$fl")
done
((${#missing[@]} == 0)) || fail "manager flags not rendered by the chart's Deployment with default values: ${missing[*]} (add a value in values.yaml, values.schema.json, templates/deployment.yaml and docs/helm.md, or justify it in $allowlist)"
((${#undocumented[@]} == 0)) || fail "docs/helm.md does not name the manager flags ${undocumented[*]}"
for fl in $allowed; do
	grep -qxF "$fl" <<<"$flags" || fail "$allowlist lists --$fl, which the manager no longer has"
done
for f in "${ci_values[@]}"; do deploy_args -f "$f"; done >>"$work/args.txt"
while read -r arg; do
	[[ $arg == --* ]] || fail "Deployment arg '$arg' is not a flag"
	fl=${arg#--}
	fl=${fl%%=*}
	grep -qxF "$fl" <<<"$flags" || fail "the chart renders --$fl, which the manager does not have"
done <"$work/args.txt"
log "all $(wc -w <<<"$flags") manager flags are rendered from values ($(wc -w <<<"$allowed") allow-listed: ${allowed//$'\n'/ }); every rendered flag exists"

# 7. Bad values are refused: by the schema...
bad_values=(
	"--set replicaCount=-1"
	"--set replicaCount=one"
	"--set image.pullPolicy=Sometimes"
	"--set image.repository="
	"--set-string leaderElection.leaseDuration=15"
	"--set leaderElection.enabled=yes"
	"--set controller.maxConcurrentReconciles=0"
	"--set controller.maxConcurrentReconciles=abc"
	"--set controller.maxTokenRequestsPerHost=-1"
	"--set controller.tokenURLAllowlist=a.example.com"
	"--set kubeAPI.qps=0"
	"--set logging.level=verbose"
	"--set logging.encoder=xml"
	"--set metrics.port=70000"
	"--set metrics.service.type=ExternalName"
	"--set metrics.serviceMonitor.interval=often"
	"--set rbac.rolloutRestart.enabled=true --set rbac.rolloutRestart.namespaces={Bad_NS}"
	"--set controler.maxConcurrentReconciles=8"
)
for args in "${bad_values[@]}"; do
	# shellcheck disable=SC2086 # args holds several words on purpose
	if "$HELM" template tokensync "$CHART" --namespace "$NS" $args >/dev/null 2>"$work/err.txt"; then
		fail "helm template accepts bad values: $args"
	fi
	grep -q "don't meet the specifications of the schema" "$work/err.txt" ||
		{ cat "$work/err.txt" >&2; fail "helm template $args failed, but not on the schema"; }
done
# ... and by the templates.
bad_combos=(
	"replicaCount > 1 needs leaderElection.enabled=true|--set replicaCount=2 --set leaderElection.enabled=false"
	"metrics.serviceMonitor.enabled needs metrics.enabled=true|--set metrics.enabled=false --set metrics.serviceMonitor.enabled=true"
	"metrics.port and healthProbe.port must differ|--set metrics.port=8081"
)
for c in "${bad_combos[@]}"; do
	msg=${c%%|*}
	args=${c#*|}
	# shellcheck disable=SC2086
	if "$HELM" template tokensync "$CHART" --namespace "$NS" $args >/dev/null 2>"$work/err.txt"; then
		fail "helm template accepts $args"
	fi
	grep -qF "$msg" "$work/err.txt" || { cat "$work/err.txt" >&2; fail "helm template $args failed without '$msg'"; }
done
log "values.schema.json refuses ${#bad_values[@]} bad values; the templates refuse ${#bad_combos[@]} inconsistent ones"

# 8. The values table.
"$work/helmcheck" docs -schema "$CHART/values.schema.json" -values "$CHART/values.yaml" -doc docs/helm.md

# 9. An API server accepts the objects (optional: needs envtest's binaries).
if [[ -n ${KUBEBUILDER_ASSETS:-} && -x ${KUBEBUILDER_ASSETS}/kube-apiserver && -x ${KUBEBUILDER_ASSETS}/etcd ]]; then
	for r in "${renders[@]}"; do
		"$work/helmcheck" dryrun -rendered "$r"
	done
else
	log "KUBEBUILDER_ASSETS not set: server-side dry run skipped (run with KUBEBUILDER_ASSETS=\$(hack/install-envtest.sh bin))"
fi

log "OK"
