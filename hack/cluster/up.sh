#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine, without a
# Docker engine, entirely inside the network namespace CLUSTER_NETNS (see
# env.sh): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd, the kubelet and kube-proxy (iptables mode). Pods get addresses
# on the bridge BRIDGE (CNI bridge + host-local); the namespace has no route
# off the machine. Returns when the node is Ready, the default ServiceAccount
# exists and kube-proxy has programmed the kubernetes Service.
#
#   hack/cluster/up.sh ASSETS NODE_BIN IMAGES
#
# ASSETS holds kube-apiserver, etcd and kubectl (hack/install-envtest.sh),
# NODE_BIN the node binaries (install-node.sh), IMAGES the tarballs of
# images.sh, imported into containerd. Writes CLUSTER_DIR: admin.kubeconfig,
# logs/, pids/. Stop it with down.sh (which up.sh also runs first, to clear a
# run that was killed before it could clean up).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=env.sh
source hack/cluster/env.sh

ASSETS=${1:?usage: $0 <envtest-assets> <node-bin> <images>}
NODE_BIN=${2:?usage: $0 <envtest-assets> <node-bin> <images>}
IMAGES=${3:?usage: $0 <envtest-assets> <node-bin> <images>}
log() { echo "cluster-up: $(date -u +%T) $*" >&2; }
D=$CLUSTER_DIR
KUBECTL=(in_netns "$ASSETS/kubectl" --kubeconfig "$D/admin.kubeconfig")

hack/cluster/down.sh
started=$(date +%s)
mkdir -p "$D"/{pki,logs,pids,etcd,cni/net.d,cni/ipam,containerd,kubelet/root,kubelet/logs}
chmod 700 "$D" "$D/etcd"

# 1. The global sysctls the kubelet will rewrite, for down.sh.
for s in "${CLUSTER_SYSCTLS[@]}"; do
	echo "$s=$(sysctl -n "$s")"
done >"$D/sysctl.saved"

# 2. The network namespace: loopback, which also carries the node IP (the
# kernels here have no dummy driver, CONFIG_DUMMY), and later the pods'
# bridge. No veth to the host, no default route.
ip netns add "$CLUSTER_NETNS"
ip -n "$CLUSTER_NETNS" link set lo up
ip -n "$CLUSTER_NETNS" addr add "$NODE_IP/32" dev lo
# Service IPs from the namespace itself (the test scrapes the metrics
# Service): a locally sent packet needs a route before kube-proxy's OUTPUT
# rules rewrite its destination to a pod. Through lo, so it leads nowhere.
ip -n "$CLUSTER_NETNS" route add "$SERVICE_CIDR" dev lo

# 3. PKI: a CA, the API server's serving certificate, the ServiceAccount
# token signing key. Components authenticate with static tokens (never
# printed), each mapped to the identity the RBAC bootstrap policy expects.
(
	cd "$D/pki"
	umask 077
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tokensync-cluster-ca \
		-keyout ca.key -out ca.crt 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
	printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
		"$NODE_IP" "$APISERVER_SERVICE_IP" >apiserver.ext
	openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
		-extfile apiserver.ext -out apiserver.crt 2>/dev/null
	openssl genrsa -out sa.key 2048 2>/dev/null
	openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	: >tokens.csv
	for who in "admin|admin|system:masters" "kcm|system:kube-controller-manager|" "scheduler|system:kube-scheduler|" \
		"kubelet|system:node:$NODE_NAME|system:nodes" "proxy|system:kube-proxy|"; do
		IFS='|' read -r file user group <<<"$who"
		token=$(openssl rand -hex 24)
		echo "$token,$user,$user${group:+,\"$group\"}" >>tokens.csv
		cat >"../$file.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: node
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority: $D/pki/ca.crt
users:
- name: $file
  user:
    token: $token
contexts:
- name: node
  context: {cluster: node, user: $file}
current-context: node
KC
	done
)

