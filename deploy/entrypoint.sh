#!/usr/bin/env bash
# The image's entry point: one image, one role per container, chosen by ZOO_ROLE (or the first argument).
#   serve       TorchServe and the gateway together (single-container mode, `zooserve serve`)
#   gateway     the gateway alone (`zooserve gateway`); its backends come from ZOO_BACKENDS/ZOO_ROUTES
#   torchserve  TorchServe alone, in its working directory (where it writes key_file.json), see container.py
#   keyproxy    nginx beside TorchServe in a Kubernetes pod: adds TorchServe's token, see container.py
# Anything else is run as a command, e.g. `docker run zooserve zooserve zoo list`.
# It runs under tini (the Dockerfile's ENTRYPOINT), which reaps the worker processes TorchServe leaves behind.
set -euo pipefail

role="${ZOO_ROLE:-serve}"
if [ $# -gt 0 ]; then
  case "$1" in
    serve|gateway|torchserve|keyproxy) role="$1"; shift ;;
    *) exec "$@" ;;
  esac
fi
# the HEALTHCHECK runs in a separate process that only sees the container's environment, not this script's
export ZOO_ROLE="$role"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case "$role" in
  serve) exec zooserve serve "$@" ;;
  gateway) exec zooserve gateway "$@" ;;
  torchserve|keyproxy) exec python "$here/container.py" "$role" "$@" ;;
  *) echo "unknown ZOO_ROLE '$role' (serve, gateway, torchserve or keyproxy)" >&2; exit 64 ;;
esac
