# zooserve: `make serve` serves, `make test` tests. Both create or reuse the virtualenv in $(VENV).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps serve test bench catalog docs clean demo-ab

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

system-deps:
	scripts/system-deps.sh

# TorchServe and the gateway together (REST 127.0.0.1:8000, gRPC 127.0.0.1:50051); Ctrl-C stops both.
# Archives missing from model_store/ are built first.
serve: venv system-deps
	$(PY) -m server.serve

# The A/B demo: resnet20_digits and resnet8_digits trained on scikit-learn's digits (cached in logs/demo-ab),
# served as an experiment (deploy/experiments.yaml), every held-out digit sent with feedback, the report printed.
demo-ab: venv system-deps
	$(PY) -m server.demo.ab

# the tests also start a real PostgreSQL, a real Prometheus and a headless Chromium (Debian packages)
TEST_DEBS := postgresql prometheus chromium

test: venv
	scripts/system-deps.sh $(TEST_DEBS)
	$(PY) -m pytest

# make bench [MODELS=a,b] [DURATION=seconds per run] [CONCURRENCY=users; default: found by stepping]
MODELS ?=
DURATION ?= 20
CONCURRENCY ?= 0
bench: venv system-deps
	$(PY) -m loadtests.bench --models "$(MODELS)" --duration $(DURATION) --concurrency $(CONCURRENCY)

catalog: venv
	$(PY) -m server.zoo list

docs: venv
	$(PY) -m server.zoo docs

clean:
	rm -rf $(VENV) model_store/*.mar .pytest_cache
