#!/usr/bin/env bash
# `make image`: builds the Hookline OCI image on a Debian machine with no container registry
# reachable (only the Debian mirror and the Python package index):
#   1. installs podman, crun and mmdebstrap from Debian when missing (needs root);
#   2. makes the base image once: mmdebstrap a minbase bookworm root filesystem from this
#      machine's own apt sources and `podman import` it as $BASE_IMAGE (kept; delete it with
#      `scripts/podman.sh rmi $BASE_IMAGE` to rebuild it);
#   3. `podman build`s the Containerfile on top of it with chroot isolation and host
#      networking, the host CA bundle bind-mounted for uv (egress may be TLS-intercepted);
#      podman's layer cache makes a rebuild with an unchanged uv.lock take seconds.
# Environment: IMAGE (default localhost/hookline/hookline:<chart appVersion>), BASE_IMAGE, HOOKLINE_IMAGE_QUIET=1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
podman_sh="$root/scripts/podman.sh"

# the tag is the chart's appVersion: the chart's default image is exactly what this builds
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' helm/hookline/Chart.yaml)"
IMAGE="${IMAGE:-localhost/hookline/hookline:$version}"
# How the base root filesystem is made; its checksum names the base image, so changing the
# recipe makes a new base instead of silently reusing the old one. dpkg's path-excludes stay in
# the image (/etc/dpkg/dpkg.cfg.d), so the Containerfile's apt-get installs skip them too;
# copyright files are kept. apt's binary caches (about 80 MB) are dropped.
base_recipe=(
    --variant=minbase
    --format=tar
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --customize-hook='rm -f "$1"/var/cache/apt/*.bin'
)
base_tag="bookworm-$(printf '%s\n' "${base_recipe[@]}" | cksum | cut -d' ' -f1)"
BASE_IMAGE="${BASE_IMAGE:-localhost/hookline/debian-base:$base_tag}"
# uv exactly as the Makefile pins it for the development environment
uv_version="$(sed -n 's/^UV_VERSION *:= *//p' Makefile)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    revision="$revision-dirty"
fi
source_url="https://github.com/hookline/hookline"
ca_bundle="${HOOKLINE_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"

log() { printf 'image: %s\n' "$*" >&2; }

# 1. tools
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v crun >/dev/null 2>&1 || need+=(crun)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" ca-certificates >/dev/null
fi

# 2. base image, made once from this machine's apt sources
if ! "$podman_sh" image exists "$BASE_IMAGE"; then
    sources=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        if [ -s "$f" ] && grep -qE '^(deb |Types:)' "$f"; then
            sources+=("$f")
        fi
    done
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    log "making $BASE_IMAGE with mmdebstrap (${sources[*]:-default mirror})"
    mmdebstrap --quiet "${base_recipe[@]}" bookworm "$work/rootfs.tar" "${sources[@]}"
    "$podman_sh" import --quiet \
        --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
    rm -rf "$work"
    trap - EXIT
fi

# 3. the image
build_args=(
    --isolation chroot
    --network host
    --layers
    --file Containerfile
    --tag "$IMAGE"
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "VERSION=$version"
    --build-arg "UV_VERSION=$uv_version"
    --build-arg "REVISION=$revision"
    --build-arg "SOURCE=$source_url"
)
if [ -f "$ca_bundle" ]; then
    build_args+=(--volume "$ca_bundle:/run/build-ca/ca.crt:ro" --build-arg "BUILD_CA_FILE=/run/build-ca/ca.crt")
fi
if [ "${HOOKLINE_IMAGE_QUIET:-}" = 1 ]; then
    build_args+=(--quiet)
fi
log "building $IMAGE (revision $revision)"
"$podman_sh" build "${build_args[@]}" . >&2
echo "$IMAGE"
