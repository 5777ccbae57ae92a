#!/usr/bin/env bash
# Installs the system packages zooserve needs, where they are missing: a Java 17 runtime for TorchServe's
# frontend. Used by `make serve`, `make test` and the Dockerfile alike. Needs root (or sudo) to install.
set -euo pipefail

missing=()
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  missing+=(openjdk-17-jre-headless)
fi
for pkg in "$@"; do  # extra Debian packages a caller needs (for example the test services)
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing system packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
