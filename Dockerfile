# zooserve: two images from one file (docs/deploy.md).
#
#   docker build --target gateway -t zooserve-gateway:0.1.0 .                        the gateway, no torch
#   docker build --target torchserve -t zooserve-torchserve:0.1.0-cpu .              TorchServe, CPU
#   docker build --target torchserve --build-arg VARIANT=gpu -t zooserve-torchserve:0.1.0-gpu .
#
# The gateway image carries requirements-gateway.txt only; the TorchServe image carries requirements.txt (which
# includes the gateway's list), Java 17, the handler and the model archives. Both are built by `make images`
# and started for real by tests/deploy (`make test`).
#
# GPU: torch's Linux wheels bring their own CUDA libraries (the nvidia-* wheels), and the NVIDIA container
# toolkit mounts the host's driver, so the GPU variant needs no CUDA base image. Python packages come from
# pip's indexes, or only from ./wheelhouse with
# --build-arg PIP_NO_INDEX=1 (`make wheelhouse` fills it from pip's local sources; the tests build that way).
# Only the classic builder is assumed (no `# syntax=` line, no RUN --mount): it builds every stage before the
# target, so a gateway build also installs torch in its build stages (the catalog snapshot the gateway reads is
# made with torch); none of it reaches the gateway image.

# the public image users pull; the tests pass a Debian 12 one made with debootstrap (scripts/base-image.sh)
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
# the user every container runs as (numeric, so that Kubernetes can check runAsNonRoot)
ARG UID=10001

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG UID
RUN groupadd --system --gid "${UID}" zoo \
    && useradd --system --uid "${UID}" --gid zoo --home-dir /var/lib/zooserve --no-create-home \
       --shell /usr/sbin/nologin zoo
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # the root filesystem is read-only where it runs: anything that writes to $HOME or a cache goes to /tmp
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/cache

# ---------------------------------------------------------------------------------------------------------
# the gateway's virtualenv (no torch)
FROM python AS deps-gateway
ENV PIP_FIND_LINKS=/wheelhouse
# 1: install from the wheelhouse only; an extra index, e.g. https://download.pytorch.org/whl/cpu for torch's
# CPU wheels. Unset unless given (pip reads both variables itself).
ARG PIP_NO_INDEX
ARG PIP_EXTRA_INDEX_URL
COPY wheelhouse/ /wheelhouse/
RUN python3.11 -m venv /opt/venv
WORKDIR /app
COPY requirements-gateway.txt ./
RUN pip install -r requirements-gateway.txt

# the project itself, editable, without touching the pinned dependencies, as the Makefile installs it (the
# install generates the gRPC modules into zooserve/_proto, see setup.py; the runtime filesystem is read-only)
FROM deps-gateway AS app-gateway
COPY pyproject.toml setup.py README.md requirements.txt requirements-gateway.txt requirements-dev.txt ./
COPY proto/ proto/
COPY zooserve/ zooserve/
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q zooserve

# ---------------------------------------------------------------------------------------------------------
# TorchServe's virtualenv: the gateway's plus torch and the rest of requirements.txt
FROM deps-gateway AS deps-torchserve
# (build arguments do not pass from one stage to the next)
ARG PIP_NO_INDEX
ARG PIP_EXTRA_INDEX_URL
# cpu or gpu. gpu: torch's CUDA build, as PyPI has it (checked). cpu: torch's CPU build from PyTorch's own index
# (the same pins resolve to 2.14.1+cpu, without the CUDA libraries), unless PIP_NO_INDEX or another
# PIP_EXTRA_INDEX_URL is given: our build machines reach no such index and install the wheelhouse's CUDA
# build, which runs on a CPU as well.
ARG VARIANT=cpu
COPY requirements.txt ./
RUN if [ "${VARIANT}" = cpu ]; then \
      export PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}"; \
    fi \
    && pip install -r requirements.txt \
    && python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" \
    && if [ "${VARIANT}" = gpu ]; then python -c "import sys, torch; sys.exit(torch.version.cuda is None)"; fi

