# zooserve: `make serve` serves, `make test` tests. Both create or reuse the virtualenv in $(VENV).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps serve test catalog docs clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

system-deps:
	scripts/system-deps.sh

# For now serving prints the catalog of architectures; TorchServe and the gateway follow.
serve: venv system-deps
	$(PY) -m server.zoo list

# the tests also start a real PostgreSQL and a real Prometheus (Debian packages)
TEST_DEBS := postgresql prometheus

test: venv
	scripts/system-deps.sh $(TEST_DEBS)
	$(PY) -m pytest

catalog: venv
	$(PY) -m server.zoo list

docs: venv
	$(PY) -m server.zoo docs

clean:
	rm -rf $(VENV) model_store/*.mar .pytest_cache
