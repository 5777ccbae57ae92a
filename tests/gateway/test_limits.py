"""Limits and failures, each against real processes: the in-flight cap (429), TorchServe unreachable or
stopped (503), deadlines (504), refused and rotated tokens, and predictions over TorchServe's gRPC API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import photo, torchserve_ports
from tests.gateway.conftest import backend_for
from tests.gateway.test_grpc import rpc_error
from tests.gateway.test_rest import _decode_error, _truncated_tiff, error
from zooserve._proto import zooserve_pb2 as pb
from zooserve.gateway.backend.calls import KeyRing
from zooserve.gateway.backend.grpc_inference import GrpcInference
from zooserve.gateway.backend.http_inference import HttpInference
from zooserve.gateway.errors import DeadlineExceeded
from zooserve.torchserve import TorchServe


def test_in_flight_cap_answers_429_with_retry_after(start_gateway, management):
    model = "fractalnet_cifar100"
    management.unload(model)  # its first request then holds the one slot for seconds, while it loads
    with start_gateway(max_in_flight_per_model=1) as gateway, ThreadPoolExecutor(1) as pool:
        first = pool.submit(gateway.predict, model)
        gateway.wait_for_metric("zoo_requests_in_flight", 1.0, model=model)

        refused = gateway.predict(model)
        assert error(refused) == (429, "overloaded",
                                  f"too many requests in flight for '{model}' (at most 1); retry after 1 s")
        assert refused.headers["retry-after"] == "1"
        status, details, metadata = rpc_error(gateway.stub.Predict, pb.PredictRequest(model=model,
                                                                                       image=photo("chelsea.jpg")))
        assert (status, metadata["zoo-error-code"], metadata["retry-after"]) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded", "1")
        assert gateway.predict("resnet18").status_code == 200  # the cap is per model

        answer = first.result(timeout=300)
        assert answer.status_code == 200, answer.text
        assert answer.json()["timings"]["load_ms"] > 0  # loaded on first use
        assert gateway.predict(model).json()["timings"]["load_ms"] == 0
        assert gateway.metric("zoo_model_loads_total", model=model, outcome="loaded") == 1
        assert gateway.metric("zoo_requests_total", model=model, route="rest", code="429") == 1
        assert gateway.metric("zoo_requests_total", model=model, route="grpc", code="429") == 1
        assert model in management.registered()


def test_unreachable_backend_is_503(start_gateway, torchserve):
    closed = torchserve_ports()  # nothing listens there
    backend = backend_for(torchserve, inference_url=f"http://127.0.0.1:{closed.inference}",
                          management_url=f"http://127.0.0.1:{closed.management}",
                          grpc_address=f"127.0.0.1:{closed.grpc_inference}")
    with start_gateway(backend) as gateway:
        refused = gateway.predict("resnet18")
        assert error(refused) == (503, "backend_unavailable", "backend 'local' is unreachable")
        assert refused.headers["retry-after"] == "1"
        # the gateway's readiness is its own: it routes, and reports the backend that does not answer
        assert gateway.http.get("/readyz").json() == {"status": "ready", "backends": {"local": False}}
        assert gateway.http.get("/healthz").status_code == 200
        models = gateway.http.get("/models").json()["models"]
        assert not any(m["loaded"] for m in models)
        status, details, _ = rpc_error(gateway.stub.Predict, pb.PredictRequest(model="resnet18",
                                                                                image=photo("chelsea.jpg")))
        assert (status, details) == (grpc.StatusCode.UNAVAILABLE, "backend 'local' is unreachable")
        health = health_pb2_grpc.HealthStub(gateway.channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service="zooserve.v1.ZooService"), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert error(gateway.predict("resnt18"))[0] == 404  # names are still checked without a backend


def test_torchserve_stopping_fails_its_models_not_readiness(start_gateway, model_store, tmp_path):
    with TorchServe(tmp_path / "torchserve", model_store, torchserve_ports()) as torchserve:
        with start_gateway(backend_for(torchserve)) as gateway:
            _wait_until_ready(gateway)  # TorchServe opens its gRPC port a moment after its HTTP one
            assert gateway.http.get("/models").status_code == 200  # keep-alive connections in the pool
            torchserve.stop()
            _wait_until_silent(torchserve)
            assert error(gateway.predict("resnet18")) == (503, "backend_unavailable", "backend 'local' is unreachable")
            assert gateway.http.get("/readyz").status_code == 200


def _wait_until_silent(torchserve: TorchServe, timeout: float = 30) -> None:
    # stop() returns when the launcher exits; the Java frontend may answer a moment longer
    deadline = time.monotonic() + timeout
    while torchserve.ping():
        assert time.monotonic() < deadline, "TorchServe still answers after stop()"
        time.sleep(0.1)


def _wait_until_ready(gateway, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not gateway.http.get("/readyz").json()["backends"]["local"]:  # pinged every few seconds
        assert time.monotonic() < deadline, "the gateway never got ready"
        time.sleep(0.1)


def test_deadline_is_504(start_gateway, gateway):
    assert gateway.predict("resnet18").status_code == 200  # loaded: only the deadline can fail it
    with start_gateway(request_timeout_s=0.001) as hurried:
        assert error(hurried.predict("resnet18")) == (
            504, "deadline_exceeded", "no answer for 'resnet18' within the deadline of 0.001 s")
        status, details, metadata = rpc_error(hurried.stub.Predict, pb.PredictRequest(model="resnet18",
                                                                                       image=photo("chelsea.jpg")))
        assert (status, details) == (grpc.StatusCode.DEADLINE_EXCEEDED,
                                     "no answer for 'resnet18' within the deadline of 0.001 s")
        assert error(hurried.predict("resnt18"))[0] == 404  # validation needs no time


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_backend_call_deadline(torchserve, gateway, protocol):
    """The TorchServe call itself is cut at its timeout (a batch alone waits 5 ms for company)."""
    assert gateway.predict("resnet18").status_code == 200

    async def call() -> None:
        settings = backend_for(torchserve)
        backend = {"http": HttpInference, "grpc": GrpcInference}[protocol]("local", settings, KeyRing(settings.key_dir))
        try:
            with pytest.raises(DeadlineExceeded, match="no answer from backend 'local' within the deadline"):
                await backend.predict("resnet18", None, photo("chelsea.jpg"), None, timeout=0.002)
            assert (await backend.predict("resnet18", None, photo("chelsea.jpg"), 2, timeout=60))["model"]
        finally:
            await backend.aclose()

    asyncio.run(call())


def test_slow_grpc_handshake_is_waited_for(torchserve, gateway):
    """A TorchServe slow to open the HTTP/2 connection (busy CPUs) is waited for within the deadline."""
    assert gateway.predict("resnet18").status_code == 200

    async def call() -> None:
        async with _slow_first_bytes_proxy("127.0.0.1", torchserve.ports.grpc_inference, delay=0.3) as port:
            settings = backend_for(torchserve, grpc_address=f"127.0.0.1:{port}")
            backend = GrpcInference("local", settings, KeyRing(settings.key_dir))
            try:
                assert (await backend.predict("resnet18", None, photo("chelsea.jpg"), 2, timeout=60))["model"]
            finally:
                await backend.aclose()

    asyncio.run(call())


@contextlib.asynccontextmanager
async def _slow_first_bytes_proxy(host: str, port: int, delay: float):
    """A TCP proxy to host:port that holds the server's first bytes (its SETTINGS frame) back ``delay`` s."""
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: float) -> None:
        first = True
        while data := await reader.read(65536):
            if first:
                await asyncio.sleep(hold)
                first = False
            writer.write(data)
            await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(client_reader, server_writer, 0), pipe(server_reader, client_writer, delay),
                             return_exceptions=True)

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield proxy.sockets[0].getsockname()[1]
    finally:
        proxy.close()


