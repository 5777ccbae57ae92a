# zooserve: `make serve` serves, `make test` tests. Both create or reuse the virtualenv in $(VENV).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ZOOSERVE := $(VENV)/bin/zooserve
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps serve test bench tune soak catalog docs clean demo-ab audit wheelhouse images image-gpu

$(STAMP): requirements.txt requirements-gateway.txt requirements-dev.txt pyproject.toml setup.py $(wildcard proto/*/*.proto proto/*/*/*.proto)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

system-deps:
	scripts/system-deps.sh

# TorchServe and the gateway together (REST 127.0.0.1:8000, gRPC 127.0.0.1:50051); Ctrl-C stops both.
# Archives missing from model_store/ are built first.
serve: venv system-deps
	$(ZOOSERVE) serve

# The A/B demo: resnet20_digits and resnet8_digits trained on scikit-learn's digits (cached in logs/demo-ab),
# served as an experiment (deploy/experiments.yaml), every held-out digit sent with feedback, the report printed.
demo-ab: venv system-deps
	$(ZOOSERVE) demo-ab

# the tests also start a real PostgreSQL, a real Prometheus, a headless Chromium, nginx (the key proxy) and
# containers (Docker's engine, started as root where it is not running, and the images of `make images`), and
# lint the entry point with shellcheck (Debian packages, installed before pytest runs: never mid-test)
TEST_DEBS := postgresql prometheus chromium nginx shellcheck docker.io debootstrap

test: venv
	scripts/system-deps.sh $(TEST_DEBS)
	DOCKER=$(DOCKER) scripts/dockerd.sh
	$(MAKE) images
	$(PY) -m pytest

# --- container images (docs/deploy.md) ---
# Debian's docker client: the classic builder (a newer client on PATH may insist on buildx, which Debian lacks)
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)
IMAGE_TAG := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# No image registry is reachable on our build machines: the images build on a Debian 12 base made with
# debootstrap (scripts/base-image.sh, once) and its Python, and install only from the wheelhouse. Elsewhere,
# plain `docker build` takes the public base image and PyPI (docs/deploy.md).
LOCAL_BASE := zooserve-local/bookworm:base
LOCAL_PYTHON := zooserve-local/python:3.11-slim-bookworm
PYTHON_IMAGE ?= $(LOCAL_PYTHON)
LOCUST_VERSION := $(shell sed -n 's/^locust==//p' requirements-dev.txt)
DOCKER_BUILD = DOCKER_BUILDKIT=0 $(DOCKER) build -q --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --build-arg PIP_NO_INDEX=1

# exactly the pinned wheels (and their dependencies), from pip's sources as configured here (local ones first)
wheelhouse/.stamp: requirements.txt requirements-gateway.txt requirements-dev.txt | $(STAMP)
	$(PY) -m pip wheel -q --disable-pip-version-check -r requirements.txt -w wheelhouse
	$(PY) -m pip wheel -q --disable-pip-version-check locust==$(LOCUST_VERSION) -w wheelhouse/locust
	touch $@
wheelhouse: wheelhouse/.stamp

# Only the models the container tests request carry their measured runtime's artefact in the TorchServe image
# (the others serve on eager): exporting every one would add minutes and GBs to each test run. `all`: every one.
# Both targets take it: the gateway's build runs the TorchServe stages too (its catalog snapshot comes from there).
IMAGE_MEASURED_RUNTIMES ?= resnet18,squeezenet1_0,resnet8_digits
ZOO_BUILD = $(DOCKER_BUILD) --build-arg MEASURED_RUNTIMES=$(IMAGE_MEASURED_RUNTIMES)

# the gateway (no torch) and TorchServe (CPU) images, and the stand-ins for the third-party images of
# docker-compose.yml that the compose test runs (tests/deploy/images); layers are cached between runs
images: wheelhouse
	DOCKER=$(DOCKER) scripts/base-image.sh $(LOCAL_BASE)
	$(DOCKER_BUILD) -t $(LOCAL_PYTHON) --build-arg BASE_IMAGE=$(LOCAL_BASE) \
		-f tests/deploy/images/python.Dockerfile tests/deploy/images
	$(ZOO_BUILD) --target gateway -t zooserve-gateway:$(IMAGE_TAG) .
	$(ZOO_BUILD) --target torchserve -t zooserve-torchserve:$(IMAGE_TAG)-cpu .
	$(DOCKER_BUILD) -t zooserve-local/postgres:15 --build-arg BASE_IMAGE=$(LOCAL_BASE) \
		-f tests/deploy/images/postgres.Dockerfile tests/deploy/images
	$(DOCKER_BUILD) -t zooserve-local/prometheus:debian --build-arg BASE_IMAGE=$(LOCAL_BASE) \
		-f tests/deploy/images/prometheus.Dockerfile tests/deploy/images
	$(DOCKER_BUILD) -t zooserve-local/locust:$(LOCUST_VERSION) --build-arg LOCUST_VERSION=$(LOCUST_VERSION) \
		-f tests/deploy/images/locust.Dockerfile wheelhouse/locust
	$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^zooserve'

# the GPU variant of the TorchServe image (it runs only on a GPU host; not part of make test)
image-gpu: wheelhouse
	$(DOCKER_BUILD) --target torchserve --build-arg VARIANT=gpu -t zooserve-torchserve:$(IMAGE_TAG)-gpu .

# make bench [MODELS=a,b] [DURATION=seconds per run] [CONCURRENCY=users; default: found by stepping]
#            [LIMIT_SECONDS=seconds per configuration (runtime, layout, batch size) of the limit]
#            [ROUNDS=interleaved rounds of our stack and its peers] [LIMIT_ROUNDS=interleaved rounds of the limit]
#            [OVERHEAD_REQUESTS=rounds of the sequential gateway-overhead measurement, one request per path each]
MODELS ?=
DURATION ?= 20
CONCURRENCY ?= 0
LIMIT_SECONDS ?= 6
OVERHEAD_REQUESTS ?= 400
ROUNDS ?= 3
LIMIT_ROUNDS ?= 3
bench: venv system-deps
	$(PY) -m loadtests.bench --models "$(MODELS)" --duration $(DURATION) --concurrency $(CONCURRENCY) \
		--limit-seconds $(LIMIT_SECONDS) --overhead-requests $(OVERHEAD_REQUESTS) --rounds $(ROUNDS) \
		--limit-rounds $(LIMIT_ROUNDS)

# make soak [SOAK_DURATION=seconds]: the stack under steady load (REST, gRPC, v2 and bad requests), its
# processes' memory and file descriptors sampled; writes loadtests/results/soak-*/ and docs/reliability.md
SOAK_DURATION ?= 600
soak: venv system-deps
	$(PY) -m loadtests.soak --duration $(SOAK_DURATION)

# Known vulnerabilities in our dependencies, from PyPI's advisory data (pip-audit): the pinned lines of both
# requirement files, then every package they installed in the virtualenv (their dependencies, as `pip freeze`
# lists them: without pip, setuptools and the project itself). --strict: a package that could not be audited
# fails the audit instead of passing unaudited. Accepted advisories, each with its reason: $(AUDIT_IGNORE).
# Not part of `make test`: docs/security.md says why.
AUDIT_IGNORE ?= tests/security/pip-audit-ignore.txt
PIP_AUDIT = $(VENV)/bin/pip-audit --strict --vulnerability-service pypi --progress-spinner off --no-deps --disable-pip \
	$(addprefix --ignore-vuln ,$(shell sed -e 's/\#.*//' $(AUDIT_IGNORE)))
audit: venv
	$(PIP_AUDIT) -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip freeze --exclude-editable > $(VENV)/installed-requirements.txt
	$(PIP_AUDIT) -r $(VENV)/installed-requirements.txt

# make tune [MODELS=a,b]: workers x threads, batch size and delay measured through TorchServe (docs/tuning.md)
tune: venv system-deps
	$(PY) -m loadtests.tune --models "$(or $(MODELS),resnet50,mobilenet_v2)"

catalog: venv
	$(ZOOSERVE) zoo list

docs: venv
	$(ZOOSERVE) zoo docs

clean:
	rm -rf $(VENV) model_store/*.mar .pytest_cache
