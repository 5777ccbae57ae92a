"""A real TorchServe with three small archives, and gateways serving it on real sockets.

Gateways run on one background event loop (a thread) so a test can start one with its own settings
(a tiny memory budget, an in-flight cap of 1, a dead backend...) in milliseconds; the subprocess tests
in test_main.py run ``python -m zooserve.gateway`` and ``python -m zooserve.serve`` themselves.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import httpx
import pytest

from tests.conftest import photo, torchserve_ports
from zooserve._proto import zooserve_pb2_grpc as pb_grpc
from zooserve.gateway.server import GatewayServer
from zooserve.gateway.settings import BackendSettings, Settings
from zooserve.store.build import ArchiveOptions, build_archive
from zooserve.store.catalog import write_catalog
from zooserve.torchserve import TorchServe

MODELS = ("resnet18", "squeezenet1_0", "fractalnet_cifar100")


class LoopThread:
    """An asyncio loop in a daemon thread; the tests hand it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateways", daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class RunningGateway:
    def __init__(self, server: GatewayServer):
        self.server = server
        self.url = f"http://127.0.0.1:{server.rest_port}"
        self.grpc_target = f"127.0.0.1:{server.grpc_port}"
        self.http = httpx.Client(base_url=self.url, timeout=300)
        self.channel = grpc.insecure_channel(self.grpc_target)
        self.stub = pb_grpc.ZooServiceStub(self.channel)

    def predict(self, model: str, body: bytes | None = None, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {"Content-Type": "image/jpeg"})
        return self.http.post(f"/predict/{model}", content=photo("chelsea.jpg") if body is None else body,
                              headers=headers, **kwargs)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of GET /metrics (0 when the series does not exist yet)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name + (f"{{{wanted}}}" if labels else "")) + r" (\S+)"
        text = self.http.get("/metrics").text
        for line in text.splitlines():
            if not line.startswith("#"):
                sample = _sorted_labels(line)
                if match := re.fullmatch(pattern, sample):
                    return float(match.group(1))
        return 0.0

    def wait_for_metric(self, name: str, value: float, timeout: float = 120, **labels: str) -> None:
        deadline = time.monotonic() + timeout
        while self.metric(name, **labels) != value:
            assert time.monotonic() < deadline, f"{name}{labels} never reached {value}"
            time.sleep(0.05)

    def close(self) -> None:
        self.http.close()
        self.channel.close()


def _sorted_labels(line: str) -> str:
    match = re.fullmatch(r"([^{ ]+)\{(.*)\} (\S+)", line)
    if not match:
        return line
    labels = ",".join(sorted(re.findall(r'[a-zA-Z_]+="[^"]*"', match.group(2))))
    return f"{match.group(1)}{{{labels}}} {match.group(3)}"


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, catalog_snapshot):
    store = tmp_path_factory.mktemp("model_store")
    for name in MODELS:
        build_archive(name, store, ArchiveOptions())
    write_catalog(store, catalog_snapshot)  # the session's snapshot says what these archives carry, as a build does
    return store


@pytest.fixture(scope="session")
def torchserve(model_store, tmp_path_factory):
    with TorchServe(tmp_path_factory.mktemp("torchserve"), model_store, torchserve_ports()) as server:
        yield server


class Management:
    """TorchServe's management API, for the tests to look behind the gateway's back (keys read fresh:
    a test rotates them)."""

    def __init__(self, torchserve: TorchServe):
        self.torchserve = torchserve
        self.http = httpx.Client(base_url=torchserve.management_url, timeout=300)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.torchserve.keys().management}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    def registered(self) -> set[str]:
        return {m["modelName"] for m in self.request("GET", "/models").json()["models"]}

    def unload(self, *names: str) -> None:
        for name in names:
            assert self.request("DELETE", f"/models/{name}").status_code in (200, 404)


@pytest.fixture(scope="session")
def management(torchserve):
    client = Management(torchserve)
    yield client
    client.http.close()


def backend_for(torchserve: TorchServe, **overrides) -> BackendSettings:
    fields = dict(inference_url=torchserve.inference_url, management_url=torchserve.management_url,
                  grpc_address=f"127.0.0.1:{torchserve.ports.grpc_inference}", key_dir=torchserve.workdir)
    return BackendSettings(**(fields | overrides))


@pytest.fixture(scope="session")
def loop_thread():
    loop = LoopThread()
    yield loop
    loop.close()


@contextmanager
def running_gateway(loop_thread: LoopThread, config: Settings) -> Iterator[RunningGateway]:
    """A gateway with ``config`` on ``loop_thread``'s event loop, stopped on leaving."""

    async def create() -> GatewayServer:
        server = GatewayServer(config)
        await server.start()
        return server

    running = RunningGateway(loop_thread.run(create()))
    try:
        yield running
    finally:
        running.close()
        loop_thread.run(running.server.stop())


def gateway_starter(loop_thread: LoopThread, torchserve: TorchServe):
    """``with start(**settings) as gateway:`` a gateway on free ports in front of ``torchserve``, stopped on
    leaving (shared with tests/security, which cannot see these fixtures)."""

    @contextmanager
    def start(backend: BackendSettings | None = None, **settings) -> Iterator[RunningGateway]:
        config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0,
                          backends={"local": backend or backend_for(torchserve)}, **settings)
        with running_gateway(loop_thread, config) as running:
            yield running

    return start


@pytest.fixture(scope="session")
def start_gateway(loop_thread, torchserve):
    """``with start_gateway(**settings) as gateway:`` a gateway on free ports, stopped on leaving."""
    return gateway_starter(loop_thread, torchserve)


@pytest.fixture(scope="session")
def gateway(start_gateway) -> Iterator[RunningGateway]:
    """The default gateway: default settings, serving the session's TorchServe."""
    with start_gateway() as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def _catalog(catalog_snapshot):
    """Every gateway these tests start, in this process or as a process, reads the session's catalog snapshot."""
