#!/usr/bin/env bash
# Checks the Helm chart charts/tokensync (kustomize's config/ stays the
# primary install path; the chart must install the same thing). Tools do
# what they can; hack/helmcheck does only what none does:
#  1. copies: crds/ and files/ (the roles' rules) are those of config/
#     (hack/sync-chart.sh --check);
#  2. the default image is config/manager's (appVersion, image.repository);
#  3. helm lint --strict, with the defaults and with each ci/*-values.yaml;
#  4. helm template with those values (and another release name):
#     references between objects, the manager's Roles against its
#     --watch-namespaces, and, with defaults, the Deployment and metrics
#     Service of config/ (helmcheck render);
#  5. every flag of `go run ./cmd --help` is rendered in the Deployment's
#     args with default values (or is in hack/helmcheck/flags-allowlist.txt),
#     every rendered flag exists, and docs/helm.md names each flag;
#  6. values.schema.json rejects bad values and the templates refuse
#     inconsistent ones;
#  7. docs/helm.md is what helm-docs writes from values.yaml, with a
#     description for every value (hack/helm-docs.sh --check), and every
#     value of the schema has a default (helmcheck values);
#  8. against an envtest API server (KUBEBUILDER_ASSETS) with the CRD
#     installed: kubeconform -strict validates every rendered object,
#     kustomize build of config/default and config/namespaced, and the
#     samples, against schemas made from that server's OpenAPI (helmcheck
#     schemas); then the server accepts every rendered object with
#     kubectl apply --dry-run=server --validate=strict.
# `make verify-helm` installs the pinned tools and sets HELM, KUBECONFORM,
# HELM_DOCS, KUSTOMIZE and KUBEBUILDER_ASSETS. Writes nothing in the tree.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HELM:?run make verify-helm}" "${KUBECONFORM:?run make verify-helm}" "${HELM_DOCS:?run make verify-helm}" "${KUSTOMIZE:?run make verify-helm}"
CHART=charts/tokensync
NS=tokensync-system
GO=${GO:-go}

