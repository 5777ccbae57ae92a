"""What the overload and fault tests share: a real gateway process in front of a real TorchServe, clients
that record every answer with its timing, and measurements of the processes (RSS, worker pids).

The gateway runs as ``python -m zooserve.gateway`` (not in the test process): its memory is measured on its
own, signals reach it as in production, and the clients' threads do not share its interpreter.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import httpx
import psutil

from loadtests.metrics import metric
from tests.conftest import free_port
from tests.gateway.test_main import Process, backends_env
from zooserve._proto import zooserve_pb2 as pb
from zooserve._proto import zooserve_pb2_grpc as pb_grpc
from zooserve.torchserve import TorchServe

CONNECTION_FAILED = 0  # the status of an answer that never came: refused, reset, or closed before a response


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() when the request left
    done: float
    status: int  # HTTP status (gRPC codes mapped to theirs), or CONNECTION_FAILED
    retry_after: str | None = None
    request_id: str | None = None

    @property
    def seconds(self) -> float:
        return self.done - self.sent


GRPC_STATUS = {grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.INTERNAL: 502}


class GatewayProcess:
    """``python -m zooserve.gateway`` serving one TorchServe, with ``ZOO_*`` settings given as keywords."""

    def __init__(self, torchserve: TorchServe, **settings: str):
        self.rest_port, self.grpc_port = free_port(), free_port()
        env = {"ZOO_REST_PORT": str(self.rest_port), "ZOO_GRPC_PORT": str(self.grpc_port),
               "ZOO_BACKENDS": backends_env(torchserve.inference_url, torchserve.management_url,
                                            f"127.0.0.1:{torchserve.ports.grpc_inference}", torchserve.workdir)}
        env |= {f"ZOO_{key.upper()}": str(value) for key, value in settings.items()}
        self.process = Process(["-m", "zooserve.gateway"], env)
        self.process.wait_for("zooserve gateway ready")
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    def rss(self) -> int:
        return psutil.Process(self.pid).memory_info().rss

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when there are none)."""
        return metric(httpx.get(f"{self.url}/metrics", timeout=30).text, name, **labels)

    def terminate(self) -> str:
        """SIGTERM, then the process's whole output once it has exited (asserting exit status 0)."""
        self.process.popen.send_signal(signal.SIGTERM)
        return self.process.finish()

    def kill(self) -> None:
        self.process.kill()


@contextmanager
def gateway_process(torchserve: TorchServe, **settings: str) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(torchserve, **settings)
    try:
        yield gateway
    finally:
        gateway.kill()


# --- clients: each a callable sending one request and returning its Answer; one instance per thread ---

def rest_client(url: str, model: str, body: bytes, content_type: str = "image/jpeg",
                headers: dict[str, str] | None = None, timeout: float = 120) -> Callable[[], Answer]:
    client = httpx.Client(base_url=url, timeout=timeout)
    client.get("/healthz")  # the keep-alive connection is open before the clock starts

    def send() -> Answer:
        sent = time.monotonic()
        try:
            response = client.post(f"/predict/{model}", content=body,
                                   headers={"Content-Type": content_type} | (headers or {}))
        except httpx.TransportError:  # refused, reset, or closed without an answer
            return Answer(sent, time.monotonic(), CONNECTION_FAILED)
        request_id = response.json().get("request_id") if response.status_code == 200 else None
        return Answer(sent, time.monotonic(), response.status_code, response.headers.get("retry-after"), request_id)

    return send


def grpc_client(target: str, model: str, body: bytes, timeout: float = 120,
                metadata: tuple[tuple[str, str], ...] = ()) -> Callable[[], Answer]:
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = pb_grpc.ZooServiceStub(channel)

    def send() -> Answer:
        sent = time.monotonic()
        try:
            reply = stub.Predict(pb.PredictRequest(model=model, image=body), timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            trailing, code = dict(error.trailing_metadata() or ()), error.code()
            # neither the gateway's answer nor its gRPC server's call limit: the channel's (no server, a reset)
            if "zoo-error-code" not in trailing and code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                return Answer(sent, time.monotonic(), CONNECTION_FAILED)
            return Answer(sent, time.monotonic(), GRPC_STATUS.get(code, 500), trailing.get("retry-after"))
        return Answer(sent, time.monotonic(), 200, request_id=reply.request_id)

    return send


def burst(clients: list[Callable[[], Answer]]) -> list[Answer]:
    """Every client sends one request at the same moment (one thread each, released together)."""
    barrier = threading.Barrier(len(clients))
    answers: list[Answer | None] = [None] * len(clients)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = clients[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


class Load:
    """Closed-loop clients, one thread each, sending until stopped (the next request when the last answered)."""

    def __init__(self, clients: list[Callable[[], Answer]], pause_s: float = 0.0):
        self.clients, self.pause_s = clients, pause_s
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in clients]

    def _run(self, send: Callable[[], Answer]) -> None:
        while not self._stop.is_set():
            answer = send()
            self.answers.append(answer)  # list.append is atomic under the GIL
            if answer.status != 200:
                time.sleep(self.pause_s)  # a client that failed does not spin

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(300)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Polls ``condition`` until it holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(interval)
    return time.monotonic() - started


class Moment:
    """The first moment ``condition`` holds, watched from a thread (started at once, every ``interval`` s)."""

    def __init__(self, condition: Callable[[], bool], interval: float = 0.1):
        self.at: float | None = None
        self._condition, self._interval = condition, interval
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._condition():
            time.sleep(self._interval)
        self.at = time.monotonic()

    def wait(self, timeout: float, what: str) -> float:
        self._thread.join(timeout)
        assert self.at is not None, f"{what}: not within {timeout} s"
        return self.at


def _management(torchserve: TorchServe, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{torchserve.management_url}{path}", timeout=300,
                         headers={"Authorization": f"Bearer {torchserve.keys().management}"})


def scale(torchserve: TorchServe, model: str, workers: int) -> None:
    path = f"/models/{model}?min_worker={workers}&max_worker={workers}&synchronous=true"
    assert _management(torchserve, "PUT", path).status_code == 200


def unload(torchserve: TorchServe, model: str) -> None:
    assert _management(torchserve, "DELETE", f"/models/{model}").status_code in (200, 404)


def worker_pids(torchserve: TorchServe, model: str) -> list[int]:
    """The pids of the model's TorchServe workers (management API: describe model)."""
    response = _management(torchserve, "GET", f"/models/{model}")
    response.raise_for_status()
    return [w["pid"] for w in response.json()[0]["workers"] if w.get("status") == "READY" and w.get("pid")]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
