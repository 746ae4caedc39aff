#!/usr/bin/env bash
# Bring up a Docker engine and an offline base image for the builder's docker backend.
# Idempotent; never fails the caller: on any problem it prints why and exits 0, and the
# docker tests then skip with that reason.
#   KL_DOCKER_BASE       Python image to make (default kl-base/python:bookworm)
#   KL_DOCKER_NODE_BASE  Node.js image to make (default kl-base/node:bookworm; KL_DOCKER_NODE=0 skips it)
#   KL_DOCKER_ROOTFS     cache dir prefix for the debootstrap trees (default /var/cache/kl-base-bookworm)
set -u
BASE="${KL_DOCKER_BASE:-kl-base/python:bookworm}"
NODE_BASE="${KL_DOCKER_NODE_BASE:-kl-base/node:bookworm}"
ROOTFS_PREFIX="${KL_DOCKER_ROOTFS:-/var/cache/kl-base-bookworm}"
MIRROR="${KL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LOG="${KL_DOCKER_LOG:-/tmp/kl-dockerd.log}"

skip() { echo "docker-setup: skipped: $*"; exit 0; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
engine_up() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# 1. packages
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "docker-setup: installing ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null 2>&1 \
    || { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null 2>&1; } \
    || skip "apt-get install ${need[*]} failed (no root or no apt mirror)"
fi
command -v docker >/dev/null || skip "no docker client after install"

# 2. engine
if ! engine_up; then
  command -v dockerd >/dev/null || skip "dockerd not installed"
  echo "docker-setup: starting dockerd (log $LOG)"
  as_root sh -c "nohup dockerd >'$LOG' 2>&1 &" || skip "cannot start dockerd (needs root)"
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || skip "dockerd did not answer within 30 s (see $LOG): $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ')"
fi
echo "docker-setup: engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up"

# 3. base images (cached: the image itself, then the debootstrap tree)
# make_image IMAGE ROOTFS PACKAGES CHECK_BINARY CMD
make_image() {
  local image="$1" rootfs="$2" packages="$3" binary="$4" cmd="$5"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "docker-setup: base image $image present"; return 0
  fi
  if [ ! -x "$rootfs/usr/bin/$binary" ]; then
    command -v debootstrap >/dev/null || { echo "docker-setup: debootstrap not installed; $image not built"; return 1; }
    echo "docker-setup: debootstrap bookworm ($packages) into $rootfs (one-off, a few minutes)"
    as_root rm -rf "$rootfs.tmp"
    as_root debootstrap --variant=minbase --include="$packages" bookworm "$rootfs.tmp" "$MIRROR" \
      >"/tmp/kl-debootstrap-$binary.log" 2>&1 \
      || { echo "docker-setup: debootstrap failed (see /tmp/kl-debootstrap-$binary.log)"; return 1; }
    as_root rm -rf "$rootfs.tmp/var/cache/apt/archives/"*.deb "$rootfs.tmp/var/lib/apt/lists/"*
    as_root rm -rf "$rootfs" && as_root mv "$rootfs.tmp" "$rootfs"
  fi
  echo "docker-setup: importing $rootfs as $image"
  as_root tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c "CMD [\"$cmd\"]" - "$image" >/dev/null \
    || { echo "docker-setup: docker import of $image failed"; return 1; }
  echo "docker-setup: base image $image ready"
}

make_image "$BASE" "$ROOTFS_PREFIX" "python3-minimal,python3" python3 python3 || skip "no Python base image"
if [ "${KL_DOCKER_NODE:-1}" != 0 ]; then
  make_image "$NODE_BASE" "$ROOTFS_PREFIX-node" "nodejs" node node || echo "docker-setup: no Node.js base image (node docker tests skip)"
fi
exit 0