# start NAME CMD...: runs CMD in the namespace, logs to logs/NAME.log, pid
# in pids/NAME. nsenter, started directly (not through a shell function,
# which would leave a subshell's pid in $!), execs CMD: the pid is CMD's.
start() {
	local name=$1
	shift
	nsenter --net="/run/netns/$CLUSTER_NETNS" -- "$@" </dev/null >"$D/logs/$name.log" 2>&1 &
	echo $! >"$D/pids/$name"
}
# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
	local what=$1 deadline=$(($(date +%s) + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) > deadline)); then
			log "timed out waiting for $what; logs in $D/logs"
			tail -n 20 "$D"/logs/*.log >&2 || true
			return 1
		fi
		sleep 0.2
	done
}

# 4. Control plane.
start etcd "$ASSETS/etcd" --name node --data-dir "$D/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster node=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
start kube-apiserver "$ASSETS/kube-apiserver" \
	--etcd-servers http://127.0.0.1:2379 \
	--advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
	--tls-cert-file "$D/pki/apiserver.crt" --tls-private-key-file "$D/pki/apiserver.key" \
	--client-ca-file "$D/pki/ca.crt" --token-auth-file "$D/pki/tokens.csv" \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$D/pki/sa.pub" --service-account-signing-key-file "$D/pki/sa.key" \
	--kubelet-preferred-address-types InternalIP --profiling=false
wait_for "kube-apiserver" 60 "${KUBECTL[@]}" get --raw /readyz
log "kube-apiserver ready"
start kube-controller-manager "$NODE_BIN/kube-controller-manager" \
	--kubeconfig "$D/kcm.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false \
	--use-service-account-credentials --service-account-private-key-file "$D/pki/sa.key" \
	--root-ca-file "$D/pki/ca.crt" --profiling=false
start kube-scheduler "$NODE_BIN/kube-scheduler" \
	--kubeconfig "$D/scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false --profiling=false

# 5. containerd: its own socket, root and state, the CNI config below, a
# sandbox image built here. restrict_oom_score_adj: root here lacks
# CAP_SYS_RESOURCE, and without it every sandbox fails ("can't get final
# child's PID from pipe: EOF"). Pod network namespaces are mounted under its
# state directory, not /run/netns.
cat >"$D/cni/net.d/10-tokensync.conflist" <<EOF2
{
  "cniVersion": "1.0.0",
  "name": "tokensync-node",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$D/cni/ipam",
             "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
             "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
EOF2
CTR_SOCK=$D/containerd/containerd.sock
cat >"$D/containerd/config.toml" <<EOF2
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
EOF2
start containerd containerd --config "$D/containerd/config.toml"
wait_for containerd 30 ctr --address "$CTR_SOCK" version
for tar in "$IMAGES"/*.tar; do
	ctr --address "$CTR_SOCK" -n k8s.io images import --snapshotter overlayfs "$tar" >/dev/null
done
log "containerd ready, images imported: $(ctr --address "$CTR_SOCK" -n k8s.io images ls -q | grep -c tokensync.local)"

# 6. The kubelet. cgroup v1 hosts need failCgroupV1: false. Low eviction
# thresholds and imageGCHighThresholdPercent 100, so that the imported
# images (which cannot be pulled again) are never collected. syncFrequency
# bounds how long a changed Secret takes to reach a mounted volume.
echo "# no nameservers: nothing outside the cluster's namespace is reachable" >"$D/resolv.conf"
cat >"$D/kubelet/config.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CTR_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
resolvConf: $D/resolv.conf
podLogsDir: $D/kubelet/logs
syncFrequency: ${KUBELET_SYNC_FREQUENCY:-5s}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
serializeImagePulls: false
EOF2
start kubelet "$NODE_BIN/kubelet" --config "$D/kubelet/config.yaml" --kubeconfig "$D/kubelet.kubeconfig" \
	--root-dir "$D/kubelet/root" --cert-dir "$D/kubelet/pki" \
	--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"

# 7. kube-proxy, iptables mode. It leaves global conntrack settings alone.
cat >"$D/kube-proxy.yaml" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $D/proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF2
start kube-proxy "$NODE_BIN/kube-proxy" --config "$D/kube-proxy.yaml"

node_ready() {
	[[ $("${KUBECTL[@]}" get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
wait_for "node $NODE_NAME Ready" 90 node_ready
log "node Ready"
wait_for "the default ServiceAccount" 60 "${KUBECTL[@]}" get serviceaccount default -n default
proxy_ready() {
	in_netns iptables -w -t nat -S KUBE-SERVICES | grep -q "default/kubernetes:https"
}
wait_for "kube-proxy to program the kubernetes Service" 60 proxy_ready
log "cluster up in $(($(date +%s) - started))s"
