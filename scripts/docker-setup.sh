#!/usr/bin/env bash
# Bring up a Docker engine and an offline base image for the builder's docker backend.
# Idempotent; never fails the caller: on any problem it prints why and exits 0, and the
# docker tests then skip with that reason.
#   KL_DOCKER_BASE   image to make (default kl-base/python:bookworm)
#   KL_DOCKER_ROOTFS cache dir for the debootstrap tree (default /var/cache/kl-base-bookworm)
set -u
BASE="${KL_DOCKER_BASE:-kl-base/python:bookworm}"
ROOTFS="${KL_DOCKER_ROOTFS:-/var/cache/kl-base-bookworm}"
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

# 3. base image (cached: the image itself, then the debootstrap tree)
if docker image inspect "$BASE" >/dev/null 2>&1; then
  echo "docker-setup: base image $BASE present"; exit 0
fi
if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
  command -v debootstrap >/dev/null || skip "debootstrap not installed; base image $BASE not built"
  echo "docker-setup: debootstrap bookworm into $ROOTFS (one-off, a few minutes)"
  as_root rm -rf "$ROOTFS.tmp"
  as_root debootstrap --variant=minbase --include=python3-minimal,python3 bookworm "$ROOTFS.tmp" "$MIRROR" \
    >/tmp/kl-debootstrap.log 2>&1 || skip "debootstrap failed (see /tmp/kl-debootstrap.log)"
  as_root rm -rf "$ROOTFS.tmp/var/cache/apt/archives/"*.deb "$ROOTFS.tmp/var/lib/apt/lists/"*
  as_root rm -rf "$ROOTFS" && as_root mv "$ROOTFS.tmp" "$ROOTFS"
fi
echo "docker-setup: importing $ROOTFS as $BASE"
as_root tar -C "$ROOTFS" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["python3"]' - "$BASE" >/dev/null || skip "docker import failed"
echo "docker-setup: base image $BASE ready"