# the project as app-gateway installed it (code, generated gRPC modules, bytecode), installed here too
FROM deps-torchserve AS app-torchserve
# all: every archive carries its measured runtime's artefact (zooserve/zoo/data/runtimes.json); else only
# these models' (comma-separated), the others serve on eager (`make images` keeps the test image small so)
ARG MEASURED_RUNTIMES=all
COPY --from=app-gateway /app /app
RUN pip install --no-deps --no-build-isolation -e . \
    # every registry entry as model_store/<name>.mar, and the catalog snapshot beside them, which the gateway
    # image takes (building it needs torch). Fixed-seed weights keep the image small (docs/deploy.md: mounting
    # a store built with the published weights); a fixed-seed archive on eager is a few KiB, one whose
    # measured runtime needs an exported artefact carries it (and the weights in it)
    && ZOO_WEIGHTS=fixed-seed zooserve store build --all --store /app/model_store \
       --measured-only "${MEASURED_RUNTIMES}" \
    && mkdir /opt/catalog && find /app/model_store -maxdepth 1 -name '*.json' -exec cp -t /opt/catalog {} +

# ---------------------------------------------------------------------------------------------------------
FROM python AS gateway
ARG UID
COPY --from=app-gateway /opt/venv /opt/venv
COPY --from=app-gateway /app /app
# the store's catalog snapshot (what the gateway knows of each model, written with the archives; no archives)
COPY --from=app-torchserve /opt/catalog/ /app/model_store/
COPY deploy/entrypoint.sh deploy/container.py /app/deploy/
# the record store's SQLite file when no database URL is given (a volume where it matters)
RUN mkdir -p /app/logs && chown zoo:zoo /app/logs
ENV ZOO_ROLE=gateway \
    ZOO_HOST=0.0.0.0 \
    ZOO_LOG_FORMAT=json
WORKDIR /app
USER ${UID}:${UID}
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/container.py", "health"]
# the gateway is PID 1 and handles SIGTERM itself: it refuses new requests and drains those in flight
ENTRYPOINT ["/app/deploy/entrypoint.sh"]

# ---------------------------------------------------------------------------------------------------------
FROM python AS torchserve
ARG UID
# Java 17 for TorchServe's frontend (the script `make test` runs), nginx for the key proxy of Kubernetes pods,
# tini as PID 1 (it forwards signals to TorchServe's Java process and reaps the workers it leaves behind)
COPY scripts/system-deps.sh /usr/local/bin/system-deps.sh
# (slim images have no man directories, and the JRE's update-alternatives wants to link its man page there)
RUN mkdir -p /usr/share/man/man1 \
    && system-deps.sh nginx tini \
    && rm -rf /var/lib/apt/lists/*
# the dependencies (several GB, and unchanged by a change to zooserve: that layer stays cached), then the
# project, installed on them as in app-torchserve
COPY --from=deps-torchserve /opt/venv /opt/venv
COPY --from=app-torchserve /app /app
RUN pip install --no-deps --no-build-isolation -e /app
COPY deploy/entrypoint.sh deploy/container.py /app/deploy/
COPY deploy/keyproxy/ /app/deploy/keyproxy/
COPY deploy/torchserve/ /app/deploy/torchserve/
# the only writable places (compose and Kubernetes mount volumes there, the root filesystem is read-only):
# TorchServe's working directory (key file, config) and, for `python -m zooserve.serve`, the repo's logs/
RUN mkdir -p /var/lib/zooserve/torchserve /app/logs \
    && chown -R zoo:zoo /var/lib/zooserve /app/logs
ENV TORCH_HOME=/tmp/torch \
    ZOO_HOST=0.0.0.0 \
    ZOO_LOG_FORMAT=json \
    ZOO_MODEL_STORE=/app/model_store \
    ZOO_TS_WORKDIR=/var/lib/zooserve/torchserve \
    ZOO_ROLE=torchserve \
    # what the NVIDIA container toolkit exposes on a GPU host: CUDA compute, and nvidia-smi for GPU metrics
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /app
USER ${UID}:${UID}
# TorchServe's own inference and management ports stay on loopback (deploy/container.py refuses anything
# else); 8082 is its metrics port, 9080/9081/9070 the key proxy's, 8000/50051 the gateway's in role serve
EXPOSE 8082
# the role's own check (deploy/container.py): TorchServe's /ping with its token, or the proxy's /ping
HEALTHCHECK --interval=10s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "/app/deploy/container.py", "health"]
ENTRYPOINT ["tini", "-g", "--", "/app/deploy/entrypoint.sh"]