log() { echo "verify-helm: $*"; }
fail() { echo "verify-helm: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d)
apiserver=
cleanup() {
	if [[ -n $apiserver ]]; then
		kill "$apiserver" 2>/dev/null || true
		wait "$apiserver" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# Keep helm away from the user's repositories, plugins and caches.
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
[[ $("$HELM" version --template '{{.Version}}') == v3.* ]] || fail "$HELM is not helm v3"
log "using helm $("$HELM" version --short), kubeconform $("$KUBECONFORM" -v), $("$HELM_DOCS" --help >/dev/null && basename "$HELM_DOCS")"

# 1. The chart's CRDs and role rules are those `make manifests` generates.
hack/sync-chart.sh --check

# 2. The default image is the one kustomize deploys.
kust=config/manager/kustomization.yaml
want_tag=$(awk '$1=="newTag:" {print $2; exit}' "$kust")
want_repo=$(awk '$1=="newName:" {print $2; exit}' "$kust")
app_version=$(awk '$1=="appVersion:" {gsub(/"/, "", $2); print $2; exit}' "$CHART/Chart.yaml")
repo=$(awk '/^image:/ {img=1; next} img && $1=="repository:" {print $2; exit}' "$CHART/values.yaml")
[[ -n $want_tag && $app_version == "$want_tag" ]] || fail "Chart.yaml appVersion '$app_version' is not newTag '$want_tag' of $kust"
[[ -n $want_repo && $repo == "$want_repo" ]] || fail "values.yaml image.repository '$repo' is not newName '$want_repo' of $kust"
log "image $repo:$app_version matches $kust"

# 3. Lint.
shopt -s nullglob
ci_values=("$CHART"/ci/*-values.yaml)
((${#ci_values[@]})) || fail "no $CHART/ci/*-values.yaml"
"$HELM" lint --strict "$CHART" >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; fail "helm lint --strict $CHART"; }
for f in "${ci_values[@]}"; do
	"$HELM" lint --strict "$CHART" -f "$f" >"$work/lint.out" 2>&1 || { cat "$work/lint.out" >&2; fail "helm lint --strict $CHART -f $f"; }
done
log "helm lint --strict: defaults and ${#ci_values[@]} ci values file(s) pass"

# 4. Render, and check what relates the objects to each other and to config/.
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
	case $(basename "$f") in
	all-enabled-values.yaml) opts=(-all-config-roles -kinds "ServiceMonitor,ClusterRoleBinding,RoleBinding,ServiceAccount,Service") ;;
	namespaced-values.yaml) opts=(-kinds "Role,RoleBinding") ;;
	esac
	"$work/helmcheck" render -rendered "$out" "${opts[@]}"
	renders+=("$out")
done
[[ -f $CHART/ci/all-enabled-values.yaml && -f $CHART/ci/namespaced-values.yaml ]] || fail "no $CHART/ci/all-enabled-values.yaml or namespaced-values.yaml"
# Another release name: every name carries the fullname prefix.
"$HELM" template prod "$CHART" --namespace other --include-crds >"$work/release-prod.yaml" || fail "helm template with release prod"
"$work/helmcheck" render -rendered "$work/release-prod.yaml" -prefix prod-tokensync-
renders+=("$work/release-prod.yaml")

# 5. Every manager flag is a value. Flags come from the binary itself.
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
((${#missing[@]} == 0)) || fail "manager flags not rendered by the chart's Deployment with default values: ${missing[*]} (add a value in values.yaml, values.schema.json and templates/deployment.yaml, or justify it in $allowlist)"
((${#undocumented[@]} == 0)) || fail "docs/helm.md does not name the manager flags ${undocumented[*]} (document their values in values.yaml and run make helm-docs-gen)"
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

# 6. Bad values are refused: by the schema...
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
	"--set-string kubeAPI.compression=yes"
	"--set logging.level=verbose"
	"--set logging.encoder=xml"
	"--set metrics.port=70000"
	"--set metrics.service.type=ExternalName"
	"--set metrics.serviceMonitor.interval=often"
	"--set rbac.rolloutRestart.enabled=true --set rbac.rolloutRestart.namespaces={Bad_NS}"
	"--set watchNamespaces={team-a,Bad_NS}"
	"--set watchNamespaces=team-a"
	"--set controler.maxConcurrentReconciles=8"
	"--set sharding.shards=0"
	"--set sharding.replicas=2"
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
	"sharding.shards > 1 needs leaderElection.enabled=true|--set sharding.shards=2 --set leaderElection.enabled=false"
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

# 7. The values table, and a default for every value of the schema.
HELM_DOCS=$HELM_DOCS hack/helm-docs.sh --check
"$work/helmcheck" values -schema "$CHART/values.schema.json" -values "$CHART/values.yaml"

# 8. kubeconform and a server-side dry run, against an envtest API server.
[[ -n ${KUBEBUILDER_ASSETS:-} && -x ${KUBEBUILDER_ASSETS}/kube-apiserver && -x ${KUBEBUILDER_ASSETS}/kubectl ]] ||
	fail "KUBEBUILDER_ASSETS does not name envtest's binaries (run make verify-helm, or set it with hack/install-envtest.sh bin)"
export KUBECONFIG=$work/kubeconfig
"$work/helmcheck" apiserver -kubeconfig "$KUBECONFIG" &
apiserver=$!
for _ in $(seq 600); do
	[[ -f $KUBECONFIG ]] && break
	kill -0 "$apiserver" 2>/dev/null || fail "the envtest API server did not start"
	sleep 0.2
done
[[ -f $KUBECONFIG ]] || fail "the envtest API server did not start within 2 minutes"
kubectl() { "$KUBEBUILDER_ASSETS/kubectl" "$@"; }
kubectl apply --server-side -f "$CHART/crds/" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
"$work/helmcheck" schemas -kubeconfig "$KUBECONFIG" -out "$work/schemas"
"$KUSTOMIZE" build config/default >"$work/kustomize-default.yaml"
"$KUSTOMIZE" build config/namespaced >"$work/kustomize-namespaced.yaml"
# ServiceMonitor: the Prometheus Operator's CRD is not installed here; the
# kind is checked by helmcheck render.
"$KUBECONFORM" -strict -summary -skip ServiceMonitor \
	-schema-location "$work/schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
	"${renders[@]}" "$work/kustomize-default.yaml" "$work/kustomize-namespaced.yaml" config/samples/oauth_*.yaml ||
	fail "kubeconform -strict: the objects above do not match the schemas of the API server"

# drop_kinds FILE REGEX: the documents of FILE whose kind does not match.
drop_kinds() {
	awk -v re="^kind: ($2)\$" '
		function flush() { if (!skip && doc ~ /(^|\n)kind: /) printf "---\n%s", doc; doc = ""; skip = 0 }
		/^---/ { flush(); next }
		{ if ($0 ~ re) skip = 1; doc = doc $0 "\n" }
		END { flush() }' "$1"
}
for r in "${renders[@]}"; do
	for n in $(awk '$1 == "namespace:" && NF == 2 {print $2}' "$r" | sort -u); do
		kubectl create namespace "$n" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
	done
	drop_kinds "$r" 'CustomResourceDefinition|ServiceMonitor' >"$work/objects.yaml"
	kubectl apply --dry-run=server --validate=strict -f "$work/objects.yaml" >"$work/dryrun.out" 2>&1 ||
		{ cat "$work/dryrun.out" >&2; fail "the API server refuses objects of $(basename "$r")"; }
	log "$(basename "$r"): the API server accepts its $(grep -c . "$work/dryrun.out") objects (server-side dry run; ServiceMonitor skipped, the API is not served here)"
done

log "OK"
