# shellcheck shell=bash
# Settings shared by the scripts of the test node (sourced by up.sh, down.sh,
# images.sh and test.sh). Each may be overridden from the environment.

# The network namespace that holds the whole cluster: etcd, kube-apiserver,
# the controllers, containerd, the kubelet, kube-proxy, every pod and the
# test's own servers. It has loopback (which also holds the node IP) and the
# pods' bridge, and no route off the machine.
CLUSTER_NETNS=${CLUSTER_NETNS:-tokensync-node}
# All state: certificates, etcd data, containerd's root and state, the
# kubelet's root, logs and pid files. Removed by down.sh.
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/tokensync-cluster}
# Serialises runs on this machine (the node's cgroups and sysctls are global).
CLUSTER_LOCK=${CLUSTER_LOCK:-/run/lock/tokensync-cluster.lock}

NODE_NAME=tokensync-node
# Addresses exist only inside CLUSTER_NETNS.
NODE_IP=10.213.0.1
SERVICE_CIDR=10.213.1.0/24
APISERVER_SERVICE_IP=10.213.1.1
POD_CIDR=10.213.2.0/24
POD_GATEWAY=10.213.2.1
BRIDGE=tsbr0

# Images built by images.sh and imported into containerd (imagePullPolicy:
# Never: nothing is pulled).
MANAGER_IMAGE=tokensync.local/tokensync:cluster
PAUSE_IMAGE=tokensync.local/pause:cluster
CONSUMER_IMAGE=tokensync.local/consumer:cluster

# The kubelet rewrites these global sysctls; down.sh restores them.
CLUSTER_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# in_netns CMD...: runs CMD in the cluster's network namespace (and only
# that namespace: the mount namespace stays the host's, so containerd, the
# kubelet and runc see each other's mounts).
in_netns() {
	nsenter --net="/run/netns/$CLUSTER_NETNS" -- "$@"
}
