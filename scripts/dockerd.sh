#!/usr/bin/env bash
# Starts the Docker engine where it is not running (Debian's docker.io: `dockerd` as root, overlay2), for the
# container tests of `make test`. It keeps running afterwards, as a system service would; its log is
# /var/log/zooserve-dockerd.log. Needs root (or sudo).
set -euo pipefail

docker="${DOCKER:-docker}"
"$docker" info >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "starting dockerd (log: /var/log/zooserve-dockerd.log)" >&2
$SUDO sh -c 'nohup dockerd >>/var/log/zooserve-dockerd.log 2>&1 &'
for _ in $(seq 60); do
  "$docker" info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; see /var/log/zooserve-dockerd.log" >&2
exit 1
