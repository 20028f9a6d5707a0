#!/usr/bin/env bash
# Prints the memory the test node uses: the resident set of its daemons
# (pids/ of up.sh) and the memory of its pods (the kubepods cgroup).
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=env.sh
source hack/cluster/env.sh
kib=0
for f in "$CLUSTER_DIR"/pids/*; do
	pid=$(<"$f")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	kib=$((kib + ${rss:-0}))
done
# containerd's shims run in the namespace too.
for pid in $(ip netns pids "$CLUSTER_NETNS" 2>/dev/null); do
	if grep -q containerd-shim "/proc/$pid/cmdline" 2>/dev/null; then
		rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		kib=$((kib + ${rss:-0}))
	fi
done
pods=$(cat /sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes 2>/dev/null || echo 0)
echo "memory: daemons and shims $((kib / 1024)) MiB RSS, pods $((pods / 1048576)) MiB (kubepods cgroup)"
