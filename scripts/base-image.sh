#!/usr/bin/env bash
# Makes the local Debian 12 (bookworm) base image the tests build on, once: debootstrap's minimal root
# filesystem from the Debian mirror, imported into Docker. Image registries are not reachable on our build
# machines, so the public base images (python:3.11-slim-bookworm, postgres, prometheus, ...) cannot be pulled;
# this image, from the same mirror apt uses, stands in for them. Skipped when the tag already exists.
#   scripts/base-image.sh [TAG]            default zooserve-local/bookworm:base
# Needs root (debootstrap) and a running dockerd. DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

tag="${1:-zooserve-local/bookworm:base}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
docker="${DOCKER:-docker}"

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
echo "making $tag with debootstrap from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
# the security and point-release updates too, as the official Debian images have them
cat > "$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -c . | "$docker" import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "made $tag" >&2
