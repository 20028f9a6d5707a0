#!/usr/bin/env bash
# Stops the test node of up.sh and removes every trace of it, so that the
# next run starts clean; a no-op when nothing is left. Safe to run after a
# failed or interrupted start:
#  - the kubelet first (so that it restarts nothing), then every process in
#    its kubepods cgroups (the containers), then the other daemons, each by
#    its recorded PID, then whatever still runs in the network namespace
#    (containerd's shims, a server the test left behind);
#  - unmounts everything mounted under CLUSTER_DIR (Secret and
#    ServiceAccount volumes, container root filesystems, sandbox /dev/shm,
#    pod network namespaces);
#  - removes the kubepods cgroups, the network namespace (and with it the
#    bridge, the pods' veths and kube-proxy's iptables chains, which live in
#    it), restores the sysctls the kubelet rewrote, and deletes CLUSTER_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=env.sh
source hack/cluster/env.sh
D=$CLUSTER_DIR
log() { echo "cluster-down: $*" >&2; }

# stop NAME: SIGTERM, up to 10 s, then SIGKILL, the pid recorded by up.sh,
# if it is still the process up.sh started (its executable's name matches).
stop() {
	local f=$D/pids/$1 pid i
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q "$1" "/proc/$pid/cmdline" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$f"
}

# The kubepods cgroup of every hierarchy (cgroup v1 controllers, the named
# systemd hierarchy and the unified one on hybrid hosts).
kubepods() {
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -d ${h}kubepods ]] && echo "${h}kubepods"
	done
}

stop kubelet
# Containers: every process in the kubepods cgroups.
for ((round = 0; round < 20; round++)); do
	pids=$(kubepods | while read -r cg; do find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)
	[[ -n $pids ]] || break
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	sleep 0.2
done
for c in kube-proxy containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do
	stop "$c"
done

# Mounts under the state directory, deepest first.
if [[ -d $D ]]; then
	for ((round = 0; round < 5; round++)); do
		mapfile -t mnts < <(awk -v d="$D/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
		((${#mnts[@]})) || break
		for m in "${mnts[@]}"; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		done
	done
fi

# cgroups, deepest first (a cgroup with no process left can be removed).
for cg in $(kubepods); do
	find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	[[ ! -d $cg ]] || log "could not remove $cg"
done

if ip netns list | grep -qw "^$CLUSTER_NETNS"; then
	# Whatever still runs in the namespace (the shims, a server the test
	# started and could not stop), by PID.
	for ((round = 0; round < 10; round++)); do
		pids=$(ip netns pids "$CLUSTER_NETNS" 2>/dev/null)
		[[ -n $pids ]] || break
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.2
	done
	ip netns delete "$CLUSTER_NETNS"
fi

if [[ -f $D/sysctl.saved ]]; then
	while IFS= read -r kv; do
		sysctl -q -w "$kv" >/dev/null || log "could not restore $kv"
	done <"$D/sysctl.saved"
fi
if [[ -d $D ]] && ! rm -rf "$D"; then
	log "could not remove $D"
	exit 1
fi
exit 0
