#!/usr/bin/env bash
# Runs podman with this machine's quirks handled, so callers (make image, the container tests)
# never repeat them:
#   - a project-local containers.conf (CONTAINERS_CONF): host network namespace only (bridge
#     networking would create 10.88.0.0/16 and iptables rules on the host), cgroups disabled,
#     crun, nofile = the host's hard limit, nproc 4096;
#   - inside `unshare --mount` with the hybrid cgroup v2 mount (/sys/fs/cgroup/unified) hidden,
#     which otherwise makes podman believe it is on a unified hierarchy it cannot use.
# Usage: scripts/podman.sh <podman arguments...>
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
conf_dir="${HOOKLINE_PODMAN_CONF_DIR:-$here/../.podman}"
mkdir -p "$conf_dir"
conf="$conf_dir/containers.conf"
nofile="$(ulimit -Hn)"
want="$(cat <<CONF
# written by scripts/podman.sh; see the comment there
[containers]
netns = "host"
cgroups = "disabled"
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=4096:4096"]

[engine]
runtime = "crun"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)"
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
    printf '%s\n' "$want" > "$conf"
fi
export CONTAINERS_CONF="$conf"

if [ "${HOOKLINE_PODMAN_UNSHARED:-}" = 1 ]; then
    exec podman "$@"
fi
# hide the cgroup v2 half of a hybrid hierarchy in a private mount namespace
exec unshare --mount --propagation private -- bash -c '
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        umount -l /sys/fs/cgroup/unified
    fi
    HOOKLINE_PODMAN_UNSHARED=1 exec "$0" "$@"
' "$here/podman.sh" "$@"
