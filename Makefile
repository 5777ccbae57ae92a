# zooserve: `make serve` serves, `make test` tests. Both create or reuse the virtualenv in $(VENV).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ZOOSERVE := $(VENV)/bin/zooserve
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps serve test bench tune soak catalog docs clean demo-ab audit

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.py $(wildcard proto/*/*.proto proto/*/*/*.proto)
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

# the tests also start a real PostgreSQL, a real Prometheus, a headless Chromium and nginx (the key proxy), and
# lint the entry point with shellcheck (Debian packages, installed before pytest runs: never mid-test)
TEST_DEBS := postgresql prometheus chromium nginx shellcheck

test: venv
	scripts/system-deps.sh $(TEST_DEBS)
	$(PY) -m pytest

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
