"""A real gateway for the request-parsing fuzz tests (test_fuzz_rest.py, test_fuzz_v2.py), cheap enough for
hundreds of examples: its REST app is called in process (httpx's ASGI transport, no socket), its gRPC
server listens on loopback, and its one backend is an address where nothing listens. So every request
the gateway parses as valid ends in a typed 503 (backend unavailable) or, when the client's timeout is
tiny, a typed 504: that is a valid parse; a malformed one must be a typed 4xx; nothing may be a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import free_port
from zooserve.gateway.core import Gateway
from zooserve.gateway.experiments.layer import Experiments
from zooserve.gateway.experiments.metrics import ExperimentMetrics
from zooserve.gateway.grpc.service import GrpcServer
from zooserve.gateway.rest.app import create_app
from zooserve.gateway.settings import BackendSettings, Settings

FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MAX_BODY = 64 * 1024  # small, so that the size caps are reachable by generated bodies
MODELS = ("resnet18", "squeezenet1_0", "fractalnet_cifar100")
# a valid parse reaching the dead backend: these typed errors, and only these, are not the client's fault
VALID_PARSE = {503: {"backend_unavailable", "model_unavailable", "model_loading"}, 504: {"deadline_exceeded"}}
GRPC_VALID_PARSE = {grpc.StatusCode.UNAVAILABLE: VALID_PARSE[503], grpc.StatusCode.DEADLINE_EXCEEDED: VALID_PARSE[504]}
GRPC_REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


@dataclass
class FuzzGateway:
    runner: asyncio.Runner
    gateway: Gateway
    http: httpx.AsyncClient
    grpc_server: GrpcServer
    channel: grpc.aio.Channel

    def run(self, coroutine):
        return self.runner.run(coroutine)


@contextmanager
def fuzz_gateway() -> Iterator[FuzzGateway]:
    dead = BackendSettings(inference_url=f"http://127.0.0.1:{free_port()}",
                           management_url=f"http://127.0.0.1:{free_port()}",
                           grpc_address=f"127.0.0.1:{free_port()}", key_dir=None)
    config = Settings(host="127.0.0.1", rest_port=0, grpc_port=0, max_body_bytes=MAX_BODY, backends={"local": dead})
    with asyncio.Runner() as runner:
        async def start() -> FuzzGateway:
            gateway = Gateway(config)
            experiments = Experiments(gateway, config, ExperimentMetrics())
            server = GrpcServer(gateway, experiments)
            await gateway.start()
            await server.start()
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway, experiments)),
                                     base_url="http://gateway", timeout=30)
            return FuzzGateway(runner, gateway, http, server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))

        fuzz = runner.run(start())
        try:
            yield fuzz
        finally:
            async def stop() -> None:
                await fuzz.channel.close()
                await fuzz.http.aclose()
                await fuzz.grpc_server.stop(0)
                await fuzz.gateway.aclose()

            runner.run(stop())


def assert_http_parsed_or_refused(response: httpx.Response) -> None:
    """A typed 4xx with its JSON error, or the dead backend's typed 503/504: never a 500."""
    error = response.json()["error"]
    message = error if isinstance(error, str) else error["message"]  # the v2 binding's errors are strings
    assert isinstance(message, str) and message, response.text
    if 400 <= response.status_code < 500:
        return
    assert response.status_code in VALID_PARSE, response.text
    if isinstance(error, dict):
        assert error["code"] in VALID_PARSE[response.status_code], response.text


async def raw_grpc_call(fuzz: "FuzzGateway", method: str, raw: bytes) -> grpc.aio.AioRpcError:
    """Sends ``raw`` bytes as the message of ``method``; the error it must end in (there is no backend)."""
    call = fuzz.channel.unary_unary(method)
    try:
        await call(raw, timeout=30)
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"{method} succeeded with no backend")


def assert_grpc_parsed_or_refused(error: grpc.aio.AioRpcError) -> None:
    code = dict(error.trailing_metadata() or ()).get("zoo-error-code")
    if error.code() in GRPC_REFUSALS:
        assert code and error.details(), error
        return
    assert error.code() in GRPC_VALID_PARSE and code in GRPC_VALID_PARSE[error.code()], error


def names() -> st.SearchStrategy[str]:
    """Catalog names (the parse goes on to the rest) and arbitrary text (a path segment carries it)."""
    return st.one_of(st.sampled_from(MODELS), st.text(st.characters(exclude_categories=["Cs"]), max_size=120))


def images() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a real photograph (small enough for MAX_BODY)."""
    from PIL import Image

    from tests.conftest import DATA, encode, photo

    cat = Image.open(DATA / "chelsea.png").convert("RGB").resize((96, 64))
    real = [photo("chelsea.jpg"), encode(cat, "PNG"), encode(cat, "WEBP"), encode(cat, "GIF")]
    return st.one_of(st.binary(max_size=512), st.sampled_from(real))
