"""Fixtures of the security tests: a real TorchServe started exactly as `make serve` starts it (the repo's
config: loopback, token authorization on, allowed_urls), one tiny archive, and gateways in front of it.

The model is resnet8_digits (0.1 M parameters, 32x32 inputs): the tests are about what reaches TorchServe and
what it refuses, so the cheapest model that really loads keeps them within seconds on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import torchserve_ports
from tests.deploy.conftest import K8S, OVERLAYS, ROOT, build, docker_compose
from tests.gateway.conftest import LoopThread, RunningGateway, gateway_starter
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.torchserve import TorchServe

MODEL = "resnet8_digits"


def marker(what: str) -> str:
    """A string that appears nowhere unless something copied it from our request."""
    return f"ZOOSEC{what}{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def secure_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("security_store")
    # on eager, whatever runtime was measured for it: the tests poison the weights file, which a worker reads
    # only on eager (an exported runtime loads its own artefact, weights included, and never opens it)
    build_archive(MODEL, store, ArchiveOptions(runtime="eager"))
    return store


@pytest.fixture(scope="session")
def torchserve(secure_store, tmp_path_factory) -> Iterator[TorchServe]:
    with TorchServe(tmp_path_factory.mktemp("security_torchserve"), secure_store, torchserve_ports()) as server:
        yield server


class Api:
    """One of TorchServe's HTTP APIs, called with a chosen token (or none)."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=120, trust_env=False)

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        return self.http.request(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="session")
def management(torchserve) -> Iterator[Api]:
    api = Api(torchserve.management_url)
    yield api
    api.http.close()


@pytest.fixture(scope="session")
def inference(torchserve) -> Iterator[Api]:
    api = Api(torchserve.inference_url)
    yield api
    api.http.close()


def registered(torchserve: TorchServe, management: Api) -> set[str]:
    response = management.request("GET", "/models", torchserve.keys().management)
    assert response.status_code == 200, response.text
    return {m["modelName"] for m in response.json()["models"]}


def workers(torchserve: TorchServe, management: Api, model: str) -> list[str]:
    """The ids of the model's workers (a scaling or a restart changes them)."""
    response = management.request("GET", f"/models/{model}", torchserve.keys().management)
    assert response.status_code == 200, response.text
    return sorted(w["id"] for w in response.json()[0]["workers"])


def torchserve_logs(torchserve: TorchServe) -> str:
    """Everything TorchServe wrote: its log files (frontend, access, worker, metrics) and its stdout."""
    files = [*sorted((torchserve.workdir / "logs").glob("*.log")), torchserve.workdir / "torchserve.out"]
    return "".join(path.read_text(errors="replace") for path in files if path.exists())


def wait_for_access_log(torchserve: TorchServe, inference: Api, timeout: float = 30) -> None:
    """Returns once TorchServe's logs hold everything sent before: async_logging=true writes them late, so a
    request for a path of our own is sent last and awaited in the access log."""
    sentinel = marker("sentinel")
    inference.request("GET", f"/{sentinel}", torchserve.keys().inference)
    deadline = time.monotonic() + timeout
    while sentinel not in torchserve_logs(torchserve):
        assert time.monotonic() < deadline, "TorchServe never logged the sentinel request"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def start_gateway(loop_thread, torchserve):
    """``with start_gateway(**settings) as gateway:`` a real gateway on free ports, in front of our TorchServe."""
    return gateway_starter(loop_thread, torchserve)


@pytest.fixture(scope="session")
def gateway(start_gateway) -> Iterator[RunningGateway]:
    with start_gateway() as running:
        yield running


# --- the deployments' files, resolved as their tools resolve them ---

def compose(variant: str) -> dict:
    """`docker-compose config` (Docker Compose's own loader, no engine) of the gpu or cpu variant."""
    files = ["-f", str(ROOT / "docker-compose.yml"), "--profile", "grafana"]  # every service, Grafana too
    if variant == "cpu":
        files += ["-f", str(ROOT / "deploy" / "compose" / "cpu.yml")]
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "DOCKER_HOST": "unix:///nonexistent.sock"}
    result = subprocess.run([docker_compose(), *files, "config", "--format", "json"], capture_output=True,
                            text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def composes() -> dict[str, dict]:
    return {variant: compose(variant) for variant in ("gpu", "cpu")}


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict]]:
    """The Kubernetes overlays' objects, as `kubectl kustomize` builds them."""
    return {name: build(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session", autouse=True)
def _catalog(catalog_snapshot):
    """Every gateway these tests start, in this process or as a process, reads the session's catalog snapshot."""