def test_a_model_still_loading_is_503_with_retry_after_then_served(start_gateway, management, gateway):
    model = "squeezenet1_0"
    management.unload(model)
    with start_gateway(request_timeout_s=0.5) as hurried:
        started = time.monotonic()
        response = hurried.predict(model)
        assert time.monotonic() - started < 0.5  # half the deadline, not all of it: no 504
        assert error(response) == (503, "model_loading", f"model '{model}' is loading on backend 'local'; retry in 1 s")
        assert response.headers["Retry-After"] == "1"  # the first load: ZOO_RETRY_AFTER_S
        # the load goes on without the request that started it
        hurried.wait_for_metric("zoo_model_loads_total", 1.0, model=model, outcome="loaded")
        assert model in management.registered()
    # served (by a gateway with a deadline a first prediction on a fresh worker fits in)
    assert gateway.predict(model).status_code == 200


def test_rotated_keys_are_read_again(gateway, torchserve):
    assert gateway.predict("resnet18").status_code == 200  # the gateway holds the current keys
    api = httpx.Client(base_url=torchserve.management_url, timeout=30)
    before = torchserve.keys()
    for kind in ("inference", "management"):  # TorchServe's token API, with its API key
        api_key = _api_key(torchserve)
        assert api.post("/token", params={"type": kind}, headers={"Authorization": f"Bearer {api_key}"}).is_success
    after = torchserve.keys()
    assert after.inference != before.inference and after.management != before.management
    assert gateway.predict("resnet18").status_code == 200
    assert gateway.http.get("/models").status_code == 200 and gateway.http.get("/readyz").status_code == 200


def _api_key(torchserve: TorchServe) -> str:
    return json.loads((torchserve.workdir / "key_file.json").read_text())["API"]["key"]


def test_refused_token_is_503(start_gateway, torchserve, tmp_path):
    (tmp_path / "key_file.json").write_text(
        '{"management": {"key": "wrong"}, "inference": {"key": "wrong"}, "API": {"key": "wrong"}}')
    with start_gateway(backend_for(torchserve, key_dir=tmp_path)) as gateway:
        assert error(gateway.predict("resnet18")) == (
            503, "backend_unavailable", "backend 'local' refuses the gateway's token")
        assert gateway.http.get("/readyz").json() == {"status": "ready", "backends": {"local": False}}


def test_predictions_over_torchserves_http_api(start_gateway, gateway):
    """The other transport to TorchServe (the default is gRPC): same answers, same errors."""
    expected = gateway.predict("resnet18", params={"topk": 4}).json()["predictions"]
    with start_gateway(backend_protocol="http") as over_http:
        answer = over_http.predict("resnet18", params={"topk": 4})
        assert answer.status_code == 200 and answer.json()["predictions"] == expected
        assert error(over_http.http.post("/predict/resnet18/2.0", content=photo("chelsea.png"))) == (
            404, "unknown_version", "model 'resnet18' has no version '2.0'")
        assert error(over_http.predict("resnet18", _truncated_tiff())) == (
            415, "corrupt_image", _decode_error(_truncated_tiff()))
        assert over_http.http.get("/readyz").status_code == 200
        assert over_http.predict("resnet18").status_code == 200


def test_concurrent_requests_share_the_pool(gateway):
    barrier = threading.Barrier(6)

    def one(_):
        barrier.wait()
        return gateway.predict("resnet18").status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(one, range(6))) == [200] * 6
