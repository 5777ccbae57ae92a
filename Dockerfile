# syntax=docker/dockerfile:1.7
# zooserve: one image for TorchServe, the gateway, both together, and the key proxy (deploy/entrypoint.sh).
#
#   docker build -t zooserve:gpu .                            NVIDIA CUDA runtime base (the default)
#   docker build -t zooserve:cpu --build-arg VARIANT=cpu .    slim Python base, no CUDA libraries from the base
#
# The Python dependencies are requirements.txt and the system packages scripts/system-deps.sh, the same
# files `make test` installs from, so the image runs what CI tested. The model archives are built into the
# image (fixed-seed archives are a few KiB each); docs/deploy.md says how to mount a store with real weights.
# Neither this file nor docker-compose.yml could be built or run on our build machines (no Docker engine);
# tests/deploy lints this file with hadolint.

ARG VARIANT=gpu
# Python 3.11 (pyproject.toml asks for 3.11) from the official image; the GPU stage copies it onto CUDA's Ubuntu.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
# torch 2.14.1's Linux wheels are built for CUDA 13.0 and bring their own CUDA libraries from PyPI; the base
# gives a matching runtime and the NVIDIA container toolkit's settings. Ubuntu 24.04's glibc (2.39) runs the
# Python built on Debian 12 (glibc 2.36).
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS python

# ---------------------------------------------------------------------------------------------------------
# build: the virtualenv, the generated gRPC code and the model archives. Nothing here reaches the runtime
# image but /opt/venv and /app.
FROM python AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# for a much smaller CPU image: --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (the same
# pins then resolve to torch 2.14.1+cpu); pip reads the variable itself
ARG PIP_EXTRA_INDEX_URL=""
RUN python -m venv /opt/venv
WORKDIR /app
# the dependency layer first, so that a code change does not reinstall torch
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY pyproject.toml setup.py README.md ./
COPY proto/ proto/
COPY zooserve/ zooserve/
# as the Makefile does: the project itself, editable, without touching the pinned dependencies
# (the install generates the gRPC modules into zooserve/_proto, see setup.py)
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q zooserve \
    # every registry entry (zooserve zoo list) as model_store/<name>.mar, the repo's default store, and the
    # catalog snapshot the gateway reads (model_store/catalog.json); fixed-seed: the image stays small
    # (docs/deploy.md: mounting a store built with the published weights)
    && ZOO_WEIGHTS=fixed-seed zooserve store build --all --store /app/model_store

# ---------------------------------------------------------------------------------------------------------
# the two runtime bases; VARIANT picks one, and BuildKit builds only that one
FROM ${CUDA_IMAGE} AS runtime-gpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=python /usr/local /usr/local
# the shared libraries the official Python image keeps for its interpreter and standard library (Ubuntu 24.04
# names), then the linker cache for /usr/local/lib/libpython3.11.so. Not pinned (DL3008): these are the base
# release's security-maintained libraries, and a pin would break the build at the next Ubuntu point release.
# hadolint ignore=DL3008
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates libbz2-1.0 libexpat1 libffi8 liblzma5 \
       libncursesw6 libreadline8t64 libsqlite3-0 libssl3t64 libuuid1 netbase tzdata zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && ldconfig \
    && python3.11 -c "import ssl, sqlite3, ctypes, lzma, bz2, uuid"
# what the NVIDIA container toolkit exposes: CUDA compute, and nvidia-smi for TorchServe's GPU metrics
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM python AS runtime-cpu

# ---------------------------------------------------------------------------------------------------------
# DL3006 asks for a tag: runtime-gpu/runtime-cpu are the stages above, not images from a registry
# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG UID=10001
# Java 17 for TorchServe's frontend (the script make runs), nginx for the key proxy of Kubernetes pods, tini
# as PID 1 (it forwards signals to TorchServe's Java process and reaps the workers it leaves behind)
COPY scripts/system-deps.sh /usr/local/bin/system-deps.sh
# (slim images have no man directories, and the JRE's update-alternatives wants to link its man page there)
RUN mkdir -p /usr/share/man/man1 \
    && system-deps.sh nginx tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${UID}" zoo \
    && useradd --system --uid "${UID}" --gid zoo --home-dir /var/lib/zooserve --no-create-home \
       --shell /usr/sbin/nologin zoo
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY deploy/entrypoint.sh deploy/container.py /app/deploy/
COPY deploy/keyproxy/ /app/deploy/keyproxy/
# the only writable places (Kubernetes mounts volumes there and keeps the root filesystem read-only):
# TorchServe's working directory (key file, logs) and, for `zooserve serve`, the repo's logs/
RUN mkdir -p /var/lib/zooserve/torchserve /app/logs \
    && chown -R zoo:zoo /var/lib/zooserve /app/logs
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # the root filesystem is read-only where it runs: anything that writes to $HOME or a cache goes to /tmp
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/cache \
    TORCH_HOME=/tmp/torch \
    ZOO_HOST=0.0.0.0 \
    ZOO_LOG_FORMAT=json \
    ZOO_MODEL_STORE=/app/model_store \
    ZOO_TS_WORKDIR=/var/lib/zooserve/torchserve \
    ZOO_ROLE=serve
WORKDIR /app
USER ${UID}:${UID}
# gateway REST and gRPC; TorchServe's own ports stay on loopback (its metrics port, 8082, is opened by the
# compose file and the Kubernetes config, never published)
EXPOSE 8000 50051
# the role's own check (deploy/container.py): the gateway's /healthz, or TorchServe's /ping with its token
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "/app/deploy/container.py", "health"]
ENTRYPOINT ["tini", "-g", "--", "/app/deploy/entrypoint.sh"]
